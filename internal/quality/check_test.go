package quality_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/internal/quality"
	"github.com/tailorhq/tailor/rules/assoc"
)

// noThresholds is the configuration CheckRules needs.
var noThresholds = assoc.Config{MinSupport: -1, MinConfidence: -1, MinLift: -1}

func learnt(baskets [][]string) *assoc.Model {
	m := assoc.New(noThresholds)
	for _, b := range baskets {
		m.Learn(assoc.Basket{}, assoc.Basket{Bought: b})
	}
	return m
}

// TestCheckRules checks CheckRules against a model of a few baskets (few
// enough for the model's counts to be exact), then against counts of other
// baskets, where it must find every kind of discrepancy.
func TestCheckRules(t *testing.T) {
	baskets := [][]string{{"a", "b", "c"}, {"a", "b"}, {"a", "c"}, {"b", "c", "d"}, {"a", "d"}}
	m := learnt(baskets)
	antes := [][]string{{"a"}, {"b"}, {"c"}, {"d"}, {"a", "b"}, {"b", "a"}, {"a", "c"}, {"c", "d"}, {"a", "d"}, {"x"}}
	c := quality.CheckRules(m, quality.NewBruteForce(baskets), antes)
	t.Log(c)
	// a: b, c, d; b: a, c, d; c: a, b, d; d: a, b, c; {a,b}: c (twice);
	// {a,c}: b; {c,d}: b; {a,d}: none; x: none.
	if err := c.Err(); err != nil || c.Antecedents != 10 || c.Rules != 16 || c.Exact != 16 || c.Worst != 0 {
		t.Errorf("%s: %v; want 10 antecedents, 16 rules, all exact", c, err)
	}

	// Counts of the baskets without {a, d}: the model has a rule too many
	// ({a} ⇒ d), and every figure of {a} ⇒ b is off (5 baskets, not 4).
	c = quality.CheckRules(m, quality.NewBruteForce(baskets[:4]), [][]string{{"a"}})
	t.Log(c)
	if c.Extra != 1 || c.Wrong != 2 || c.Exact != 0 || c.Missing != 0 || c.Err() == nil || !strings.Contains(c.Err().Error(), "{a} ⇒ d given") {
		t.Errorf("without {a, d}: %s: %v", c, c.Err())
	}
	// Counts with one more basket {a, e}: {a} ⇒ e is missing.
	c = quality.CheckRules(m, quality.NewBruteForce(append(slices.Clone(baskets), []string{"a", "e"})), [][]string{{"a"}})
	t.Log(c)
	if c.Missing != 1 || c.Wrong != 3 || c.Worst != 1 || !strings.Contains(c.WorstRule, "{a} ⇒ e missing") {
		t.Errorf("with {a, e}: %s", c)
	}
}

func TestAntecedents(t *testing.T) {
	baskets := quality.TastesN(1, 3000).Baskets
	bf := quality.NewBruteForce(baskets)
	a := quality.Antecedents(bf, 5, 20, 1)
	if !slices.EqualFunc(a, quality.Antecedents(bf, 5, 20, 1), slices.Equal) {
		t.Errorf("two draws of seed 1 differ")
	}
	if len(a) != 5+10+20+20 {
		t.Fatalf("%d antecedents, want 5 items, their 10 pairs, 20 other items and 20 other pairs", len(a))
	}
	top := bf.Items()[:5]
	for i, x := range top {
		if !slices.Equal(a[i], []string{x}) {
			t.Errorf("antecedent %d is %q, want the item %q", i, a[i], x)
		}
	}
	seen := make(map[string]bool)
	for i, ante := range a {
		key := strings.Join(ante, "|")
		if seen[key] || !slices.IsSorted(ante) {
			t.Errorf("antecedent %d %q repeated or not sorted", i, ante)
		}
		seen[key] = true
		switch {
		case i >= 15 && i < 35 && (len(ante) != 1 || slices.Contains(top, ante[0])):
			t.Errorf("antecedent %d %q is not another item", i, ante)
		case i >= 35 && (len(ante) != 2 || bf.Count(ante...) == 0 || slices.Contains(top, ante[0]) && slices.Contains(top, ante[1])):
			t.Errorf("antecedent %d %q is not another pair that occurs", i, ante)
		}
	}
}
