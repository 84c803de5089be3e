package assoc

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSelectRank(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 1))
	for range 2000 {
		n := 1 + r.IntN(60)
		fs := make([]float64, n)
		for i := range fs {
			fs[i] = float64(r.IntN(1 + r.IntN(10))) // many ties
		}
		k := r.IntN(n)
		sorted := slices.Sorted(slices.Values(fs))
		if got := selectRank(slices.Clone(fs), k); got != sorted[k] {
			t.Fatalf("selectRank(%v, %d) = %g, want %g", fs, k, got, sorted[k])
		}
	}
}
