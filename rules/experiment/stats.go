package experiment

import "math"

// Counts are the numbers of visitors exposed to a variant and of those who
// converted. Each visitor counts once in Visitors, and once at most in
// Conversions, however many goal events they sent.
//
// The functions of this package read Visitors below 0 as 0 and clamp
// Conversions into [0, Visitors].
type Counts struct {
	Visitors    int `json:"visitors"`
	Conversions int `json:"conversions"`
}

// clamp returns the visitors n and conversions k of c, made consistent.
func (c Counts) clamp() (n, k int) {
	n = max(c.Visitors, 0)
	k = min(max(c.Conversions, 0), n)
	return n, k
}

// Rate returns Conversions / Visitors, or 0 when there is no visitor.
func (c Counts) Rate() float64 {
	n, k := c.clamp()
	if n == 0 {
		return 0
	}
	return float64(k) / float64(n)
}

// Z95 is the two-sided 95% quantile of the standard normal distribution,
// Φ⁻¹(0.975).
const Z95 = 1.959963984540054

// Interval returns the Wilson score interval of the conversion rate of c at
// the given confidence level, such as 0.95. Unlike the textbook p ± z·SE,
// it stays within [0, 1] and holds close to its confidence level for rates
// near 0 and few visitors: 0 conversions of 20 gives [0, 0.161].
//
// With no visitor the interval is [0, 1]. A confidence of 1 or more gives
// [0, 1], and one that is not above 0 (or NaN) gives the bare rate.
func Interval(c Counts, confidence float64) (lo, hi float64) {
	n, k := c.clamp()
	if n == 0 {
		return 0, 1
	}
	var z float64
	switch {
	case confidence == 0.95:
		z = Z95
	case confidence >= 1:
		return 0, 1
	case confidence > 0:
		z = math.Sqrt2 * math.Erfinv(confidence)
	}
	return wilson(k, n, z)
}

func wilson(k, n int, z float64) (lo, hi float64) {
	nf := float64(n)
	p := float64(k) / nf
	z2n := z * z / nf
	denom := 1 + z2n
	center := (p + z2n/2) / denom
	half := z / denom * math.Sqrt(p*(1-p)/nf+z2n/(4*nf))
	lo, hi = max(center-half, 0), min(center+half, 1)
	if k == 0 {
		lo = 0
	}
	if k == n {
		hi = 1
	}
	return lo, hi
}

// exactTerms bounds the number of terms of the exact sum in
// ProbBeatsControl; past it, the normal approximation is used.
const exactTerms = 100_000

// ProbBeatsControl returns the posterior probability that the conversion
// rate of variant is above that of control: P(p_variant > p_control) where
// each rate has a uniform Beta(1, 1) prior, so the posterior of a rate
// with k conversions among n visitors is Beta(1+k, 1+n−k).
//
// The probability is computed exactly, with Evan Miller's closed form for
// two Beta variables of integer parameters, summed over the smallest of
// the four parameters (the sum has 1 + min(k, n−k) terms over either arm)
// with one multiplication per term. When every parameter is above
// 100,000, the sum would be long and both posteriors are so close to
// normal that the normal approximation of the difference of the rates is
// used instead; it is then within 10⁻⁵ of the exact value.
//
// Equal counts give 0.5, and ProbBeatsControl(a, b) + ProbBeatsControl(b,
// a) = 1, up to rounding.
func ProbBeatsControl(control, variant Counts) float64 {
	nA, kA := control.clamp()
	nB, kB := variant.clamp()
	aA, bA := float64(1+kA), float64(1+nA-kA)
	aB, bB := float64(1+kB), float64(1+nB-kB)
	if kA == kB && nA == nB {
		return 0.5
	}
	m := min(aA, bA, aB, bB)
	if m > exactTerms {
		return normalBeats(aA, bA, aB, bB)
	}
	var p float64
	switch m {
	case aB:
		p = beats(aA, bA, aB, bB)
	case aA:
		p = 1 - beats(aB, bB, aA, bA)
	case bA:
		// p_B > p_A ⇔ 1−p_A > 1−p_B, and 1−p ~ Beta(β, α).
		p = beats(bB, aB, bA, aA)
	default: // bB
		p = 1 - beats(bA, aA, bB, aB)
	}
	return min(max(p, 0), 1)
}

// beats returns P(X₂ > X₁) for X₁ ~ Beta(a1, b1) and X₂ ~ Beta(a2, b2) of
// integer parameters, as the sum over i < a2 of
//
//	B(a1+i, b1+b2) / ((b2+i) B(1+i, b2) B(a1, b1))
//
// (Evan Miller, "Formulas for Bayesian A/B testing", 2015). Consecutive
// terms have the ratio (a1+i)(b2+i) / ((a1+b1+b2+i)(1+i)), so only the
// first term, B(a1, b1+b2) / B(a1, b1), needs log-gamma; the running sum is
// kept scaled so that it neither overflows nor underflows.
func beats(a1, b1, a2, b2 float64) float64 {
	// The log of the first term, as differences of log-gammas that stay
	// accurate for a billion visitors.
	logScale := lgammaDiff(b1, a1) - lgammaDiff(b1+b2, a1)
	c := a1 + b1 + b2
	t, sum := 1.0, 0.0
	for i := 0.0; i < a2; i++ {
		sum += t
		t *= (a1 + i) * (b2 + i) / ((c + i) * (1 + i))
		if t > 0x1p500 {
			t *= 0x1p-500
			sum *= 0x1p-500
			logScale += 500 * math.Ln2
		}
	}
	return math.Exp(math.Log(sum) + logScale)
}

// lgammaDiff returns ln Γ(x+a) − ln Γ(x), x ≥ 1, a > 0. Subtracting two
// math.Lgamma values would lose the difference in their rounding errors
// when x+a is large (ln Γ(10⁹) ≈ 2·10¹⁰ is only known to about 4·10⁻⁶);
// instead, the difference of Stirling's series is taken term by term, after
// moving x to 10 or more with Γ(x+1) = xΓ(x).
func lgammaDiff(x, a float64) float64 {
	d := 0.0
	for ; x < 10; x++ {
		d += math.Log(x) - math.Log(x+a)
	}
	return d + (x-0.5)*math.Log1p(a/x) + a*math.Log(x+a) - a + stirlingTail(x+a) - stirlingTail(x)
}

// stirlingTail returns ln Γ(y) − ((y−½) ln y − y + ½ ln 2π), y ≥ 10, by
// its asymptotic series; the first term left out is below 10⁻¹².
func stirlingTail(y float64) float64 {
	r := 1 / y
	r2 := r * r
	return r * (1.0/12 - r2*(1.0/360-r2*(1.0/1260-r2*(1.0/1680))))
}

// normalBeats approximates P(X_B > X_A) for X ~ Beta(a, b) by normal
// variables of the same means and variances.
func normalBeats(aA, bA, aB, bB float64) float64 {
	mA, vA := betaMoments(aA, bA)
	mB, vB := betaMoments(aB, bB)
	return 0.5 * math.Erfc(-(mB-mA)/math.Sqrt(2*(vA+vB)))
}

func betaMoments(a, b float64) (mean, variance float64) {
	s := a + b
	return a / s, a * b / (s * s * (s + 1))
}
