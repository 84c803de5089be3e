package experiment

import "math"

// The constants of the hashing scheme described in the package
// documentation, under Hashing.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
	golden      = 0x9e3779b97f4a7c15
)

// fnv1a continues an FNV-1a-64 hash h over s, without allocating.
func fnv1a(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

// mix is the SplitMix64 finaliser (Stafford's Mix13).
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// unit maps a 64-bit hash to a float64 in the open interval (0, 1).
func unit(x uint64) float64 {
	return (float64(mix(x)>>11) + 0.5) / (1 << 53)
}

// base hashes the experiment's salt and key and the visitor's id.
func base(e *Experiment, visitorID string) uint64 {
	h := fnv1a(fnvOffset64, e.Salt)
	h = (h ^ 0) * fnvPrime64
	h = fnv1a(h, e.Key)
	h = (h ^ 0) * fnvPrime64
	return fnv1a(h, visitorID)
}

// Assign returns the variant of e for the visitor, and whether the visitor
// is in the experiment at all. A visitor who is not in it (outside
// Coverage) gets ("", false): show the default content and record no
// exposure. A held-out visitor gets (HoldoutVariant, true): show the
// default content and record the exposure, which measures the baseline.
//
// The result depends only on e's Salt, Key, Coverage, Holdout and variants
// (keys and weights) and on the visitor id: the same visitor always gets
// the same variant, in every process. See the package documentation for
// what each change to e moves. Assign does not check e.Segment (see
// Experiment.Eligible) nor earlier exposures (see AssignSticky).
//
// Assign never fails and never panics, and does not allocate. On an
// experiment that does not validate, weights that are not positive finite
// numbers count as 0; when no weight is left the visitor is not in the
// experiment. A Coverage outside [0, 1] is clamped.
func Assign(e *Experiment, visitorID string) (variant string, in bool) {
	return assign(e, visitorID, nil)
}

// AssignSticky is Assign for a visitor who may have been exposed to e
// before: previous is the variant of the visitor's latest ExposureEvent of
// e, or "" when there is none. A visitor stays where they were exposed,
// whatever e's weights, Coverage or Salt have become since, as long as
// previous is still the key of one of e's variants (even of weight 0), or
// is HoldoutVariant while e.Holdout is above 0. Otherwise, the variant was
// removed or the holdout ended, and the visitor is assigned afresh.
//
// To stop taking new visitors into an experiment while keeping the exposed
// ones where they are, show the default content to the visitors who have
// no previous exposure instead of calling AssignSticky for them.
func AssignSticky(e *Experiment, visitorID, previous string) (variant string, in bool) {
	if stillValid(e, previous) {
		return previous, true
	}
	return Assign(e, visitorID)
}

func stillValid(e *Experiment, previous string) bool {
	switch previous {
	case "":
		return false
	case HoldoutVariant:
		return e.Holdout > 0
	}
	return e.variantIndex(previous) >= 0
}

// assign is Assign with the variants' weights replaced by weights when it
// is not nil (a Bandit's weights, aligned with e.Variants).
func assign(e *Experiment, visitorID string, weights []float64) (string, bool) {
	h := base(e, visitorID)
	coverage := e.Coverage
	if coverage == 0 {
		coverage = 1
	}
	if !(unit(h+golden) < coverage) { // SplitMix64's first output

		return "", false
	}
	i := choose(e, h, weights)
	if i < 0 {
		return "", false
	}
	if unit(h+golden+golden) < e.Holdout { // and its second

		return HoldoutVariant, true
	}
	return e.Variants[i].Key, true
}

// choose returns the index of the variant of the visitor of hash h, by
// weighted rendezvous hashing, or -1 when no weight is positive. The score
// of a variant is −ln(u)/w; between variants of equal weights the larger u
// has the smaller score, so the logarithms are only taken between variants
// of different weights.
func choose(e *Experiment, h uint64, weights []float64) int {
	best := -1
	var bestU, bestW, bestScore float64 // bestScore is valid when > 0
	for i := range e.Variants {
		w := e.Variants[i].Weight
		if weights != nil {
			w = weights[i]
		}
		if !(w > 0) || math.IsInf(w, 1) {
			continue
		}
		u := unit(h ^ mix(fnv1a(fnvOffset64, e.Variants[i].Key)))
		switch {
		case best < 0:
			best, bestU, bestW, bestScore = i, u, w, 0
		case w == bestW:
			if u > bestU {
				best, bestU, bestScore = i, u, 0
			}
		default:
			if bestScore == 0 {
				bestScore = -math.Log(bestU) / bestW
			}
			if score := -math.Log(u) / w; score < bestScore {
				best, bestU, bestW, bestScore = i, u, w, score
			}
		}
	}
	return best
}
