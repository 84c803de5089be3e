package experiment

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
)

// DefaultDraws is the number of Monte Carlo draws of BanditConfig.Draws
// when it is zero.
const DefaultDraws = 10_000

// BanditConfig configures a Bandit.
type BanditConfig struct {
	// Floor is the smallest share of a segment's traffic that each variant
	// of positive weight keeps, so that a variant that looks bad early
	// goes on being measured. It is in [0, 1/k] for k such variants
	// (1/k gives every variant the same share). Zero means no floor: a
	// variant may then get (almost) no traffic. 0.05 is a common choice.
	Floor float64

	// Draws is the number of joint draws from the posteriors that estimate
	// each variant's probability of being the best, when three variants or
	// more have a positive weight; the estimates are within about
	// 1/√Draws. With two, the probability is exact (see ProbBeatsControl)
	// and there are no draws. Zero means DefaultDraws.
	Draws int

	// Seed seeds the random draws, from a PCG source per segment. Update is
	// deterministic: the same seed and counts give the same weights, on
	// every instance of the site. The zero value is a seed like any other.
	Seed uint64
}

// A Bandit shifts an experiment's traffic, per segment, towards the
// variant that converts best in that segment, by Thompson sampling: each
// variant's share is its posterior probability of having the highest
// conversion rate, under a uniform Beta(1, 1) prior on each rate. With k
// variants of positive weight and BanditConfig.Floor f, a variant of
// probability p gets f + (1 − k·f)·p of the traffic.
//
// The weights change only when Update is called, typically every few
// minutes with the counts so far; between updates, assignment is
// deterministic as with Assign. Because Update is deterministic too, the
// instances of a site that update from the same counts assign alike. A
// weight change moves only visitors not yet exposed (with previous ""):
// exposed visitors stay with their variant.
//
// Variants of weight 0 in the experiment take no part: they get no
// traffic. The holdout, if any, stays out of the bandit at its fixed
// share and keeps measuring the baseline.
//
// A Bandit is safe for concurrent use. Assign does not block on Update.
type Bandit struct {
	e       Experiment
	floor   float64
	draws   int
	seed    uint64
	initial []float64 // e's weights, as shares

	mu      sync.Mutex // serialises Update
	weights atomic.Pointer[map[string][]float64]
}

// NewBandit returns a Bandit for e, with every segment at e's weights until
// the first Update. It validates e and cfg. The Bandit keeps a copy of e.
func NewBandit(e *Experiment, cfg BanditConfig) (*Bandit, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	cp := *e
	cp.Variants = slices.Clone(e.Variants)
	cp.Goals = slices.Clone(e.Goals)
	active, total := 0, 0.0
	for _, v := range cp.Variants {
		if v.Weight > 0 {
			active++
			total += v.Weight
		}
	}
	if !(cfg.Floor >= 0 && cfg.Floor*float64(active) <= 1) {
		return nil, ValidationErrors{{Experiment: e.Key, Field: "bandit floor",
			Msg: fmt.Sprintf("%v not in [0, 1/%d] for %d variants of positive weight", cfg.Floor, active, active)}}
	}
	if cfg.Draws < 0 {
		return nil, ValidationErrors{{Experiment: e.Key, Field: "bandit draws", Msg: "negative"}}
	}
	b := &Bandit{e: cp, floor: cfg.Floor, draws: cfg.Draws, seed: cfg.Seed}
	if b.draws == 0 {
		b.draws = DefaultDraws
	}
	b.initial = make([]float64, len(cp.Variants))
	for i, v := range cp.Variants {
		b.initial[i] = v.Weight / total
	}
	b.weights.Store(&map[string][]float64{})
	return b, nil
}

// Update sets the weights of every segment from counts, the totals so far
// of each variant in each segment (cells of other experiments' variants
// and of HoldoutVariant are ignored). A segment with no cell in counts goes
// back to the experiment's weights.
//
// With three variants or more, an Update takes a few milliseconds per
// segment with the default Draws; with two, microseconds. Assignments go on meanwhile with
// the previous weights.
func (b *Bandit) Update(counts map[Cell]Counts) {
	b.mu.Lock()
	defer b.mu.Unlock()
	perSegment := map[string][]Counts{}
	for c, n := range counts {
		i := b.e.variantIndex(c.Variant)
		if i < 0 {
			continue
		}
		arms := perSegment[c.Segment]
		if arms == nil {
			arms = make([]Counts, len(b.e.Variants))
			perSegment[c.Segment] = arms
		}
		arms[i] = n
	}
	next := make(map[string][]float64, len(perSegment))
	for seg, arms := range perSegment {
		next[seg] = b.thompson(seg, arms)
	}
	b.weights.Store(&next)
}

// thompson returns the shares of a segment's variants: the floor plus the
// rest in proportion to each variant's probability of being best.
func (b *Bandit) thompson(segment string, arms []Counts) []float64 {
	var act []int // the variants of positive weight
	for i, v := range b.e.Variants {
		if v.Weight > 0 {
			act = append(act, i)
		}
	}
	best := make([]float64, len(act)) // P(best), by arm
	switch len(act) {
	case 1:
		best[0] = 1
	case 2:
		best[1] = ProbBeatsControl(arms[act[0]], arms[act[1]])
		best[0] = 1 - best[1]
	default:
		counts := make([]Counts, len(act))
		for j, i := range act {
			counts[j] = arms[i]
		}
		rng := rand.New(rand.NewPCG(b.seed, fnv1a(fnvOffset64, segment)))
		best = probBest(rng, counts, b.draws)
	}
	w := make([]float64, len(b.e.Variants))
	rest := 1 - b.floor*float64(len(act))
	for j, i := range act {
		w[i] = b.floor + rest*best[j]
	}
	return w
}

// Weights returns the current shares of traffic of e's variants in the
// segment, aligned with e.Variants and adding up to 1.
func (b *Bandit) Weights(segment string) []float64 {
	return slices.Clone(b.current(segment))
}

func (b *Bandit) current(segment string) []float64 {
	if w, ok := (*b.weights.Load())[segment]; ok {
		return w
	}
	return b.initial
}

// Assign is AssignSticky with the bandit's current weights for the
// visitor's segment: previous is the variant of the visitor's latest
// exposure to the experiment, or "". Coverage and Holdout apply as in
// Assign. It does not allocate.
func (b *Bandit) Assign(segment, visitorID, previous string) (variant string, in bool) {
	if stillValid(&b.e, previous) {
		return previous, true
	}
	return assign(&b.e, visitorID, b.current(segment))
}

// probBest estimates, for each arm, the posterior probability that its
// rate is the highest, as the share of the draws it wins.
func probBest(rng *rand.Rand, arms []Counts, draws int) []float64 {
	post := make([][2]float64, len(arms)) // Beta(α, β) posteriors
	for j, c := range arms {
		n, k := c.clamp()
		post[j] = [2]float64{float64(1 + k), float64(1 + n - k)}
	}
	wins := make([]float64, len(arms))
	for range draws {
		win, winX := 0, -1.0
		for j, p := range post {
			if x := betaSample(rng, p[0], p[1]); x > winX {
				win, winX = j, x
			}
		}
		wins[win]++
	}
	for j := range wins {
		wins[j] /= float64(draws)
	}
	return wins
}

// betaSample draws from Beta(a, b), a, b ≥ 1, as X/(X+Y) with X ~ Γ(a)
// and Y ~ Γ(b).
func betaSample(r *rand.Rand, a, b float64) float64 {
	x := gammaSample(r, a)
	return x / (x + gammaSample(r, b))
}

// gammaSample draws from Γ(a, 1), a ≥ 1, by Marsaglia and Tsang's method
// ("A simple method for generating gamma variables", 2000).
func gammaSample(r *rand.Rand, a float64) float64 {
	d := a - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.Float64()
		x2 := x * x
		if u < 1-0.0331*x2*x2 || math.Log(u) < 0.5*x2+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}
