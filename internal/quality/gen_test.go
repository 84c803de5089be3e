package quality_test

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/tailorhq/tailor/internal/quality"
)

func TestGeneratorsDeterministic(t *testing.T) {
	for _, g := range []struct {
		name string
		gen  func(seed uint64, n int) quality.Dataset
	}{
		{"dense", quality.DenseN},
		{"tastes", quality.TastesN},
		{"shop", quality.ShopN},
	} {
		t.Run(g.name, func(t *testing.T) {
			a, b, c := g.gen(7, 2000), g.gen(7, 2000), g.gen(8, 2000)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("two data sets of seed 7 differ")
			}
			if reflect.DeepEqual(a, c) {
				t.Errorf("seeds 7 and 8 give the same data set")
			}
			if a.Name != g.name {
				t.Errorf("named %q", a.Name)
			}
			for i, bk := range a.Baskets {
				if len(bk) == 0 || !slices.IsSorted(bk) || len(slices.Compact(slices.Clone(bk))) != len(bk) {
					t.Fatalf("basket %d is not a non-empty set: %q", i, bk)
				}
			}
		})
	}
}

// TestShapes checks the shapes that the generators' documentation states.
func TestShapes(t *testing.T) {
	n, shopShare := 20_000, 0.9
	if testing.Short() {
		// Fewer draws find fewer of the 4,096 slots of returning buyers.
		n, shopShare = 5000, 0.95
	}
	for _, c := range []struct {
		d                  quality.Dataset
		minItems           int
		minMean, maxMean   float64
		minMax, maxMax     int
		minShare, maxShare float64 // of baskets, relative to generated
	}{
		{quality.DenseN(1, n), 1000, 15, 22, 90, 130, 1, 1},
		{quality.TastesN(1, n), 1400, 5, 9, 20, 40, 1, 1},
		{quality.ShopN(1, n), n / 4, 2.5, 4, 8, 24, 0.75, shopShare},
	} {
		st := c.d.Stats()
		t.Logf("%s: %+v", c.d.Name, st)
		share := float64(st.Baskets) / float64(n)
		if st.Items < c.minItems || st.Mean < c.minMean || st.Mean > c.maxMean || st.Max < c.minMax || st.Max > c.maxMax || share < c.minShare || share > c.maxShare {
			t.Errorf("%s: %+v, want at least %d items, a mean of %g to %g items, at most %d to %d, %g to %g baskets per draw",
				c.d.Name, st, c.minItems, c.minMean, c.maxMean, c.minMax, c.maxMax, c.minShare, c.maxShare)
		}
	}
	// Dense's band is flat: its items that no rule adds to (band-000 to
	// band-099, band-260 to band-299) are within a factor of two of each
	// other.
	bf := quality.NewBruteForce(quality.DenseN(1, n).Baskets)
	lo, hi := math.MaxInt, 0
	for i := range 300 {
		if i >= 100 && i < 260 {
			continue // planted consequents
		}
		c := bf.Count(fmt.Sprintf("band-%03d", i))
		lo, hi = min(lo, c), max(hi, c)
	}
	if hi > 2*lo || lo < n/50 {
		t.Errorf("band items occur in %d to %d of %d baskets, want a flat band of about 3%%", lo, hi, n)
	}
}

// TestPlanted checks that Dense's planted rules hold with the confidence
// documented: at least P (the consequent may be there anyway), and for a
// pair, clearly more than with either item alone.
func TestPlanted(t *testing.T) {
	d := quality.DenseN(1, 20_000)
	bf := quality.NewBruteForce(d.Baskets)
	ps := quality.Planted()
	if len(ps) != 124 {
		t.Fatalf("%d planted rules, documented 124", len(ps))
	}
	for _, p := range ps {
		na := bf.Count(p.If...)
		conf := float64(bf.Count(append(slices.Clone(p.If), p.Then)...)) / float64(na)
		// Four standard deviations of a binomial share below P.
		sd := math.Sqrt(p.P * (1 - p.P) / float64(na))
		if na < 10 || conf < p.P-4*sd || conf > p.P+0.2 {
			t.Errorf("%v ⇒ %s: confidence %.3f over %d baskets, planted %.2f", p.If, p.Then, conf, na, p.P)
		}
		if len(p.If) == 2 {
			for _, x := range p.If {
				single := float64(bf.Count(x, p.Then)) / float64(bf.Count(x))
				if single > conf-0.2 {
					t.Errorf("%v ⇒ %s: confidence %.3f, and %.3f with %s alone", p.If, p.Then, conf, single, x)
				}
			}
		}
	}
}
