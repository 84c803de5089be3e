package slots

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules/experiment"
	"github.com/tailorhq/tailor/store"
	"github.com/tidwall/gjson"
)

// TraitPrefix starts the name of the trait that remembers a visitor's
// exposure to an experiment: "experiment:" + the experiment's key.
const TraitPrefix = store.ExposureTraitPrefix

// OtherSegment is the results segment of the visitors of an experiment
// with a Breakdown who are in none of its segments.
const OtherSegment = "$other"

// An Experiment is an A/B/n test on a slot: its variants' keys are keys of
// the slot's variants (or of its default), whose content they show.
//
// A visitor takes part when they are in the experiment's Segment (or when
// it has none), have a visitor id (they are tracked) and fall within its
// Coverage. For them the experiment decides, whatever the slot's
// priorities would pick: their variant is assigned by
// experiment.AssignSticky (or by the Bandit), from the visitor id and the
// experiment's key, so it is the same on every instance and after
// restarts. Held-out visitors, and visitors not taking part, see what the
// slot shows without the experiment.
type Experiment struct {
	experiment.Experiment

	// Breakdown lists the segments that results, and the bandit, are kept
	// per: a visitor counts in the first of them they are in at exposure,
	// or in OtherSegment. Empty: results are for all visitors together
	// (segment "").
	Breakdown []string

	// Bandit, if set, runs the experiment as a Thompson-sampling bandit
	// per breakdown segment (see experiment.Bandit), updated by
	// Tally.Refresh.
	Bandit *experiment.BanditConfig
}

// compileExperiment checks the slot's experiment and makes its bandit.
func (sl *slot) compileExperiment() Errors {
	var errs Errors
	e := sl.Experiment
	problem := func(field, format string, args ...any) {
		errs = append(errs, &Error{Slot: sl.Name, Field: "experiment." + field, Msg: fmt.Sprintf(format, args...)})
	}
	var ve experiment.ValidationErrors
	if err := e.Validate(); err != nil {
		if l, ok := err.(experiment.ValidationErrors); ok {
			ve = l
		} else {
			problem("", "%v", err)
		}
	}
	for _, p := range ve {
		problem(p.Field, "%s", p.Msg)
	}
	for i, va := range e.Variants {
		if va.Key != "" && va.Key != experiment.HoldoutVariant && sl.byKey[va.Key] == nil {
			problem(fmt.Sprintf("variants[%d].key", i), "%q is not a variant of the slot", va.Key)
		}
	}
	for i, s := range e.Breakdown {
		if s == "" || s == OtherSegment {
			problem(fmt.Sprintf("breakdown[%d]", i), "bad segment name %q", s)
		}
	}
	if e.Bandit != nil && len(ve) == 0 {
		b, err := experiment.NewBandit(&e.Experiment, *e.Bandit)
		if err != nil {
			problem("bandit", "%v", err)
		}
		sl.bandit = b
	}
	e.Breakdown = slices.Clone(e.Breakdown)
	e.Variants = slices.Clone(e.Variants)
	e.Goals = slices.Clone(e.Goals)
	return errs
}

// inExperiment reports whether the variant is an arm of the slot's
// experiment.
func (sl *slot) inExperiment(key string) bool {
	e := sl.Experiment
	return e != nil && slices.ContainsFunc(e.Variants, func(v experiment.Variant) bool { return v.Key == key })
}

// breakdown returns the results segment of the visitor.
func (e *Experiment) breakdown(v *middleware.Visitor) string {
	if len(e.Breakdown) == 0 {
		return ""
	}
	for _, s := range e.Breakdown {
		if v.In(s) {
			return s
		}
	}
	return OtherSegment
}

// exposure is the trait that remembers a visitor's exposure.
type exposure struct {
	Variant string `json:"variant"`
	Segment string `json:"segment,omitempty"`
	// Goals are the counts of the goal events (Profile.Counts) at
	// exposure: a later count above them is a conversion.
	Goals map[string]int `json:"goals,omitempty"`
}

// experiment applies the slot's experiment to the visitor, whose content
// without it is c.
func (sl *slot) experiment(v *middleware.Visitor, c Choice) Choice {
	e := sl.Experiment
	id := v.ID()
	if id == "" || !v.Tracked() || (e.Segment != "" && !v.In(e.Segment)) {
		return c
	}
	var prev string
	// The trait, and the exposure events (counted, and in the recent
	// events), which page views do not change: the page views kept
	// aside are left aside (they could only push an exposure out of the
	// recent events, which the next refresh of the profile does).
	readProfileParts(v, previousParts, func(p *store.Profile) { prev = previous(p, e.Key) })
	seg := e.breakdown(v)
	var arm string
	var in bool
	if sl.bandit != nil {
		arm, in = sl.bandit.Assign(seg, id, prev)
	} else {
		arm, in = experiment.AssignSticky(&e.Experiment, id, prev)
	}
	if !in {
		return c
	}
	if arm != experiment.HoldoutVariant {
		if va := sl.byKey[arm]; va != nil {
			c = sl.choice(va)
		}
	}
	c.Experiment, c.Arm = e.Key, arm
	// A new visitor (first request, no cookie yet) is not recorded: they
	// reach the store only if they come back, and their assignment is
	// deterministic, so their next render records the same arm.
	if arm != prev && !v.New() {
		record(v, e, arm, seg)
	}
	return c
}

// record records the visitor's exposure: an experiment.ExposureEvent with
// the properties experiment, variant and segment, which also sets the
// trait TraitPrefix+key.
func record(v *middleware.Visitor, e *Experiment, arm, seg string) {
	x := exposure{Variant: arm, Segment: seg}
	readProfile(v, func(p *store.Profile) {
		for _, g := range e.Goals {
			if x.Goals == nil {
				x.Goals = make(map[string]int, len(e.Goals))
			}
			if p != nil {
				x.Goals[g] = p.Counts[g]
			}
		}
	})
	props, err := json.Marshal(map[string]string{"experiment": e.Key, "variant": arm, "segment": seg})
	if err != nil {
		return
	}
	traits, err := json.Marshal(map[string]exposure{TraitPrefix + e.Key: x})
	if err != nil {
		return
	}
	// Record fails only on events without a type.
	_ = v.Record(store.Event{Type: store.TypeTrack, Name: experiment.ExposureEvent, Props: props, Traits: traits})
}

// previousParts are the parts of the profile that previous reads.
var previousParts = store.TouchTraits | store.TouchCount(experiment.ExposureEvent)

// previous returns the variant of the visitor's latest exposure to the
// experiment: that of the latest ExposureEvent among the recent events,
// else that of the exposure trait (kept when the event has left the ring
// of recent events), else "".
func previous(prof *store.Profile, key string) string {
	if prof == nil {
		return ""
	}
	// The exposure event sets the trait too, so the trait says the same
	// as the latest exposure event; the ring is searched only when the
	// trait is missing (dropped at store.Limits.TraitsBytes). Only the
	// variant is read, on every page with the slot.
	if raw := prof.Trait(TraitPrefix + key); raw != nil {
		if v := gjson.GetBytes(raw, "variant"); v.Type == gjson.String && v.Str != "" {
			return v.Str
		}
	}
	if !prof.MayHaveRecent(experiment.ExposureEvent) {
		return "" // never exposed: no need to decode the ring
	}
	for i := prof.Recent.Len() - 1; i >= 0; i-- {
		ev := prof.Recent.At(i)
		if ev.Type != store.TypeTrack || ev.Name != experiment.ExposureEvent || len(ev.Props) == 0 {
			continue
		}
		var p struct {
			Experiment string `json:"experiment"`
			Variant    string `json:"variant"`
		}
		if json.Unmarshal(ev.Props, &p) == nil && p.Experiment == key && p.Variant != "" {
			return p.Variant
		}
	}
	return ""
}
