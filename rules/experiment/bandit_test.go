package experiment_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/tailorhq/tailor/rules/experiment"
)

// simulate runs visitors through b, in segments, converting each with the
// probability rates[segment][variant], and updates b every batch visitors
// with the counts so far. It returns the counts and, per segment, the
// share of each variant among the last quarter of the visitors.
func simulate(t *testing.T, b *experiment.Bandit, rates map[string]map[string]float64, visitors, batch int, seed uint64) (map[experiment.Cell]experiment.Counts, map[string]map[string]float64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed+1))
	segments := slices.Sorted(func(yield func(string) bool) {
		for s := range rates {
			if !yield(s) {
				return
			}
		}
	})
	counts := map[experiment.Cell]experiment.Counts{}
	late := map[string]map[string]float64{}
	lateN := map[string]float64{}
	for i := range visitors {
		if i > 0 && i%batch == 0 {
			b.Update(counts)
			for _, seg := range segments {
				for j, w := range b.Weights(seg) {
					if w < 0.05-1e-12 {
						t.Fatalf("after %d visitors, %s: weight of variant %d is %v, under the floor", i, seg, j, w)
					}
				}
			}
		}
		seg := segments[i%len(segments)]
		v, in := b.Assign(seg, "visitor-"+strconv.Itoa(i), "")
		if !in {
			t.Fatalf("visitor %d not in the experiment", i)
		}
		cell := experiment.Cell{Segment: seg, Variant: v}
		c := counts[cell]
		c.Visitors++
		if r.Float64() < rates[seg][v] {
			c.Conversions++
		}
		counts[cell] = c
		if i >= visitors*3/4 {
			if late[seg] == nil {
				late[seg] = map[string]float64{}
			}
			late[seg][v]++
			lateN[seg]++
		}
	}
	b.Update(counts)
	for seg, m := range late {
		for v := range m {
			m[v] /= lateN[seg]
		}
	}
	return counts, late
}

func TestBanditConverges(t *testing.T) {
	t.Parallel()
	e := &experiment.Experiment{Key: "cta", Variants: []experiment.Variant{{"control", 1}, {"bold", 1}}}
	b, err := experiment.NewBandit(e, experiment.BanditConfig{Floor: 0.05, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	rates := map[string]map[string]float64{"": {"control": 0.05, "bold": 0.10}}
	counts, late := simulate(t, b, rates, 20_000, 500, 1)
	w := b.Weights("")
	t.Logf("final weights %.4f, last quarter's traffic %v, counts %v", w, late[""], counts)
	if w[1] < 0.8 {
		t.Errorf("the better arm's final weight is %.4f, want ≥ 0.8", w[1])
	}
	if late[""]["bold"] < 0.8 {
		t.Errorf("the better arm had %.4f of the last quarter's traffic, want ≥ 0.8", late[""]["bold"])
	}
	if w[0] < 0.05 {
		t.Errorf("the worse arm's weight %.4f is under the floor", w[0])
	}
	if math.Abs(w[0]+w[1]-1) > 1e-12 {
		t.Errorf("weights %v do not add up to 1", w)
	}
}

func TestBanditPerSegment(t *testing.T) {
	t.Parallel()
	// The best variant differs by segment: each segment finds its own.
	e := &experiment.Experiment{Key: "hero", Variants: []experiment.Variant{{"photo", 1}, {"video", 1}, {"text", 1}}}
	b, err := experiment.NewBandit(e, experiment.BanditConfig{Floor: 0.05, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	rates := map[string]map[string]float64{
		"mobile":  {"photo": 0.04, "video": 0.02, "text": 0.08},
		"desktop": {"photo": 0.12, "video": 0.06, "text": 0.06},
	}
	_, late := simulate(t, b, rates, 40_000, 1000, 2)
	t.Logf("mobile %.3f, desktop %.3f", b.Weights("mobile"), b.Weights("desktop"))
	if w := b.Weights("mobile"); w[2] < 0.8 {
		t.Errorf("mobile: weight of text %.4f, want ≥ 0.8", w[2])
	}
	if w := b.Weights("desktop"); w[0] < 0.8 {
		t.Errorf("desktop: weight of photo %.4f, want ≥ 0.8", w[0])
	}
	if late["mobile"]["text"] < 0.75 || late["desktop"]["photo"] < 0.75 {
		t.Errorf("last quarter's traffic: %v", late)
	}
	// A segment never seen keeps the experiment's weights.
	if w := b.Weights("tablet"); !slices.Equal(w, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}) {
		t.Errorf("unseen segment: %v", w)
	}
}

func TestBanditDeterministic(t *testing.T) {
	t.Parallel()
	e := &experiment.Experiment{Key: "d", Variants: []experiment.Variant{{"a", 1}, {"b", 1}, {"c", 1}}}
	counts := map[experiment.Cell]experiment.Counts{
		{Segment: "s", Variant: "a"}:                       {Visitors: 200, Conversions: 10},
		{Segment: "s", Variant: "b"}:                       {Visitors: 210, Conversions: 14},
		{Segment: "s", Variant: "c"}:                       {Visitors: 190, Conversions: 12},
		{Segment: "t", Variant: "a"}:                       {Visitors: 200, Conversions: 10},
		{Segment: "t", Variant: "b"}:                       {Visitors: 210, Conversions: 14},
		{Segment: "t", Variant: "c"}:                       {Visitors: 190, Conversions: 12},
		{Segment: "s", Variant: "gone"}:                    {Visitors: 1000, Conversions: 900},
		{Segment: "s", Variant: experiment.HoldoutVariant}: {Visitors: 1000, Conversions: 900},
	}
	b1, _ := experiment.NewBandit(e, experiment.BanditConfig{Seed: 1})
	b2, _ := experiment.NewBandit(e, experiment.BanditConfig{Seed: 1})
	b1.Update(counts)
	b1.Update(map[experiment.Cell]experiment.Counts{{Segment: "s", Variant: "a"}: {Visitors: 5}})
	b1.Update(counts) // the history of updates does not matter
	b2.Update(counts)
	if w1, w2 := b1.Weights("s"), b2.Weights("s"); !slices.Equal(w1, w2) {
		t.Errorf("same seed and counts, different weights: %v, %v", w1, w2)
	}
	// Each segment has its own draws.
	if ws, wt := b1.Weights("s"), b1.Weights("t"); slices.Equal(ws, wt) {
		t.Errorf("segments s and t drew alike: %v", ws)
	}
	// The probabilities of being best, from the estimate: close to an
	// estimate from another seed.
	b3, _ := experiment.NewBandit(e, experiment.BanditConfig{Seed: 99, Draws: 200_000})
	b3.Update(counts)
	w1, w3 := b1.Weights("s"), b3.Weights("s")
	for i := range w1 {
		if math.Abs(w1[i]-w3[i]) > 0.02 {
			t.Errorf("weights %v with 10,000 draws, %v with 200,000", w1, w3)
		}
	}
	// Weights returns a copy.
	w1[0] = 42
	if b1.Weights("s")[0] == 42 {
		t.Error("Weights shares its slice")
	}
	// Updating without a segment's counts resets it.
	b1.Update(nil)
	if w := b1.Weights("s"); !slices.Equal(w, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}) {
		t.Errorf("after Update(nil): %v", w)
	}
}

func TestBanditZeroWeightAndHoldout(t *testing.T) {
	t.Parallel()
	e := &experiment.Experiment{Key: "z", Holdout: 0.1,
		Variants: []experiment.Variant{{"a", 1}, {"off", 0}, {"b", 3}}}
	b, err := experiment.NewBandit(e, experiment.BanditConfig{Floor: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if w := b.Weights(""); !slices.Equal(w, []float64{0.25, 0, 0.75}) {
		t.Errorf("initial weights %v", w)
	}
	b.Update(map[experiment.Cell]experiment.Counts{
		{Variant: "a"}:   {Visitors: 1000, Conversions: 10},
		{Variant: "off"}: {Visitors: 1000, Conversions: 999},
		{Variant: "b"}:   {Visitors: 1000, Conversions: 500},
	})
	// A floor of 1/2 with two variants: equal shares whatever the counts;
	// the variant of weight 0 stays out.
	if w := b.Weights(""); !slices.Equal(w, []float64{0.5, 0, 0.5}) {
		t.Errorf("weights %v", w)
	}
	n := map[string]int{}
	for _, id := range population100k[:20_000] {
		v, _ := b.Assign("", id, "")
		n[v]++
	}
	if n["off"] != 0 {
		t.Errorf("%d visitors assigned to the variant of weight 0", n["off"])
	}
	if got := float64(n[experiment.HoldoutVariant]) / 20_000; math.Abs(got-0.1) > 0.01 {
		t.Errorf("holdout share %.4f, want 0.1", got)
	}
	// Exposed visitors stay, even in the variant of weight 0.
	if v, in := b.Assign("", "x", "off"); v != "off" || !in {
		t.Errorf("sticky: %q, %v", v, in)
	}
}

func TestBanditAssignMatchesAssign(t *testing.T) {
	t.Parallel()
	// Before any update, a bandit assigns as Assign does.
	e := &experiment.Experiment{Key: "m", Coverage: 0.7, Holdout: 0.05, Salt: "x",
		Variants: []experiment.Variant{{"a", 2}, {"b", 1}}}
	b, err := experiment.NewBandit(e, experiment.BanditConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range population100k[:10_000] {
		v1, in1 := experiment.Assign(e, id)
		v2, in2 := b.Assign("any", id, "")
		if v1 != v2 || in1 != in2 {
			t.Fatalf("%s: Assign %q %v, Bandit.Assign %q %v", id, v1, in1, v2, in2)
		}
	}
}

func TestNewBanditValidates(t *testing.T) {
	t.Parallel()
	e := &experiment.Experiment{Key: "v", Variants: []experiment.Variant{{"a", 1}, {"b", 1}, {"c", 0}}}
	for _, tc := range []struct {
		e    *experiment.Experiment
		cfg  experiment.BanditConfig
		want string
	}{
		{e, experiment.BanditConfig{Floor: 0.6}, `experiment "v": bandit floor: 0.6 not in [0, 1/2] for 2 variants of positive weight`},
		{e, experiment.BanditConfig{Floor: -0.1}, `experiment "v": bandit floor: -0.1 not in [0, 1/2] for 2 variants of positive weight`},
		{e, experiment.BanditConfig{Draws: -1}, `experiment "v": bandit draws: negative`},
		{&experiment.Experiment{Key: "v"}, experiment.BanditConfig{}, `experiment "v": variants: no variant`},
	} {
		_, err := experiment.NewBandit(tc.e, tc.cfg)
		var ve *experiment.ValidationError
		if err == nil || err.Error() != tc.want || !errors.As(err, &ve) {
			t.Errorf("NewBandit(%+v) = %v, want %s", tc.cfg, err, tc.want)
		}
	}
	if _, err := experiment.NewBandit(e, experiment.BanditConfig{Floor: 0.5}); err != nil {
		t.Errorf("floor 1/2: %v", err)
	}
	// The bandit keeps a copy: later changes to e do not reach it.
	b, _ := experiment.NewBandit(e, experiment.BanditConfig{})
	e.Variants[0].Key = "changed"
	if v, _ := b.Assign("", "x", "changed"); v == "changed" {
		t.Error("the bandit sees changes to the experiment")
	}
}

func TestBanditConcurrent(t *testing.T) {
	t.Parallel()
	e := &experiment.Experiment{Key: "c", Variants: []experiment.Variant{{"a", 1}, {"b", 1}}}
	b, _ := experiment.NewBandit(e, experiment.BanditConfig{Floor: 0.1, Draws: 500})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				seg := strconv.Itoa(i % 3)
				if v, in := b.Assign(seg, strconv.Itoa(g*10_000+i), ""); !in || (v != "a" && v != "b") {
					t.Errorf("Assign = %q, %v", v, in)
					return
				}
				if w := b.Weights(seg); math.Abs(w[0]+w[1]-1) > 1e-12 {
					t.Errorf("weights %v", w)
					return
				}
			}
		})
	}
	for i := range 20 {
		wg.Go(func() {
			b.Update(map[experiment.Cell]experiment.Counts{
				{Segment: "0", Variant: "a"}: {Visitors: 100 + i, Conversions: i},
				{Segment: "1", Variant: "b"}: {Visitors: 100 + i, Conversions: i},
			})
		})
	}
	wg.Wait()
}
