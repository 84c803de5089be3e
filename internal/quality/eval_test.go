package quality_test

import (
	"fmt"
	"math"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/internal/quality"
)

func TestSplit(t *testing.T) {
	d := quality.TastesN(1, 101)
	train, test := quality.Split(d, 0.2, 1)
	if len(train.Baskets) != 81 || len(test.Baskets) != 20 {
		t.Fatalf("%d train and %d test baskets of 101, want 81 and 20", len(train.Baskets), len(test.Baskets))
	}
	key := func(bs [][]string) []string {
		var ks []string
		for _, b := range bs {
			ks = append(ks, strings.Join(b, "|"))
		}
		slices.Sort(ks)
		return ks
	}
	if !slices.Equal(key(append(slices.Clone(train.Baskets), test.Baskets...)), key(d.Baskets)) {
		t.Errorf("train and test are not a partition of the baskets")
	}
	again, _ := quality.Split(d, 0.2, 1)
	other, _ := quality.Split(d, 0.2, 2)
	if !reflect.DeepEqual(again, train) || reflect.DeepEqual(other, train) {
		t.Errorf("the split does not depend on the seed alone")
	}
	if all, none := quality.Split(d, 0, 1); len(all.Baskets) != 101 || len(none.Baskets) != 0 {
		t.Errorf("a test share of 0: %d and %d baskets", len(all.Baskets), len(none.Baskets))
	}
}

func TestPopularity(t *testing.T) {
	var p quality.Popularity
	for _, b := range [][]string{{"a", "b", "c"}, {"a", "b"}, {"a", "c", "d"}} {
		p.Learn(b)
	}
	for _, c := range []struct {
		visible []string
		k       int
		want    []string
	}{
		{nil, 10, []string{"a", "b", "c", "d"}}, // b and c tie: by id
		{[]string{"b"}, 2, []string{"a", "c"}},
		{[]string{"a", "c"}, 1, []string{"b"}},
		{[]string{"a", "b", "c", "d"}, 3, []string{}},
	} {
		if got := p.Recommend(c.visible, c.k); !slices.Equal(got, c.want) {
			t.Errorf("Recommend(%q, %d) = %q, want %q", c.visible, c.k, got, c.want)
		}
	}
	for range 4 {
		p.Learn([]string{"d"})
	}
	if got := p.Recommend(nil, 2); !slices.Equal(got, []string{"d", "a"}) {
		t.Errorf("after learning d four times: %q", got)
	}
}

func TestItemKNN(t *testing.T) {
	var kn quality.ItemKNN
	// Counts: a 3, b 3, c 2, d 1, x 4, p 1, v 1, q 4.
	// Co-occurrences: ab 2, ac 1, bc 1, xp 1, vq 1.
	for _, b := range [][]string{
		{"a", "b"}, {"a", "b"}, {"a", "c"}, {"b", "c"}, {"d"},
		{"p", "x"}, {"x"}, {"x"}, {"x"}, {"q", "v"}, {"q"}, {"q"}, {"q"},
	} {
		kn.Learn(b)
	}
	for _, c := range []struct {
		visible []string
		k       int
		want    []string
	}{
		// b: 2/√9 = 0.67, c: 1/√6 = 0.41, then the most popular others.
		{[]string{"a"}, 4, []string{"b", "c", "q", "x"}},
		// c: 2/√6; then popularity.
		{[]string{"a", "b"}, 2, []string{"c", "q"}},
		// p: 1/√4, q: 1/√4, a tie that popularity breaks.
		{[]string{"v", "x"}, 2, []string{"q", "p"}},
		// An unknown item scores nothing.
		{[]string{"zz"}, 3, []string{"q", "x", "a"}},
	} {
		if got := kn.Recommend(c.visible, c.k); !slices.Equal(got, c.want) {
			t.Errorf("Recommend(%q, %d) = %q, want %q", c.visible, c.k, got, c.want)
		}
	}
}

// groups returns baskets of disjoint groups of three items (g0-a, g0-b,
// g0-c, ...): group g n·(5-g) times.
func groups(n int) quality.Dataset {
	var d quality.Dataset
	for g := range 5 {
		for range n * (5 - g) {
			d.Baskets = append(d.Baskets, []string{fmt.Sprintf("g%d-a", g), fmt.Sprintf("g%d-b", g), fmt.Sprintf("g%d-c", g)})
		}
	}
	return d
}

// broken recommends what it must not: a visible item, twice, and k+1
// items.
type broken struct{ quality.Popularity }

func (b *broken) Recommend(visible []string, k int) []string {
	return append([]string{visible[0], visible[0]}, slices.Repeat([]string{"new"}, k-1)...)
}

// TestEvaluate checks the protocol where the answers are known: baskets
// are whole groups, so co-occurrence finds the hidden item every time and
// popularity only in the most popular group.
func TestEvaluate(t *testing.T) {
	train := groups(10)
	test := quality.Dataset{Baskets: [][]string{{"g9-a"}, {}}} // too small: not evaluated
	for g := range 5 {
		for range 4 {
			test.Baskets = append(test.Baskets, []string{fmt.Sprintf("g%d-a", g), fmt.Sprintf("g%d-b", g), fmt.Sprintf("g%d-c", g)})
		}
	}
	nan := math.NaN()
	for _, c := range []struct {
		name string
		rec  quality.Recommender
		want quality.Result
	}{
		{"popularity", &quality.Popularity{}, quality.Result{Baskets: 20, HitRate: 0.2, Recall: 0.2, Explained: nan}},
		{"item-kNN", &quality.ItemKNN{}, quality.Result{Baskets: 20, HitRate: 1, Recall: 1, Explained: nan}},
		// One item by a rule (the one mate not visible), one popular.
		{"tailor", &quality.Tailor{}, quality.Result{Baskets: 20, HitRate: 1, Recall: 1, Explained: 0.5}},
		// Per call: one past k, the visible item, and it again.
		{"broken", &broken{}, quality.Result{Baskets: 20, Explained: nan, Invalid: 20 * 2 * 3}},
	} {
		got := quality.Evaluate(train, test, c.rec, 2, 1)
		if !same(got, c.want) {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}

	// Half of six items hidden, two recommendations: recall is over
	// min(3, 2).
	six := quality.Dataset{Baskets: [][]string{{"a", "b", "c", "d", "e", "f"}}}
	if got := quality.Evaluate(six, six, &quality.ItemKNN{}, 2, 1); !same(got, quality.Result{Baskets: 1, HitRate: 1, Recall: 1, Explained: nan}) {
		t.Errorf("six items: %+v", got)
	}
}

func same(a, b quality.Result) bool {
	eq := func(x, y float64) bool { return x == y || math.IsNaN(x) && math.IsNaN(y) }
	return a.Baskets == b.Baskets && a.Invalid == b.Invalid && eq(a.HitRate, b.HitRate) && eq(a.Recall, b.Recall) && eq(a.Explained, b.Explained)
}

// TestEvaluateDeterministic checks that a result depends on the seed, not
// on the number of goroutines that evaluate.
func TestEvaluateDeterministic(t *testing.T) {
	train, test := quality.Split(quality.TastesN(3, 3000), 0.2, 1)
	a := quality.Evaluate(train, test, &quality.ItemKNN{}, 10, 1)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	b := quality.Evaluate(train, test, &quality.ItemKNN{}, 10, 1)
	c := quality.Evaluate(train, test, &quality.ItemKNN{}, 10, 2)
	t.Logf("seed 1: %+v; seed 2: %+v", a, c)
	if !same(a, b) {
		t.Errorf("on %d goroutines then 1: %+v, then %+v", runtime.NumCPU(), a, b)
	}
	if same(a, c) {
		t.Errorf("seeds 1 and 2 give the same result")
	}
	if a.Baskets < 500 || a.HitRate < 0.2 {
		t.Errorf("item-kNN on tastes: %+v", a)
	}
}

func TestTailor(t *testing.T) {
	tl := &quality.Tailor{}
	for _, b := range groups(4).Baskets {
		tl.Learn(b)
	}
	items, explained := tl.RecommendExplained([]string{"g1-a"}, 4)
	// The two mates by their rules (confidence 1, ties by id), then the
	// most popular items.
	if want := []string{"g1-b", "g1-c", "g0-a", "g0-b"}; !slices.Equal(items, want) || explained != 2 {
		t.Errorf("RecommendExplained(g1-a) = %q, %d by a rule; want %q, 2", items, explained, want)
	}
	if got := tl.Recommend([]string{"g1-a"}, 4); !slices.Equal(got, items) {
		t.Errorf("Recommend = %q, RecommendExplained = %q", got, items)
	}
	if st := tl.Model().Stats(); st.Baskets != 60 {
		t.Errorf("the model learnt %d baskets, want 60", st.Baskets)
	}
}
