package experiment_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/tailorhq/tailor/rules/experiment"
)

const population = 100_000

// ids returns n visitor ids of two kinds: sequential ("visitor-17"), the
// worst case for a weak hash, and random 128-bit hex ids like the ones a
// cookie carries.
func ids(n int) []string {
	out := make([]string, 0, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		if i%2 == 0 {
			out = append(out, "visitor-"+strconv.Itoa(i))
		} else {
			out = append(out, fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64()))
		}
	}
	return out
}

var population100k = ids(population)

// assignAll assigns every id of the population; "" is "not in".
func assignAll(e *experiment.Experiment) []string {
	out := make([]string, len(population100k))
	for i, id := range population100k {
		v, in := experiment.Assign(e, id)
		if in != (v != "") {
			panic(fmt.Sprintf("Assign(%q) = %q, %v", id, v, in))
		}
		out[i] = v
	}
	return out
}

func shares(got []string) map[string]float64 {
	m := map[string]float64{}
	for _, v := range got {
		m[v] += 1 / float64(len(got))
	}
	return m
}

func TestAssignShares(t *testing.T) {
	t.Parallel()
	for _, weights := range [][]float64{
		{1, 1},
		{0.1, 0.9},
		{1, 1, 2},
		{5, 10, 20, 30, 35},
		{0.5, 0, 0.5},
		{1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
	} {
		t.Run(fmt.Sprint(weights), func(t *testing.T) {
			t.Parallel()
			e := &experiment.Experiment{Key: "hero-test"}
			total := 0.0
			for i, w := range weights {
				e.Variants = append(e.Variants, experiment.Variant{Key: "v" + strconv.Itoa(i), Weight: w})
				total += w
			}
			got := shares(assignAll(e))
			for _, v := range e.Variants {
				want := v.Weight / total
				if d := math.Abs(got[v.Key] - want); d > 0.01 {
					t.Errorf("%s: share %.4f, want %.4f ± 0.01", v.Key, got[v.Key], want)
				}
			}
			if got[""] != 0 {
				t.Errorf("%.4f of the visitors not in the experiment, want 0", got[""])
			}
		})
	}
}

func TestAssignDeterministic(t *testing.T) {
	t.Parallel()
	e := &experiment.Experiment{Key: "hero-test", Salt: "s1", Coverage: 0.9, Holdout: 0.1,
		Variants: []experiment.Variant{{"control", 1}, {"red", 1}, {"blue", 2}}}
	first := assignAll(e)
	// A copy, as another process would load it, gives the same variants,
	// however many times it is asked.
	cp := *e
	cp.Variants = slices.Clone(e.Variants)
	for range 3 {
		if again := assignAll(&cp); !slices.Equal(first, again) {
			t.Fatal("assignments changed between two runs")
		}
	}

	// The scheme is frozen: these were computed once, and must be the same
	// on every platform and in every later version, or visitors would
	// change variant on upgrade.
	for id, want := range map[string]string{
		"visitor-0":                        "blue",
		"visitor-1":                        "red",
		"visitor-2":                        "red",
		"visitor-3":                        "red",
		"visitor-4":                        "$holdout",
		"visitor-5":                        "",
		"visitor-6":                        "control",
		"visitor-7":                        "blue",
		"0b9d2c6e8f1a4b3c9d2e7f6a5b4c3d2e": "control",
		"":                                 "",
	} {
		if got, _ := experiment.Assign(e, id); got != want {
			t.Errorf("Assign(%q) = %q, want %q", id, got, want)
		}
	}

	// The same, for visitor-0 to visitor-999, one letter per visitor:
	// control, red, blue, held out, or - for not in. The table comes from a
	// separate implementation of the documented scheme, in Python.
	const spec = "" +
		"brrrh-cbrcbbbrrbrcbbrcbbccb-rbbrcbbcbbcbrcbrbcrrhr-bh--bbrhrrhbcb-c-hhbhbbbcbhcr" +
		"cbbrbchcrbcbccbccbhbcr--bcccrrrccb-rhb-bbccbbrbrrcrr-bbhcbbc-rh-crbcrbr-chhbcrbr" +
		"rrbbrbrcchchhbbbbrcbbchcr-rc-bbbbrrcccbbrbrbc-cbbbbrbrrrrbbcrhbrbrcc-crchcbbbhrb" +
		"b-bhcbccc-bbbbrrbbhrhrbhbrbccbbc-rbbb-b-rrrrcbbbrbbbrhbrcrhcrhbhbccrcrbbhcrcrbbr" +
		"rrccbbbbbbr-bcbbbbcbbbbbbhbbccbrcrbbbhhbbbcrbcbcrcrr-rccbbccbbchrhc-cb-bch-cbbh-" +
		"bhbr-hcb-rbhrbrrbbrbrrhbcbbbcbbbbrhhrc-hchrbcbbr-rbccc-bbbrbcbhbrbc-cbcrbbrc--bb" +
		"r-brrcbbcbb--c-rbbrbhh--bb-crbbhbcrhbcbr-bb-crrbbbbr-rbbrr-cbccbcrcbccbcbrhbrbrb" +
		"bbbcbrcbbcbcbrchhcrbbcrbb-bb--c-brccrcbrr-rrhhbbbc-bcbbr-cbrccbbbhbbrrbc-bcrc-r-" +
		"cb-cbcbrbbbbbbrhcbcrbbrbbcbbcchbbrrrhbrcbcbbhcccccc-brrhcrhh--bbbb--hbbbbcbbbcc-" +
		"brchhchbbhrhbbbhbbcb-bbcbbbbcb-hhbcbccbcrhbhrbbrbccbbcbbbbbrbrbhch-b-hbbrrbb-rhb" +
		"bb-bbcrbbrcbrbbc--hbrbrrrrb-bhrhrbcrbhbbcrbbch-rb--rbhbrrhrbbb-cb-cbbbbchcrrrbhr" +
		"--bbcbrrbcbcbrbcbb-bhbch-rhcbbbr-b-rbcbbbrbbrrcrrbcbc-hbrcbbbrbchbcrcbbbb-chrcrh" +
		"cbr-brbbrcrrbccbbbccbbbrb-c-crrb-cbrbrcr"
	letter := map[string]byte{"control": 'c', "red": 'r', "blue": 'b', experiment.HoldoutVariant: 'h', "": '-'}
	for i := range len(spec) {
		id := "visitor-" + strconv.Itoa(i)
		if got, _ := experiment.Assign(e, id); letter[got] != spec[i] {
			t.Errorf("Assign(%q) = %q, want %q", id, got, spec[i])
		}
	}
}

func TestZeroWeightVariantMovesNoOne(t *testing.T) {
	t.Parallel()
	e := &experiment.Experiment{Key: "hero-test", Holdout: 0.05, Coverage: 0.8,
		Variants: []experiment.Variant{{"a", 1}, {"b", 1}, {"c", 2}}}
	before := assignAll(e)
	zero := experiment.Variant{Key: "d", Weight: 0}
	for name, variants := range map[string][]experiment.Variant{
		"appended": {{"a", 1}, {"b", 1}, {"c", 2}, zero},
		"inserted": {{"a", 1}, zero, {"b", 1}, {"c", 2}},
		"first":    {zero, {"a", 1}, {"b", 1}, {"c", 2}},
		"reversed": {{"c", 2}, {"b", 1}, {"a", 1}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e2 := *e
			e2.Variants = variants
			after := assignAll(&e2)
			for i := range before {
				if before[i] != after[i] {
					t.Fatalf("%s moved from %q to %q", population100k[i], before[i], after[i])
				}
			}
		})
	}
}

func TestWeightChangeMovesOnlyToAndFromThatVariant(t *testing.T) {
	t.Parallel()
	e := &experiment.Experiment{Key: "w", Variants: []experiment.Variant{{"a", 1}, {"b", 1}, {"c", 1}}}
	before := assignAll(e)
	e.Variants[2].Weight = 2 // c: a third → a half
	after := assignAll(e)
	moved := 0
	for i := range before {
		if before[i] == after[i] {
			continue
		}
		moved++
		if after[i] != "c" {
			t.Fatalf("%s moved from %q to %q; only moves to c are needed", population100k[i], before[i], after[i])
		}
	}
	// The fewest moves: c grows from 1/3 to 1/2 of the visitors.
	if got, want := float64(moved)/population, 0.5-1.0/3; math.Abs(got-want) > 0.01 {
		t.Errorf("%.4f of the visitors moved, want %.4f", got, want)
	}
}

func TestCoverage(t *testing.T) {
	t.Parallel()
	e := &experiment.Experiment{Key: "cov", Variants: []experiment.Variant{{"a", 1}, {"b", 3}}}
	full := assignAll(e)
	var prev []string
	for _, c := range []float64{0.1, 0.5, 0.8, 1} {
		e.Coverage = c
		got := assignAll(e)
		in := 1 - shares(got)[""]
		if math.Abs(in-c) > 0.01 {
			t.Errorf("coverage %v: %.4f in the experiment", c, in)
		}
		for i := range got {
			if got[i] != "" && got[i] != full[i] {
				t.Fatalf("coverage %v: %s has %q, %q at full coverage", c, population100k[i], got[i], full[i])
			}
			if prev != nil && prev[i] != "" && got[i] == "" {
				t.Fatalf("coverage raised to %v: %s left the experiment", c, population100k[i])
			}
		}
		prev = got
	}
	// The variant shares hold within the covered visitors.
	e.Coverage = 0.5
	got := shares(assignAll(e))
	if b := got["b"] / (got["a"] + got["b"]); math.Abs(b-0.75) > 0.01 {
		t.Errorf("share of b within coverage 0.5: %.4f, want 0.75", b)
	}
}

func TestHoldout(t *testing.T) {
	t.Parallel()
	e := &experiment.Experiment{Key: "hold", Coverage: 0.5, Variants: []experiment.Variant{{"a", 1}, {"b", 1}}}
	none := assignAll(e)
	e.Holdout = 0.1
	ten := assignAll(e)
	e.Holdout = 0.2
	twenty := assignAll(e)

	s := shares(ten)
	if got := s[experiment.HoldoutVariant] / (1 - s[""]); math.Abs(got-0.1) > 0.01 {
		t.Errorf("holdout 0.1: %.4f of the visitors in the experiment held out", got)
	}
	if got := s["a"] / (s["a"] + s["b"]); math.Abs(got-0.5) > 0.01 {
		t.Errorf("holdout 0.1: share of a among the others %.4f", got)
	}
	for i := range none {
		// The holdout is taken from the visitors in the experiment, and
		// those not held out keep their variant.
		if (none[i] == "") != (ten[i] == "") {
			t.Fatalf("%s: in %q without holdout, %q with", population100k[i], none[i], ten[i])
		}
		if ten[i] != experiment.HoldoutVariant && ten[i] != none[i] {
			t.Fatalf("%s: %q without holdout, %q with", population100k[i], none[i], ten[i])
		}
		// Growing the holdout only takes visitors from the variants.
		if ten[i] == experiment.HoldoutVariant && twenty[i] != experiment.HoldoutVariant {
			t.Fatalf("%s left the holdout when it grew", population100k[i])
		}
		if twenty[i] != experiment.HoldoutVariant && twenty[i] != none[i] {
			t.Fatalf("%s: %q without holdout, %q with 0.2", population100k[i], none[i], twenty[i])
		}
	}
}

func TestExperimentsAreIndependent(t *testing.T) {
	t.Parallel()
	// The variant in one experiment says nothing of the variant in
	// another: each of the four combinations has a quarter of the visitors.
	x := &experiment.Experiment{Key: "x", Variants: []experiment.Variant{{"a", 1}, {"b", 1}}}
	y := &experiment.Experiment{Key: "y", Variants: []experiment.Variant{{"a", 1}, {"b", 1}}}
	salted := &experiment.Experiment{Key: "x", Salt: "2", Variants: []experiment.Variant{{"a", 1}, {"b", 1}}}
	ax := assignAll(x)
	for name, other := range map[string]*experiment.Experiment{"key": y, "salt": salted} {
		ay := assignAll(other)
		joint := map[[2]string]float64{}
		for i := range ax {
			joint[[2]string{ax[i], ay[i]}] += 1.0 / population
		}
		for k, v := range joint {
			if math.Abs(v-0.25) > 0.01 {
				t.Errorf("other %s: %v has %.4f of the visitors, want 0.25", name, k, v)
			}
		}
	}
}

func TestAssignSticky(t *testing.T) {
	t.Parallel()
	e := &experiment.Experiment{Key: "sticky", Holdout: 0.5, Variants: []experiment.Variant{{"a", 1}, {"b", 0}}}
	fresh, _ := experiment.Assign(e, "v1")
	for _, tc := range []struct {
		previous, want string
	}{
		{"", fresh},
		{"a", "a"},
		{"b", "b"}, // weight 0: no new visitor, but the exposed stay
		{experiment.HoldoutVariant, experiment.HoldoutVariant},
		{"removed", fresh},
	} {
		if got, in := experiment.AssignSticky(e, "v1", tc.previous); got != tc.want || !in {
			t.Errorf("AssignSticky(previous %q) = %q, %v; want %q, true", tc.previous, got, in, tc.want)
		}
	}
	// When the holdout ends, its visitors are assigned afresh.
	e.Holdout = 0
	fresh, _ = experiment.Assign(e, "v1")
	if got, _ := experiment.AssignSticky(e, "v1", experiment.HoldoutVariant); got != fresh || got == experiment.HoldoutVariant {
		t.Errorf("ended holdout: AssignSticky = %q, want %q", got, fresh)
	}
	// Coverage does not take exposed visitors out.
	e.Coverage = 1e-9
	if got, in := experiment.AssignSticky(e, "v1", "a"); got != "a" || !in {
		t.Errorf("low coverage: AssignSticky = %q, %v", got, in)
	}
}

func TestAssignTotal(t *testing.T) {
	t.Parallel()
	nan := math.NaN()
	for name, tc := range map[string]struct {
		e    experiment.Experiment
		want string
	}{
		"no variants":    {experiment.Experiment{Key: "k"}, ""},
		"zero weights":   {experiment.Experiment{Key: "k", Variants: []experiment.Variant{{"a", 0}, {"b", 0}}}, ""},
		"bad weights":    {experiment.Experiment{Key: "k", Variants: []experiment.Variant{{"a", nan}, {"b", -1}, {"c", math.Inf(1)}, {"d", 1}}}, "d"},
		"coverage < 0":   {experiment.Experiment{Key: "k", Coverage: -1, Variants: []experiment.Variant{{"a", 1}}}, ""},
		"coverage NaN":   {experiment.Experiment{Key: "k", Coverage: nan, Variants: []experiment.Variant{{"a", 1}}}, ""},
		"coverage > 1":   {experiment.Experiment{Key: "k", Coverage: 2, Variants: []experiment.Variant{{"a", 1}}}, "a"},
		"holdout > 1":    {experiment.Experiment{Key: "k", Holdout: 2, Variants: []experiment.Variant{{"a", 1}}}, experiment.HoldoutVariant},
		"holdout, no wt": {experiment.Experiment{Key: "k", Holdout: 1, Variants: []experiment.Variant{{"a", 0}}}, ""},
	} {
		for _, id := range []string{"", "x", "visitor-1"} {
			got, in := experiment.Assign(&tc.e, id)
			if got != tc.want || in != (tc.want != "") {
				t.Errorf("%s: Assign(%q) = %q, %v; want %q", name, id, got, in, tc.want)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := experiment.Experiment{Key: "hero-test", Variants: []experiment.Variant{{"a", 1}, {"b", 0}}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid experiment: %v", err)
	}
	for _, tc := range []struct {
		e    experiment.Experiment
		want []string
	}{
		{experiment.Experiment{}, []string{
			`experiment "": key: empty`,
			`experiment "": variants: no variant`,
		}},
		{experiment.Experiment{Key: "hero-test", Variants: []experiment.Variant{{"a", 1}, {"b", 1}, {"c", -1}}}, []string{
			`experiment "hero-test": variants[2].weight: negative`,
		}},
		{experiment.Experiment{Key: "hero-test", Coverage: 1.5, Holdout: -0.1, Goals: []string{"buy", ""},
			Variants: []experiment.Variant{{"a", math.NaN()}, {"", 0}, {"a", 0}, {experiment.HoldoutVariant, 0}}}, []string{
			`experiment "hero-test": variants[0].weight: not a finite number`,
			`experiment "hero-test": variants[1].key: empty`,
			`experiment "hero-test": variants[2].key: "a" already used by variants[0]`,
			`experiment "hero-test": variants[3].key: "$holdout" is reserved for the holdout`,
			`experiment "hero-test": variants: no variant has a positive weight`,
			`experiment "hero-test": coverage: not in [0, 1]`,
			`experiment "hero-test": holdout: not in [0, 1]`,
			`experiment "hero-test": goals[1]: empty`,
		}},
		{experiment.Experiment{Key: "big", Variants: []experiment.Variant{{"a", math.MaxFloat64}, {"b", math.MaxFloat64}}}, []string{
			`experiment "big": variants: weights add up to more than the largest float64`,
		}},
	} {
		err := tc.e.Validate()
		var list experiment.ValidationErrors
		if !errors.As(err, &list) {
			t.Fatalf("Validate(%+v) = %v, want ValidationErrors", tc.e, err)
		}
		var got []string
		for _, e := range list {
			got = append(got, e.Error())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Validate(%+v):\n got %q\nwant %q", tc.e, got, tc.want)
		}
		var one *experiment.ValidationError
		if !errors.As(err, &one) || one.Error() != tc.want[0] {
			t.Errorf("errors.As(*ValidationError) = %v", one)
		}
		if len(tc.want) == 1 && err.Error() != tc.want[0] {
			t.Errorf("Error() = %q, want %q", err.Error(), tc.want[0])
		}
	}
}

func TestEligibleAndGoals(t *testing.T) {
	t.Parallel()
	all := experiment.Experiment{Goals: []string{"signup", "purchase"}}
	vip := experiment.Experiment{Segment: "vip"}
	for _, tc := range []struct {
		e        *experiment.Experiment
		segments []string
		want     bool
	}{
		{&all, nil, true},
		{&all, []string{"x"}, true},
		{&vip, nil, false},
		{&vip, []string{"new", "vip"}, true},
		{&vip, []string{"new"}, false},
	} {
		if got := tc.e.Eligible(tc.segments...); got != tc.want {
			t.Errorf("Segment %q: Eligible(%q) = %v", tc.e.Segment, tc.segments, got)
		}
	}
	if !all.IsGoal("purchase") || all.IsGoal("page") || vip.IsGoal("purchase") {
		t.Error("IsGoal")
	}
	if all.Control() != "" {
		t.Error("Control of no variant")
	}
}

func FuzzAssign(f *testing.F) {
	f.Add("hero", "salt", "visitor-1", "a", "b", 1.0, 1.0, 0.0, 0.0, "")
	f.Add("", "", "", "", "$holdout", 0.0, -1.0, 2.0, 0.5, "a")
	f.Fuzz(func(t *testing.T, key, salt, id, k1, k2 string, w1, w2, coverage, holdout float64, previous string) {
		e := &experiment.Experiment{Key: key, Salt: salt, Coverage: coverage, Holdout: holdout,
			Variants: []experiment.Variant{{k1, w1}, {k2, w2}}}
		v, in := experiment.Assign(e, id)
		if v2, in2 := experiment.Assign(e, id); v2 != v || in2 != in {
			t.Fatalf("not deterministic: %q %v, then %q %v", v, in, v2, in2)
		}
		if in != (v != "") && !(in && v == "" && (k1 == "" || k2 == "")) {
			t.Fatalf("Assign = %q, %v", v, in)
		}
		if in && v != experiment.HoldoutVariant && v != k1 && v != k2 {
			t.Fatalf("Assign = %q, not a variant", v)
		}
		if e.Validate() == nil && in && v != experiment.HoldoutVariant {
			i := slices.IndexFunc(e.Variants, func(x experiment.Variant) bool { return x.Key == v })
			if !(e.Variants[i].Weight > 0) {
				t.Fatalf("Assign = %q, of weight %v", v, e.Variants[i].Weight)
			}
		}
		sv, sin := experiment.AssignSticky(e, id, previous)
		if previous == "" && (sv != v || sin != in) {
			t.Fatalf("AssignSticky without previous = %q, %v; Assign = %q, %v", sv, sin, v, in)
		}
	})
}
