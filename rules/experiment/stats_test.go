package experiment_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tailorhq/tailor/rules/experiment"
)

func TestInterval(t *testing.T) {
	t.Parallel()
	// Wilson score intervals at 95%. 50/100 is the textbook case; the
	// others are the published examples of Newcombe, "Two-sided confidence
	// intervals for the single proportion", Statistics in Medicine 17
	// (1998), table I, method 3, to the 4 decimals printed there.
	for _, tc := range []struct {
		k, n   int
		lo, hi float64
	}{
		{50, 100, 0.4038, 0.5962},
		{81, 263, 0.2553, 0.3662},
		{15, 148, 0.0624, 0.1605},
		{0, 20, 0, 0.1611},
		{1, 29, 0.0061, 0.1718},
		{29, 29, 0.8830, 1},
	} {
		lo, hi := experiment.Interval(experiment.Counts{Visitors: tc.n, Conversions: tc.k}, 0.95)
		if math.Abs(lo-tc.lo) > 0.00005 || math.Abs(hi-tc.hi) > 0.00005 {
			t.Errorf("%d/%d: [%.5f, %.5f], want [%.4f, %.4f]", tc.k, tc.n, lo, hi, tc.lo, tc.hi)
		}
	}
	// Full precision, against the formula evaluated separately with
	// 40-digit decimals.
	lo, hi := experiment.Interval(experiment.Counts{Visitors: 1000, Conversions: 5}, 0.95)
	if math.Abs(lo-0.00213753552732446) > 1e-15 || math.Abs(hi-0.0116509553733751) > 1e-15 {
		t.Errorf("5/1000: [%.17g, %.17g]", lo, hi)
	}
}

func TestIntervalLevelsAndEdges(t *testing.T) {
	t.Parallel()
	c := experiment.Counts{Visitors: 100, Conversions: 50}
	// At 99%, z = 2.5758293035489: half-width z/(1+z²/n)·√(¼/n + z²/4n²).
	z := 2.5758293035489
	n := 100.0
	half := z / (1 + z*z/n) * math.Sqrt(0.25/n+z*z/(4*n*n))
	lo, hi := experiment.Interval(c, 0.99)
	if math.Abs(lo-(0.5-half)) > 1e-12 || math.Abs(hi-(0.5+half)) > 1e-12 {
		t.Errorf("99%%: [%v, %v], want 0.5 ∓ %v", lo, hi, half)
	}
	lo95, hi95 := experiment.Interval(c, 0.95)
	lo90, hi90 := experiment.Interval(c, 0.90)
	if !(lo < lo95 && lo95 < lo90 && hi90 < hi95 && hi95 < hi) {
		t.Error("intervals do not widen with the confidence level")
	}
	for _, tc := range []struct {
		c      experiment.Counts
		conf   float64
		lo, hi float64
	}{
		{experiment.Counts{}, 0.95, 0, 1},
		{experiment.Counts{Visitors: -3, Conversions: 2}, 0.95, 0, 1},
		{c, 1, 0, 1},
		{c, 0, 0.5, 0.5},
		{c, math.NaN(), 0.5, 0.5},
		{experiment.Counts{Visitors: 10, Conversions: 20}, 0, 1, 1},
	} {
		lo, hi := experiment.Interval(tc.c, tc.conf)
		if lo != tc.lo || hi != tc.hi {
			t.Errorf("Interval(%+v, %v) = [%v, %v], want [%v, %v]", tc.c, tc.conf, lo, hi, tc.lo, tc.hi)
		}
	}
	if r := (experiment.Counts{Visitors: 4, Conversions: 1}).Rate(); r != 0.25 {
		t.Errorf("Rate = %v", r)
	}
	if r := (experiment.Counts{}).Rate(); r != 0 {
		t.Errorf("Rate without visitors = %v", r)
	}
}

// probCases are exact values of P(p_B > p_A) with Beta(1+k, 1+n−k)
// posteriors. They were computed as rational numbers with Python's
// fractions, by a formula other than the one under test: integrating B's
// density against A's distribution function, written as a binomial tail,
//
//	P = Σ_{j=a1}^{a1+b1−1} C(a1+b1−1, j) B(a2+j, b2+a1+b1−1−j) / B(a2, b2).
//
// The first two are small enough to do by hand: ∫ 2x·x dx = 2/3 and
// ∫ 2(1−x)(1−x²) dx = 5/6.
var probCases = []struct {
	nA, kA, nB, kB int
	want           float64
}{
	{0, 0, 1, 1, 2.0 / 3},
	{1, 0, 1, 1, 5.0 / 6},
	{100, 10, 100, 15, 0.85328378993396614},
	{1000, 50, 1000, 65, 0.92448037890257395},
	{20, 3, 20, 1, 0.17166979362101314},
	{1000, 120, 1000, 100, 0.076816561026440244},
	{2000, 200, 2000, 240, 0.97831857747686235},
	{1000, 990, 1000, 985, 0.16187801390666104},
	{500, 2, 800, 9, 0.90016399535220792},
	{300, 295, 200, 199, 0.84371995849827752},
	{5000, 250, 5000, 300, 0.98582512817123524},
}

func TestProbBeatsControlExact(t *testing.T) {
	t.Parallel()
	for _, tc := range probCases {
		a := experiment.Counts{Visitors: tc.nA, Conversions: tc.kA}
		b := experiment.Counts{Visitors: tc.nB, Conversions: tc.kB}
		if got := experiment.ProbBeatsControl(a, b); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("ProbBeatsControl(%v, %v) = %.17g, want %.17g", a, b, got, tc.want)
		}
		// Swapping the arms gives the complement.
		if got := experiment.ProbBeatsControl(b, a); math.Abs(got-(1-tc.want)) > 1e-12 {
			t.Errorf("ProbBeatsControl(%v, %v) = %.17g, want %.17g", b, a, got, 1-tc.want)
		}
	}
}

// TestProbBeatsControlLarge checks the floating-point evaluation for up
// to a billion visitors per arm, where subtracting log-gammas would lose
// six digits. The values are Miller's sum evaluated exactly, with Python's
// fractions.
func TestProbBeatsControlLarge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		nA, kA, nB, kB int
		want           float64
	}{
		{1_000_000, 20, 1_000_000, 30, 0.91961286762944738},
		{100_000_000, 50, 100_000_000, 70, 0.96570322272656006},
		{1_000_000_000, 5, 1_000_000_000, 9, 0.84912109466644292},
		{10_000_000, 300, 10_000_000, 250, 0.01653455016939839},
	} {
		a := experiment.Counts{Visitors: tc.nA, Conversions: tc.kA}
		b := experiment.Counts{Visitors: tc.nB, Conversions: tc.kB}
		if got := experiment.ProbBeatsControl(a, b); math.Abs(got-tc.want) > 1e-11*tc.want {
			t.Errorf("ProbBeatsControl(%v, %v) = %.17g, want %.17g", a, b, got, tc.want)
		}
	}
}

func TestProbBeatsControlSymmetry(t *testing.T) {
	t.Parallel()
	for _, c := range []experiment.Counts{{}, {10, 3}, {1000, 50}, {10_000_000, 500_000}} {
		if got := experiment.ProbBeatsControl(c, c); got != 0.5 {
			t.Errorf("ProbBeatsControl(%v, %v) = %v, want 0.5", c, c, got)
		}
	}
	// Same rate, different sizes: not exactly 0.5, but close.
	if got := experiment.ProbBeatsControl(experiment.Counts{Visitors: 1000, Conversions: 100},
		experiment.Counts{Visitors: 2000, Conversions: 200}); math.Abs(got-0.5) > 0.02 {
		t.Errorf("same rate: %v", got)
	}
	// More conversions of as many visitors: more likely to beat control.
	prev := 0.0
	for k := 0; k <= 100; k += 10 {
		got := experiment.ProbBeatsControl(experiment.Counts{Visitors: 100, Conversions: 50},
			experiment.Counts{Visitors: 100, Conversions: k})
		if !(got > prev) {
			t.Errorf("k=%d: %v, not above %v", k, got, prev)
		}
		prev = got
	}
}

// TestProbBeatsControlMonteCarlo checks against draws from the two
// posteriors, with a fixed seed, including counts large enough for the
// normal approximation.
func TestProbBeatsControlMonteCarlo(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 11))
	const draws = 200_000
	for _, tc := range []struct{ a, b experiment.Counts }{
		{experiment.Counts{Visitors: 40, Conversions: 4}, experiment.Counts{Visitors: 50, Conversions: 9}},
		{experiment.Counts{Visitors: 3000, Conversions: 150}, experiment.Counts{Visitors: 2900, Conversions: 160}},
		{experiment.Counts{Visitors: 10, Conversions: 10}, experiment.Counts{Visitors: 12, Conversions: 11}},
		{experiment.Counts{Visitors: 400_000, Conversions: 200_000}, experiment.Counts{Visitors: 400_000, Conversions: 200_600}},
	} {
		t.Run(fmt.Sprint(tc.a, tc.b), func(t *testing.T) {
			wins := 0
			for range draws {
				if beta(r, tc.b) > beta(r, tc.a) {
					wins++
				}
			}
			mc := float64(wins) / draws
			got := experiment.ProbBeatsControl(tc.a, tc.b)
			// Four standard errors of the estimate.
			if tol := 4 * math.Sqrt(got*(1-got)/draws); math.Abs(got-mc) > tol {
				t.Errorf("ProbBeatsControl = %.5f, Monte Carlo %.5f ± %.5f", got, mc, tol)
			}
		})
	}
}

// beta draws from the Beta(1+k, 1+n−k) posterior of c, as the (1+k)-th
// smallest of n+1 uniform variables would be too slow: use gammas by sums
// of exponentials for small shapes, and Wilson–Hilferty for large.
func beta(r *rand.Rand, c experiment.Counts) float64 {
	x := gamma(r, float64(1+c.Conversions))
	return x / (x + gamma(r, float64(1+c.Visitors-c.Conversions)))
}

func gamma(r *rand.Rand, a float64) float64 {
	if a <= 50 && a == math.Trunc(a) {
		s := 0.0
		for range int(a) {
			s += r.ExpFloat64()
		}
		return s
	}
	// Wilson–Hilferty: (X/a)^(1/3) is nearly normal, of mean 1−1/(9a) and
	// variance 1/(9a); exact enough for shapes in the thousands.
	z := r.NormFloat64()
	v := 1 - 1/(9*a) + z/math.Sqrt(9*a)
	return a * v * v * v
}

func TestProbBeatsControlClamps(t *testing.T) {
	t.Parallel()
	bad := experiment.Counts{Visitors: 10, Conversions: 30}
	all := experiment.Counts{Visitors: 10, Conversions: 10}
	if got, want := experiment.ProbBeatsControl(experiment.Counts{Visitors: 10, Conversions: 5}, bad),
		experiment.ProbBeatsControl(experiment.Counts{Visitors: 10, Conversions: 5}, all); got != want {
		t.Errorf("conversions above visitors: %v, want %v", got, want)
	}
	if got := experiment.ProbBeatsControl(experiment.Counts{Visitors: -1}, experiment.Counts{}); got != 0.5 {
		t.Errorf("negative visitors: %v", got)
	}
}
