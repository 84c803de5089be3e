package slots

import (
	"cmp"
	"fmt"
	"html"
	"html/template"
	"slices"
	"time"

	"github.com/tailorhq/tailor/internal/errlist"
	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/internal/core"
	"github.com/tailorhq/tailor/middleware/internal/edgehook"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/rules/experiment"
	"github.com/tailorhq/tailor/store"
)

// DefaultKey is the key of a slot's default variant when it has none.
const DefaultKey = "default"

// A Slot is a place on a page (a hero banner, a call to action) whose
// content depends on the visitor.
type Slot struct {
	// Name identifies the slot in templates and in the data-slot
	// attribute. Required, unique within a Set.
	Name string

	// Variants are the slot's alternative contents. Pick shows the
	// variant of highest Priority that matches the visitor (the first
	// declared on ties).
	Variants []Variant

	// Default is shown when no variant matches. Its Key defaults to
	// DefaultKey; its Segments and Condition must be empty.
	Default Variant

	// Experiment, if set, tests some of the slot's variants against each
	// other (see Experiment).
	Experiment *Experiment
}

// A Variant is one content of a slot.
type Variant struct {
	// Key names the variant in the data-variant attribute, in
	// experiments and in results. Required, unique within its slot.
	Key string

	// Segments: the variant matches visitors in any of them.
	Segments []string
	// Condition, if set, must hold too: a JSON condition over the
	// visitor's document (see rules.Condition). Evaluating it renders the
	// visitor's profile, which costs more than a segment test: prefer
	// segments.
	//
	// A variant with neither Segments nor Condition matches no one by
	// itself: it is shown only as an arm of the slot's experiment.
	Condition *rules.Condition

	// Priority orders the variants: the highest that matches is shown.
	Priority int

	// Fields are the variant's content, for templates: title, text,
	// image, link... Values are strings, numbers, booleans, lists and
	// objects, as decoded by encoding/json, and are escaped by
	// html/template like any other value. They must not be modified.
	Fields map[string]any

	// Template, if set, names the template that renders the variant
	// (see FuncMap's renderSlot).
	Template string
}

// matches reports whether v picks the variant by itself.
func (va *Variant) matches(v *middleware.Visitor, doc *document) bool {
	if len(va.Segments) == 0 && va.Condition == nil {
		return false
	}
	if len(va.Segments) > 0 && !slices.ContainsFunc(va.Segments, v.In) {
		return false
	}
	if va.Condition != nil {
		d := doc.get(v)
		if d == nil || !va.Condition.MatchAt(d, doc.now) {
			return false
		}
	}
	return true
}

// document renders the visitor's document once per Pick, when a
// condition needs it.
type document struct {
	now  time.Time
	done bool
	doc  []byte
}

func (d *document) get(v *middleware.Visitor) []byte {
	if !d.done {
		d.done = true
		readProfile(v, func(p *store.Profile) {
			in := &rules.Input{Profile: p, Request: v.Facts(), Now: d.now}
			d.doc = in.Document()
		})
	}
	return d.doc
}

// A Choice is the content of a slot picked for a visitor.
type Choice struct {
	// Slot is the slot's name.
	Slot string
	// Variant is the key of the variant shown: a variant's or the
	// default's. Empty when the slot does not exist.
	Variant string
	// Fields are the variant's content. They must not be modified.
	Fields map[string]any
	// Template is the name of the template that renders the variant, if
	// any.
	Template string

	// Experiment is the key of the slot's experiment when the visitor
	// takes part in it, else "".
	Experiment string
	// Arm is the visitor's variant of the experiment: the key of the
	// variant shown, or experiment.HoldoutVariant for a visitor held out
	// (who is shown what the slot shows without the experiment).
	Arm string
}

// Attrs returns the attributes that mark the element showing the
// choice, for analytics and tests:
//
//	data-slot="hero" data-variant="welcome-back"
//
// Both values are escaped. Use it inside a tag: <section {{.Attrs}}>.
func (c Choice) Attrs() template.HTMLAttr {
	return template.HTMLAttr(`data-slot="` + html.EscapeString(c.Slot) +
		`" data-variant="` + html.EscapeString(c.Variant) + `"`)
}

// A Set is a validated set of slots: the document of a slots file, or
// slots declared in Go. Make one with NewSet or Parse; an Engine picks
// content from it. Its slots never change (a reload makes another Set);
// the bandits of its experiments learn (see Tally). It is safe for
// concurrent use.
type Set struct {
	slots  map[string]*slot
	names  []string // in declaration order
	source string
}

// slot is a Slot compiled for Pick.
type slot struct {
	Slot
	order  []*Variant // by priority, highest first, then declaration order
	byKey  map[string]*Variant
	bandit *experiment.Bandit
}

// NewSet returns the set of slots, or every problem found in them, as
// Errors.
func NewSet(slots ...Slot) (*Set, error) {
	return compileAll(slots)
}

func compileAll(slots []Slot) (*Set, error) {
	var errs Errors
	c := &Set{slots: make(map[string]*slot, len(slots))}
	for i := range slots {
		sl, es := compile(&slots[i], i)
		errs = append(errs, es...)
		if sl == nil {
			continue
		}
		if _, dup := c.slots[sl.Name]; dup {
			errs = append(errs, &Error{Slot: sl.Name, Field: fmt.Sprintf("[%d].name", i), Msg: "duplicate slot name"})
			continue
		}
		c.slots[sl.Name] = sl
		c.names = append(c.names, sl.Name)
	}
	keys := map[string]string{}
	for _, name := range c.names {
		e := c.slots[name].Experiment
		if e == nil {
			continue
		}
		if other, dup := keys[e.Key]; dup && e.Key != "" {
			errs = append(errs, &Error{Slot: name, Field: "experiment.key",
				Msg: fmt.Sprintf("experiment %q is already the experiment of slot %q", e.Key, other)})
		}
		keys[e.Key] = name
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// compile checks one slot and prepares it for Pick.
func compile(in *Slot, i int) (*slot, Errors) {
	var errs Errors
	problem := func(field, format string, args ...any) {
		errs = append(errs, &Error{Slot: in.Name, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if in.Name == "" {
		problem(fmt.Sprintf("[%d].name", i), "a slot needs a name")
	}
	sl := &slot{Slot: *in, byKey: make(map[string]*Variant, len(in.Variants)+1)}
	sl.Variants = slices.Clone(in.Variants)
	if sl.Default.Key == "" {
		sl.Default.Key = DefaultKey
	}
	if len(sl.Default.Segments) > 0 || sl.Default.Condition != nil {
		problem("default", "the default variant has no segments nor condition: it is shown when no variant matches")
	}
	sl.byKey[sl.Default.Key] = &sl.Default
	for j := range sl.Variants {
		va := &sl.Variants[j]
		field := fmt.Sprintf("variants[%d]", j)
		switch {
		case va.Key == "":
			problem(field+".key", "a variant needs a key")
		case va.Key == experiment.HoldoutVariant:
			problem(field+".key", "%q is reserved for the experiment's holdout", va.Key)
		case sl.byKey[va.Key] != nil:
			problem(field+".key", "duplicate variant key %q", va.Key)
		default:
			sl.byKey[va.Key] = va
		}
		if slices.Contains(va.Segments, "") {
			problem(field+".segments", "empty segment name")
		}
		sl.order = append(sl.order, va)
	}
	slices.SortStableFunc(sl.order, func(a, b *Variant) int { return cmp.Compare(b.Priority, a.Priority) })
	if e := sl.Experiment; e != nil {
		sl.Experiment = new(*e)
		errs = append(errs, sl.compileExperiment()...)
	}
	for j := range sl.Variants {
		va := &sl.Variants[j]
		if len(va.Segments) == 0 && va.Condition == nil && !sl.inExperiment(va.Key) {
			problem(fmt.Sprintf("variants[%d]", j),
				"variant %q has neither segments nor condition, and is not in the slot's experiment: it is never shown", va.Key)
		}
	}
	return sl, errs
}

// Slots returns the names of the slots, in the order they were declared.
func (s *Set) Slots() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.names)
}

// Len returns the number of slots.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.names)
}

// Slot returns a copy of the named slot as it was declared, and whether it
// exists.
func (s *Set) Slot(name string) (Slot, bool) {
	sl := s.slot(name)
	if sl == nil {
		return Slot{}, false
	}
	out := sl.Slot
	out.Variants = slices.Clone(sl.Variants)
	if sl.Experiment != nil {
		out.Experiment = new(*sl.Experiment)
	}
	return out, true
}

func (s *Set) slot(name string) *slot {
	if s == nil {
		return nil
	}
	return s.slots[name]
}

// Source returns the file name given to Parse with Filename, or "".
func (s *Set) Source() string {
	if s == nil {
		return ""
	}
	return s.source
}

// pick is Engine.Pick with the set's slots.
func (s *Set) pick(v *middleware.Visitor, name string) Choice {
	sl := s.slot(name)
	if sl == nil {
		return Choice{Slot: name}
	}
	// A preview link (middleware.Personalizer.PreviewLink) that chooses a
	// variant of this slot wins, and no exposure is recorded.
	if key, ok := v.Preview().Variant(name); ok {
		if va := sl.byKey[key]; va != nil {
			return sl.choice(va)
		}
	}
	// So does the variant key of a cacheable page (middleware's
	// Edge.Cacheable): the page is made for every visitor of the key.
	if key, ok := edgehook.Pinned(v, name); ok {
		if va := sl.byKey[key]; va != nil {
			return sl.choice(va)
		}
	}
	doc := &document{now: time.Now()}
	c := sl.choose(v, doc)
	if sl.Experiment != nil {
		c = sl.experiment(v, c)
	}
	return c
}

// choose picks the slot's content without its experiment.
func (sl *slot) choose(v *middleware.Visitor, doc *document) Choice {
	for _, va := range sl.order {
		if va.matches(v, doc) {
			return sl.choice(va)
		}
	}
	return sl.choice(&sl.Default)
}

func (sl *slot) choice(va *Variant) Choice {
	return Choice{Slot: sl.Name, Variant: va.Key, Fields: va.Fields, Template: va.Template}
}

// An Error is one problem of a slot declared in Go (see NewSet). Parse
// reports rules.ConditionError values instead, which locate the problem in
// the file.
type Error struct {
	// Slot is the slot's name.
	Slot string
	// Field is the path of the field, such as "variants[2].key" or
	// "experiment.variants[1].weight"; "" is the slot as a whole.
	Field string
	// Msg describes the problem.
	Msg string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("slot %q: ", e.Slot)
	if e.Field != "" {
		s += e.Field + ": "
	}
	return s + e.Msg
}

// Errors lists the problems of slots declared in Go. errors.As finds each
// *Error in it.
type Errors = errlist.List[*Error]

// readProfile calls fn with v's profile without copying it, under the
// visitor's lock (fn must not keep it, nor call v's methods that read the
// profile or record). A render reads the profile once per slot.
func readProfile(v *middleware.Visitor, fn func(*store.Profile)) {
	core.Unwrap.ReadProfile(v, store.TouchAll, fn)
}

// readProfileParts is readProfile for fn that reads only the parts of
// the profile in parts (see store.Touch): the page views the visitor's
// state keeps aside need not be folded in first.
func readProfileParts(v *middleware.Visitor, parts store.Touch, fn func(*store.Profile)) {
	core.Unwrap.ReadProfile(v, parts, fn)
}
