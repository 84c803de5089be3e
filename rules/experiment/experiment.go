package experiment

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tailorhq/tailor/internal/errlist"
)

// ExposureEvent is the name of the event that records an exposure: the
// visitor was shown a variant (or was held out) of an experiment. Its
// properties are "experiment" (the experiment's Key) and "variant" (the
// variant's Key, or HoldoutVariant). The variant of a visitor's latest
// exposure is what AssignSticky and Bandit.Assign take as previous.
const ExposureEvent = "experiment_exposure"

// HoldoutVariant is the variant reported for the visitors held out of an
// experiment (see Experiment.Holdout). They see the default content and are
// measured as a baseline. No variant may use this key.
const HoldoutVariant = "$holdout"

// A Variant is one arm of an experiment.
type Variant struct {
	// Key names the variant in templates, exposure events and results.
	// Keys are unique within an experiment and not empty. A visitor's
	// variant depends on the keys, not on the order of Variants, so renaming
	// a variant moves its visitors while reordering variants moves no one.
	Key string `json:"key"`

	// Weight is the variant's share of the experiment's traffic, relative to
	// the other weights: 1, 1, 2 sends a quarter, a quarter and a half of
	// the visitors to the three variants. Weights need not add up to 1.
	// A variant with weight 0 gets no new visitors, so appending a variant
	// with weight 0 moves no one; visitors already exposed to it stay with
	// AssignSticky.
	Weight float64 `json:"weight"`
}

// An Experiment is an A/B/n test on a slot of a page.
//
// The zero value of each field but Key and Variants is a working default.
// An Experiment must not be modified while Assign, AssignSticky or Results
// use it; a Bandit keeps its own copy.
type Experiment struct {
	// Key identifies the experiment in exposure events and results, and is
	// hashed into every assignment: a new key gives everyone a new draw.
	Key string `json:"key"`

	// Variants are the arms of the test, at least one. Variants[0] is the
	// control that the others are compared with.
	Variants []Variant `json:"variants"`

	// Coverage is the share of eligible visitors that take part in the
	// experiment, in [0, 1]. The others are not in it: they see the default
	// content and are not counted. The zero value means 1, everyone; an
	// experiment that should take no new visitor is one that callers stop
	// assigning (see AssignSticky). Raising Coverage only brings visitors in
	// and lowering it only takes visitors out: no one changes variant.
	Coverage float64 `json:"coverage,omitzero"`

	// Holdout is the share of the visitors in the experiment who are held
	// out, in [0, 1]: they are assigned HoldoutVariant, see the default
	// content and are counted as a baseline. Zero means no holdout.
	// Changing Holdout only moves visitors between the holdout and the
	// variant they would otherwise have.
	Holdout float64 `json:"holdout,omitzero"`

	// Salt is hashed with Key into every assignment. Changing it reshuffles
	// the visitors not yet exposed, for instance to rerun a test with a
	// fresh draw; the zero value is a salt like any other.
	Salt string `json:"salt,omitzero"`

	// Segment, when not empty, limits the experiment to the visitors of
	// that segment (see Eligible). The zero value means every visitor.
	Segment string `json:"segment,omitzero"`

	// Goals are the names of the events that count as a conversion (see
	// IsGoal). A visitor converts once, with the first goal event after
	// the exposure; counts are of visitors, not of events.
	Goals []string `json:"goals,omitzero"`
}

// Eligible reports whether a visitor who is in the given segments may take
// part in e: always when e.Segment is empty, otherwise when segments
// contains e.Segment. Assign does not check it: callers assign only
// eligible visitors.
func (e *Experiment) Eligible(segments ...string) bool {
	return e.Segment == "" || slices.Contains(segments, e.Segment)
}

// IsGoal reports whether an event of that name is a conversion for e.
func (e *Experiment) IsGoal(event string) bool {
	return slices.Contains(e.Goals, event)
}

// Control returns the key of the control variant, Variants[0], or "" when
// e has no variant.
func (e *Experiment) Control() string {
	if len(e.Variants) == 0 {
		return ""
	}
	return e.Variants[0].Key
}

// variantIndex returns the index of the variant with that key, or -1.
func (e *Experiment) variantIndex(key string) int {
	for i := range e.Variants {
		if e.Variants[i].Key == key {
			return i
		}
	}
	return -1
}

// Validate reports every problem of e, as ValidationErrors, or nil. Assign
// never fails, even on an experiment that does not validate (see Assign):
// validate experiments when they are loaded.
func (e *Experiment) Validate() error {
	var errs ValidationErrors
	add := func(field, msg string) {
		errs = append(errs, &ValidationError{Experiment: e.Key, Field: field, Msg: msg})
	}
	if e.Key == "" {
		add("key", "empty")
	}
	if len(e.Variants) == 0 {
		add("variants", "no variant")
	}
	total := 0.0
	seen := make(map[string]int, len(e.Variants))
	for i, v := range e.Variants {
		field := "variants[" + strconv.Itoa(i) + "]"
		switch {
		case v.Key == "":
			add(field+".key", "empty")
		case v.Key == HoldoutVariant:
			add(field+".key", strconv.Quote(HoldoutVariant)+" is reserved for the holdout")
		default:
			if j, dup := seen[v.Key]; dup {
				add(field+".key", fmt.Sprintf("%q already used by variants[%d]", v.Key, j))
			} else {
				seen[v.Key] = i
			}
		}
		switch {
		case math.IsNaN(v.Weight) || math.IsInf(v.Weight, 0):
			add(field+".weight", "not a finite number")
		case v.Weight < 0:
			add(field+".weight", "negative")
		default:
			total += v.Weight
		}
	}
	switch {
	case len(e.Variants) > 0 && total == 0:
		add("variants", "no variant has a positive weight")
	case math.IsInf(total, 0):
		add("variants", "weights add up to more than the largest float64")
	}
	if !(e.Coverage >= 0 && e.Coverage <= 1) {
		add("coverage", "not in [0, 1]")
	}
	if !(e.Holdout >= 0 && e.Holdout <= 1) {
		add("holdout", "not in [0, 1]")
	}
	for i, g := range e.Goals {
		if g == "" {
			add("goals["+strconv.Itoa(i)+"]", "empty")
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// A ValidationError is one problem of an experiment, such as
//
//	experiment "hero-test": variants[2].weight: negative
type ValidationError struct {
	// Experiment is the experiment's Key.
	Experiment string
	// Field is the path of the field in Go or JSON terms, such as
	// "coverage" or "variants[2].weight"; "" is the experiment as a whole.
	Field string
	// Msg describes the problem.
	Msg string
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("experiment ")
	b.WriteString(strconv.Quote(e.Experiment))
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ValidationErrors lists the problems of an experiment, in field order.
// errors.As finds each *ValidationError in it.
type ValidationErrors = errlist.List[*ValidationError]
