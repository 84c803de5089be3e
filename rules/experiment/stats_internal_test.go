package experiment

import (
	"hash/fnv"
	"math"
	"testing"
)

func TestFNV1a(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "a", "foobar", "visitor-123", "\x00\xff"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := fnv1a(fnvOffset64, s), h.Sum64(); got != want {
			t.Errorf("fnv1a(%q) = %#x, want %#x", s, got, want)
		}
	}
	// The SplitMix64 finaliser: the first output of SplitMix64 seeded
	// with 0 is mix(γ) = 0xe220a8397b1dcdaf.
	if got := mix(golden); got != 0xe220a8397b1dcdaf {
		t.Errorf("mix(γ) = %#x", got)
	}
}

// TestNormalApproximation checks the claim of ProbBeatsControl's doc: past
// the exact sum's bound, the normal approximation is within 1e-5 of the
// exact value. The exact sum is computed here, at the bound, for rates near
// ½ (symmetric posteriors) and near 0 (the most skewed ones).
func TestNormalApproximation(t *testing.T) {
	if testing.Short() {
		t.Skip("long sums")
	}
	t.Parallel()
	worst := 0.0
	for _, rate := range []float64{0.5, 0.2, exactTerms / 4e6, 0.001} {
		n := math.Ceil(exactTerms / min(rate, 1-rate))
		k := math.Round(n * rate)
		sd := math.Sqrt(2 * rate * (1 - rate) / n)
		for _, shift := range []float64{0.2, 0.5, 1, 2, 3} {
			kB := math.Round((rate + shift*sd) * n)
			aA, bA := 1+k, 1+n-k
			aB, bB := 1+kB, 1+n-kB
			exact := beats(aA, bA, aB, bB)
			approx := normalBeats(aA, bA, aB, bB)
			d := math.Abs(exact - approx)
			worst = max(worst, d)
			if d > 1e-5 {
				t.Errorf("rate %v, n %v, %v sd: exact %.6f, normal %.6f", rate, n, shift, exact, approx)
			}
		}
	}
	t.Logf("largest difference %.2g", worst)
}
