package slots

import (
	"cmp"
	"context"
	"fmt"
	"html"
	"html/template"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/internal/errlist"
	"github.com/tailorhq/tailor/internal/filewatch"
	"github.com/tailorhq/tailor/middleware"
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
		v.ReadProfile(func(p *store.Profile) {
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

// A Set is a validated set of slots, ready to pick content. Make one with
// NewSet or Parse. It is safe for concurrent use. Its slots change only
// when it is reloaded (see Set.Reload and Set.Watch), and its experiments'
// bandits when they learn.
type Set struct {
	cur  atomic.Pointer[contents]
	now  func() time.Time
	opts []ParseOption // those of Parse, for Reload

	mu      sync.Mutex
	status  Status
	learned map[string]map[experiment.Cell]experiment.Counts // what each experiment's bandit was last updated with
}

// contents are the slots of a Set, replaced whole by a reload.
type contents struct {
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
	c, err := compileAll(slots)
	if err != nil {
		return nil, err
	}
	s := &Set{now: time.Now}
	s.cur.Store(c)
	s.status.Loaded = time.Now()
	s.status.Attempted = s.status.Loaded
	return s, nil
}

func compileAll(slots []Slot) (*contents, error) {
	var errs Errors
	c := &contents{slots: make(map[string]*slot, len(slots))}
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

// Status is the state of a Set's slots.
type Status struct {
	// Source is the file the current slots were parsed from, if any.
	Source string
	// Slots is the number of slots.
	Slots int
	// Loaded is when the current slots were loaded.
	Loaded time.Time
	// Attempted is when slots were last loaded or reloaded, successfully
	// or not.
	Attempted time.Time
	// Err is why the last attempt failed, or nil if it succeeded: the set
	// kept its slots.
	Err error
}

// Status returns the state of the set's slots.
func (s *Set) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status // Source and Slots are those of the current slots
	c := s.cur.Load()
	st.Source, st.Slots = c.source, len(c.names)
	return st
}

// Reload parses data as a slots file (see Parse), with the options the set
// was parsed with, and, only if it is valid, makes its slots the set's.
// Otherwise the set keeps its slots, and the error, which lists every
// problem, is also kept for Status. The bandit of an experiment whose key
// the set already had starts from what the previous one had learned.
func (s *Set) Reload(data []byte) error {
	return s.reload(data)
}

func (s *Set) reload(data []byte, opts ...ParseOption) error {
	n, err := Parse(data, append(slices.Clip(s.opts), opts...)...)
	if err != nil {
		s.failed(err)
		return err
	}
	c := n.cur.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sl := range c.slots {
		if sl.bandit != nil && s.learned[sl.Experiment.Key] != nil {
			sl.bandit.Update(s.learned[sl.Experiment.Key])
		}
	}
	s.cur.Store(c)
	now := time.Now()
	s.status = Status{Loaded: now, Attempted: now}
	return nil
}

// ReloadFile reads the slots file at path and reloads it as Reload does;
// problems are reported with the file's name.
func (s *Set) ReloadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		err = fmt.Errorf("slots: %w", err)
		s.failed(err)
		return err
	}
	return s.reload(data, Filename(path))
}

// Watch reloads the slots file at path whenever its content changes,
// checking every interval (2 seconds if interval is not positive), until
// ctx is done; then it returns ctx.Err(). It reloads the file within one
// interval if its content is not the last it read (a content is read
// twice, an interval apart, so that a half-written file is never
// loaded). A bad file, or one that cannot be
// read, leaves the set's slots as they were: Status reports why.
func (s *Set) Watch(ctx context.Context, path string, interval time.Duration) error {
	return filewatch.Poll(ctx, path, interval, func(data []byte, err error) {
		if err != nil {
			s.failed(fmt.Errorf("slots: %w", err))
			return
		}
		s.reload(data, Filename(path))
	})
}

func (s *Set) failed(err error) {
	s.mu.Lock()
	s.status.Attempted, s.status.Err = time.Now(), err
	s.mu.Unlock()
}

// learn notes what the bandit of the experiment key was updated with, for
// the bandit of a reloaded set.
func (s *Set) learn(key string, cells map[experiment.Cell]experiment.Counts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.learned == nil {
		s.learned = map[string]map[experiment.Cell]experiment.Counts{}
	}
	s.learned[key] = cells
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
func (s *Set) Slots() []string { return slices.Clone(s.cur.Load().names) }

// Slot returns a copy of the named slot as it was declared, and whether it
// exists.
func (s *Set) Slot(name string) (Slot, bool) {
	sl := s.cur.Load().slots[name]
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

// Source returns the file name given to Parse with Filename, or the file
// the set was last reloaded from, or "".
func (s *Set) Source() string { return s.cur.Load().source }

// Pick returns the content of the named slot for the visitor: the variant
// of highest priority that matches them, else the default, unless the
// visitor takes part in the slot's experiment (see Experiment), which then
// decides. A nil visitor (outside a wrapped request) gets what matches no
// segment. An unknown slot gives a Choice with an empty Variant.
//
// Pick records the visitor's exposure to the experiment, if any: call it
// when the content is rendered. A visitor already exposed to the same
// variant records nothing (two Picks racing in goroutines of one request
// may both record, which the results do not count twice). For a slot with
// an experiment, or a variant with a condition, Pick reads a copy of the
// visitor's profile: call it once per slot and page.
func (s *Set) Pick(v *middleware.Visitor, name string) Choice {
	sl := s.cur.Load().slots[name]
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
	doc := &document{now: s.now()}
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
