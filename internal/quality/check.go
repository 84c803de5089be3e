package quality

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/tailorhq/tailor/rules/assoc"
)

// Tolerance is the relative difference up to which CheckRules takes two
// figures of a rule as equal: counts of whole baskets are exact, and the
// ratios differ only by the rounding of a division or two.
const Tolerance = 1e-12

// A Check is what CheckRules found.
type Check struct {
	// Antecedents is the number of antecedents checked, Rules the number of
	// rules brute force finds for them: one per consequent that occurs
	// with the antecedent.
	Antecedents, Rules int
	// Exact counts the rules the model gives with every figure right,
	// Wrong those it gives with a figure wrong, Missing those it does not
	// give. Extra counts the rules the model gives that brute force does
	// not find (a consequent that never occurs with the antecedent, a
	// consequent given twice, or a wrong antecedent).
	Exact, Wrong, Missing, Extra int
	// Worst is the largest relative error of a figure (count, support,
	// confidence or lift) over the rules brute force finds, a missing rule
	// counting 1 (its count, 0, is 100% off); WorstRule says which.
	Worst     float64
	WorstRule string
	// Examples describes the first few discrepancies.
	Examples []string
}

// maxExamples is how many discrepancies a Check describes.
const maxExamples = 5

// ExactShare returns the share of the rules that the model gives exactly
// (1 when there are none).
func (c Check) ExactShare() float64 {
	if c.Rules == 0 {
		return 1
	}
	return float64(c.Exact) / float64(c.Rules)
}

// String summarises c in a line.
func (c Check) String() string {
	s := fmt.Sprintf("%d antecedents, %d rules: %d exact (%.2f%%), %d wrong, %d missing, %d extra; worst relative error %.3g",
		c.Antecedents, c.Rules, c.Exact, 100*c.ExactShare(), c.Wrong, c.Missing, c.Extra, c.Worst)
	if c.WorstRule != "" {
		s += " (" + c.WorstRule + ")"
	}
	return s
}

// Err returns nil when the model gave every rule exactly and nothing
// else, and otherwise an error with the summary and the first
// discrepancies.
func (c Check) Err() error {
	if c.Wrong+c.Missing+c.Extra == 0 {
		return nil
	}
	return fmt.Errorf("rules not exact: %s; first: %s", c, strings.Join(c.Examples, "; "))
}

// CheckRules compares the rules m gives for each antecedent (one or two
// items) with the exact counts of bf, which must index the baskets m
// learnt, each once. m must have been made with no thresholds
// (MinSupport, MinConfidence and MinLift -1), so that Rules(ante...) lists
// every consequent Z that occurs with ante, with
//
//	Count      = count(ante ∪ {Z})
//	Support    = Count / baskets
//	Confidence = Count / count(ante)
//	Lift       = Confidence · baskets / count(Z)
//
// where baskets is bf.Baskets(). Figures are compared within Tolerance.
func CheckRules(m *assoc.Model, bf *BruteForce, antecedents [][]string) Check {
	var c Check
	n := float64(bf.Baskets())
	example := func(format string, args ...any) {
		if len(c.Examples) < maxExamples {
			c.Examples = append(c.Examples, fmt.Sprintf(format, args...))
		}
	}
	for _, ante := range antecedents {
		ante = set(slices.Clone(ante))
		if len(ante) == 0 {
			continue
		}
		c.Antecedents++
		name := "{" + strings.Join(ante, ", ") + "}"
		want := bf.Consequents(ante...)
		na := float64(bf.Count(ante...))
		got := make(map[string]assoc.Rule)
		for _, r := range m.Rules(ante...) {
			_, dup := got[r.Then]
			switch {
			case !slices.Equal(r.If, ante):
				c.Extra++
				example("%s: a rule of antecedent %v", name, r.If)
			case dup:
				c.Extra++
				example("%s ⇒ %s given twice", name, r.Then)
			case want[r.Then] == 0:
				c.Extra++
				example("%s ⇒ %s given (count %g), but they never occur together", name, r.Then, r.Count)
			default:
				got[r.Then] = r
			}
		}
		// In a stable order, so that the examples and the worst rule are
		// the same from run to run.
		zs := make([]string, 0, len(want))
		for z := range want {
			zs = append(zs, z)
		}
		slices.Sort(zs)
		for _, z := range zs {
			c.Rules++
			count := float64(want[z])
			conf := count / na
			w := assoc.Rule{Count: count, Support: count / n, Confidence: conf, Lift: conf * n / float64(bf.Count(z))}
			r, ok := got[z]
			rule := name + " ⇒ " + z
			if !ok {
				c.Missing++
				if c.Worst < 1 {
					c.Worst, c.WorstRule = 1, rule+" missing"
				}
				example("%s missing (count %g, confidence %.4g)", rule, count, conf)
				continue
			}
			e := max(relErr(r.Count, w.Count), relErr(r.Support, w.Support), relErr(r.Confidence, w.Confidence), relErr(r.Lift, w.Lift))
			if e <= Tolerance {
				c.Exact++
				continue
			}
			c.Wrong++
			detail := fmt.Sprintf("%s: count %g, support %.6g, confidence %.6g, lift %.6g; want %g, %.6g, %.6g, %.6g",
				rule, r.Count, r.Support, r.Confidence, r.Lift, w.Count, w.Support, w.Confidence, w.Lift)
			if e > c.Worst {
				c.Worst, c.WorstRule = e, detail
			}
			example("%s", detail)
		}
	}
	return c
}

// relErr returns |got - want| / |want|, or |got| when want is 0.
func relErr(got, want float64) float64 {
	if want == 0 {
		return math.Abs(got)
	}
	if math.IsNaN(got) {
		return math.Inf(1)
	}
	return math.Abs(got-want) / math.Abs(want)
}

// Antecedents returns antecedents to check: the top most frequent items
// of bf, every pair of them, and sample other items and sample other
// pairs (two items of a basket drawn at random, not both among the top),
// drawn from seed.
func Antecedents(bf *BruteForce, top, sample int, seed uint64) [][]string {
	items := bf.Items()
	top = min(top, len(items))
	var out [][]string
	for _, x := range items[:top] {
		out = append(out, []string{x})
	}
	for i, x := range items[:top] {
		for _, y := range items[i+1 : top] {
			out = append(out, set([]string{x, y}))
		}
	}
	r := rand.New(rand.NewPCG(seed, 0xa17e))
	rest := items[top:]
	for _, i := range r.Perm(len(rest))[:min(sample, len(rest))] {
		out = append(out, []string{rest[i]})
	}
	isTop := make(map[string]bool, top)
	for _, x := range items[:top] {
		isTop[x] = true
	}
	seen := make(map[[2]string]bool)
	for tries, n := 0, 0; n < sample && tries < 50*sample && len(bf.baskets) > 0; tries++ {
		b := bf.baskets[r.IntN(len(bf.baskets))]
		if len(b) < 2 {
			continue
		}
		i := r.IntN(len(b))
		j := r.IntN(len(b) - 1)
		if j >= i {
			j++
		}
		x, y := bf.ids[b[i]], bf.ids[b[j]]
		if y < x {
			x, y = y, x
		}
		if isTop[x] && isTop[y] || seen[[2]string{x, y}] {
			continue
		}
		seen[[2]string{x, y}] = true
		out = append(out, []string{x, y})
		n++
	}
	return out
}
