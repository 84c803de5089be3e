package experiment

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
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

// TestChooseIsRendezvous checks choose, which skips the logarithms
// between variants of equal weights, against the plain definition: the
// smallest −ln(u)/w, the first one on ties.
func TestChooseIsRendezvous(t *testing.T) {
	t.Parallel()
	plain := func(e *Experiment, h uint64) int {
		best, bestScore := -1, math.Inf(1)
		for i, v := range e.Variants {
			if !(v.Weight > 0) || math.IsInf(v.Weight, 1) {
				continue
			}
			u := unit(h ^ mix(fnv1a(fnvOffset64, v.Key)))
			if s := -math.Log(u) / v.Weight; s < bestScore {
				best, bestScore = i, s
			}
		}
		return best
	}
	for _, weights := range [][]float64{
		{1, 1}, {1, 2}, {2, 1, 2, 1, 3, 1}, {0, 1, 0, 1, 1}, {0.1, 0.1, 0.8}, {1, math.NaN(), 1, -1, 2},
	} {
		e := &Experiment{Key: "k"}
		for i, w := range weights {
			e.Variants = append(e.Variants, Variant{Key: string(rune('a' + i)), Weight: w})
		}
		for i := range 100_000 {
			h := mix(uint64(i))
			if got, want := choose(e, h, nil), plain(e, h); got != want {
				t.Fatalf("weights %v, hash %#x: choose = %d, want %d", weights, h, got, want)
			}
		}
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

// TestProbBest checks the Monte Carlo estimate of the probability of being
// best, which bandits of three variants or more use, against the exact
// value for two arms, and the sampler's moments.
func TestProbBest(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	const draws = 100_000
	for _, arms := range [][2]Counts{
		{{100, 10}, {100, 15}},
		{{1000, 50}, {1000, 65}},
		{{20, 3}, {20, 1}},
		{{1_000_000, 50_000}, {1_000_000, 50_300}},
		{{0, 0}, {1, 1}},
	} {
		got := probBest(rng, arms[:], draws)
		want := ProbBeatsControl(arms[0], arms[1])
		if tol := 4 * math.Sqrt(want*(1-want)/draws); math.Abs(got[1]-want) > tol || got[0]+got[1] != 1 {
			t.Errorf("%v: Monte Carlo %v, exact %.5f ± %.5f", arms, got, want, tol)
		}
	}
	for _, p := range [][2]float64{{1, 1}, {2, 5}, {51, 951}, {50_001, 950_001}} {
		var sum, sum2 float64
		const n = 200_000
		for range n {
			x := betaSample(rng, p[0], p[1])
			sum += x
			sum2 += x * x
		}
		mean, variance := betaMoments(p[0], p[1])
		gotMean, gotVar := sum/n, sum2/n-(sum/n)*(sum/n)
		if math.Abs(gotMean-mean) > 5*math.Sqrt(variance/n) || math.Abs(gotVar-variance) > 0.02*variance {
			t.Errorf("Beta%v: mean %.6g, variance %.6g; want %.6g, %.6g", p, gotMean, gotVar, mean, variance)
		}
	}
}
