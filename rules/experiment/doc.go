// Package experiment assigns visitors to the variants of A/B/n tests and
// computes their results. It is pure: no I/O, no clock, no global state,
// and only the standard library.
//
// # Experiments
//
// An [Experiment] tests the variants of one slot of a page (a banner, a
// headline, a call to action), optionally for the visitors of one segment
// only. Its variants have relative weights; Variants[0] is the control.
// Coverage takes only a share of the eligible visitors into the experiment,
// and Holdout holds a share of those out: they see the default content and
// are measured as a baseline. Validate experiments when they are loaded;
// assignment itself never fails.
//
// # Assignment
//
// [Assign] hashes the experiment's Salt and Key with the visitor id, so a
// visitor gets the same variant in every process and after every restart,
// without shared state or seeds. The coverage, holdout and variant draws
// are separate hashes, and the variant is chosen by weighted rendezvous
// hashing, one hash per variant key (see Hashing below). So the edits that
// keep the weights move no one:
//
//   - adding a variant of weight 0, at any place (added first, it becomes
//     the control of the results);
//   - reordering variants;
//   - changing Goals or Segment (which callers check with Eligible).
//
// The edits that change shares move as few visitors as they can:
//
//   - raising Coverage only brings visitors in, lowering it only takes
//     visitors out;
//   - changing Holdout only moves visitors between the holdout and the
//     variant they would otherwise have;
//   - changing one variant's weight only moves visitors between that
//     variant and the others.
//
// Changing Salt or Key, or renaming a variant, draws again.
//
// # Hashing
//
// The scheme is fixed: it is part of the package's compatibility promise,
// since a change would move visitors on upgrade, and it is simple enough to
// reproduce in another language.
//
//	base    = FNV-1a-64(Salt ‖ 0x00 ‖ Key ‖ 0x00 ‖ visitorID)
//	unit(x) = ((mix(x) >> 11) + ½) / 2⁵³, a float64 in (0, 1)
//	the visitor is in the experiment ⇔ unit(base + γ) < Coverage (1 if 0)
//	the visitor is held out          ⇔ unit(base + 2γ) < Holdout
//	the variant is the v of the smallest −ln(u_v) / v.Weight, first on ties,
//	                  among the weights > 0, where
//	                  u_v = unit(base XOR mix(FNV-1a-64(v.Key)))
//
// Strings are hashed as their bytes, arithmetic is modulo 2⁶⁴, mix is the
// SplitMix64 finaliser (Stafford's Mix13:
// z ← (z ⊕ z>>30)·0xbf58476d1ce4e5b9; z ← (z ⊕ z>>27)·0x94d049bb133111eb;
// z ⊕ z>>31) and γ = 0x9e3779b97f4a7c15, the SplitMix64 increment: the
// coverage and holdout draws are the first two outputs of SplitMix64
// seeded with base. FNV-1a alone mixes the last bytes of its input poorly
// (ids that differ in their last character get close hashes); the
// finaliser spreads every input bit over the 53 bits that are kept.
//
// −ln(u_v) / w_v is an exponential variable of rate w_v, and the smallest
// of independent exponentials is v with probability w_v / Σw: that is
// weighted rendezvous hashing. Each variant's draw depends on its own key
// alone, which is what makes the edits above move no one, or as few
// visitors as they can. The scores are compared in float64: two scores
// would have to agree to a rounding error for the platform's logarithm to
// matter, which happens to fewer than one visitor in 2⁴⁰.
//
// # Stickiness, exposures and conversions
//
// A visitor who has seen a variant keeps it, whatever the experiment has
// become, as long as the variant exists. The caller records an exposure
// when the variant is rendered (not when it is assigned), as an event named
// [ExposureEvent] with the experiment and variant keys, and passes the
// variant of the latest one to [AssignSticky] or [Bandit.Assign].
//
// A conversion is an event whose name is one of the experiment's Goals
// ([Experiment.IsGoal]), sent by an exposed visitor after the exposure. The
// results count visitors: [Counts] holds, per segment and variant, the
// exposed visitors and how many of them converted.
//
// # Results
//
// [Results] turns the counts into a table: per segment and variant, the
// conversion rate with its 95% Wilson score interval ([Interval]) and the
// Bayesian probability that the variant beats the control
// ([ProbBeatsControl]), with uniform Beta priors, computed exactly.
//
// # Bandits
//
// A [Bandit] runs an experiment as a multi-armed bandit, per segment: it
// shifts each segment's traffic to the variant that converts best in that
// segment, by Thompson sampling, while every variant keeps a floor share.
// Its weights change only when it is updated with the counts so far, and
// exposed visitors stay where they are.
package experiment
