package rules

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"

	"github.com/tailorhq/tailor/store"
)

// A Rule decides whether a visitor belongs to a segment.
//
// Match must be pure and safe for concurrent use: it reads the input and
// returns the same answer for the same input. An error means the rule could
// not be evaluated for this input (a trait of the wrong type, say); the
// engine treats it as "no match" and counts it, and never fails a request.
//
// A rule may also implement Dependent, so that results can be reused while
// nothing it depends on changes, and Explainer, to say why it matched.
type Rule interface {
	Match(in *Input) (bool, error)
}

// RuleFunc adapts a function to a Rule. It depends on every request fact
// and on the time (see Dependent), so the engine re-evaluates it on every
// request.
type RuleFunc func(in *Input) (bool, error)

// Match calls f.
func (f RuleFunc) Match(in *Input) (bool, error) { return f(in) }

// A Dependent rule says what its answer depends on besides the profile.
// The engine uses it to tell how long a classification stays valid (see
// Result). A rule that is not Dependent is assumed to read every request
// fact and to change its answer at any time.
type Dependent interface {
	Rule
	Dependencies() Dependencies
}

// A Touching rule says which parts of the profile its answer depends on
// (see store.Touch), so that a remembered classification it took part in
// stays valid across events that change none of them (see
// Engine.ClassifyMemo): a rule that reads only the purchases is not asked
// again after each page view. A rule that is not Touching depends on
// every part. Parts are coarse: a counter's key may share its bit with
// others (store.TouchCount and the like), which only ever makes the
// engine ask again when it need not.
//
// The profile is not all a rule may read. A rule must also say what it
// reads of the request and whether time changes its answer (Dependent),
// and a rule that consults something else that changes (a model that
// learns from everyone's purchases, say) needs its engine told when it
// does: see Engine.Invalidate.
type Touching interface {
	Rule
	Touches() store.Touch
}

// Dependencies are what a rule's answer depends on besides the profile.
type Dependencies struct {
	// Request is the set of request facts the rule reads.
	Request Fields
	// Time is true when the answer may change as time passes, the profile
	// and the request staying the same (a window such as "in the last 7
	// days"). Such a rule calls Input.ChangesAt during Match with the next
	// time its answer may change.
	Time bool
}

// Union returns the dependencies of a rule that depends on d and e.
func (d Dependencies) Union(e Dependencies) Dependencies {
	return Dependencies{Request: d.Request | e.Request, Time: d.Time || e.Time}
}

// DependenciesOf returns the dependencies of r, and false when r does not
// say (it is not Dependent): then it may depend on anything.
func DependenciesOf(r Rule) (Dependencies, bool) {
	if d, ok := r.(Dependent); ok {
		return d.Dependencies(), true
	}
	return Dependencies{Request: AllFields, Time: true}, false
}

// Fields is a set of request facts: the fields of Facts.
type Fields uint16

// The request facts, one bit each.
const (
	FieldPath Fields = 1 << iota
	FieldReferrer
	FieldSource
	FieldMedium
	FieldCampaign
	FieldDevice
	FieldCountry
	FieldNew

	// AllFields is every request fact.
	AllFields = FieldPath | FieldReferrer | FieldSource | FieldMedium | FieldCampaign | FieldDevice | FieldCountry | FieldNew
)

// factNames are the names of the request facts in the document, in the
// order of the Fields bits.
var factNames = [...]string{"path", "referrer", "utmSource", "utmMedium", "utmCampaign", "device", "country", "new"}

// Input is what a rule sees: the visitor's profile, the facts of the current
// request, and the time.
//
// An Input caches what rules compute from it (the document that conditions
// read, decayed interest scores...). The engine's methods start afresh on
// every call, but a Rule.Match called directly reuses what an earlier call
// computed for the same Profile pointer and Request: after changing the
// profile in place, use a new Input. An Input is used by one goroutine at a
// time.
type Input struct {
	// Profile is the visitor's profile, or nil when the visitor is not
	// tracked (a crawler, or no consent): only Request facts are known.
	// Its Visits does not count a visit this request begins: rules read
	// the count of visits with Input.Visits.
	Profile *store.Profile
	// Request holds facts taken from the current request alone.
	Request Facts
	// Now is the time of evaluation.
	Now time.Time
	// NewVisit says that the request begins a new visit, which the
	// profile's Visits does not count yet: rules count it (see Visits).
	NewVisit bool

	ev *evaluation
}

// Facts are what the current request tells about the visitor, without any
// stored history. They are known even for visitors who are not tracked.
type Facts struct {
	Path     string `json:"path,omitempty"`
	Referrer string `json:"referrer,omitempty"` // host of an external referrer
	Source   string `json:"utmSource,omitempty"`
	Medium   string `json:"utmMedium,omitempty"`
	Campaign string `json:"utmCampaign,omitempty"`
	Device   string `json:"device,omitempty"`  // "desktop", "mobile", "tablet" or "bot"
	Country  string `json:"country,omitempty"` // from the configured geo header
	// New is true on a visitor's first request: no valid cookie came with it.
	New bool `json:"new"`
}

// Only returns f with the facts that are not in fs zeroed.
func (f Facts) Only(fs Fields) Facts {
	var o Facts
	if fs&FieldPath != 0 {
		o.Path = f.Path
	}
	if fs&FieldReferrer != 0 {
		o.Referrer = f.Referrer
	}
	if fs&FieldSource != 0 {
		o.Source = f.Source
	}
	if fs&FieldMedium != 0 {
		o.Medium = f.Medium
	}
	if fs&FieldCampaign != 0 {
		o.Campaign = f.Campaign
	}
	if fs&FieldDevice != 0 {
		o.Device = f.Device
	}
	if fs&FieldCountry != 0 {
		o.Country = f.Country
	}
	if fs&FieldNew != 0 {
		o.New = f.New
	}
	return o
}

// Visits returns the number of the visitor's visits, the one this request
// begins included (see NewVisit): what rules and the document read as
// "visits". It is 0 without a profile.
func (in *Input) Visits() int {
	if in.Profile == nil {
		return 0
	}
	if in.NewVisit {
		return in.Profile.Visits + 1
	}
	return in.Profile.Visits
}

// ChangesAt tells the engine that the answer of the rule being evaluated
// may change at t, the profile and the request staying the same. Rules
// whose Dependencies say Time call it during Match with the earliest such
// time; a time before Now means "at any time".
func (in *Input) ChangesAt(t time.Time) {
	in.eval().track.note(t, in.Now)
}

// touch notes that the answer of the rule being evaluated may change when
// the parts t of the profile do. Only built-in rules marked so (see
// builtin.touches) say it; the engine assumes the others depend on every
// part.
func (in *Input) touch(t store.Touch) {
	if ev := in.ev; ev != nil {
		ev.touches |= t
	}
}

// Document returns the document that conditions are evaluated against, as
// JSON: the visitor's profile and the request facts, in the shape the
// package documentation describes, including the ring of recent events.
// Its keys are sorted.
func (in *Input) Document() []byte {
	d := &in.eval().doc
	return d.appendTo(nil)
}

// Trait returns the trait at the gjson path in the visitor's traits: a
// missing trait, or a visitor without a profile, gives a zero Result.
func (in *Input) Trait(path string) gjson.Result {
	if in.Profile == nil || len(in.Profile.Traits) == 0 {
		return gjson.Result{}
	}
	return gjson.GetBytes(in.Profile.Traits, path)
}

// evaluation is what an Input caches.
type evaluation struct {
	doc   document
	track condTracker
	reads Fields // the request facts read by the rules evaluated
	// touches are the parts of the profile whose change could change an
	// answer of the rules evaluated (see Memo).
	touches store.Touch
	// The engine's membership of segments being classified.
	set  *Set
	memo []memberState
	errs *atomic.Uint64 // counts the rules that fail, if set
	// engine is true while the engine evaluates: the input does not
	// change meanwhile.
	engine bool
	// Values derived from the profile, computed once.
	prof     *store.Profile
	facts    Facts
	now      time.Time
	newVisit bool
	derived  derived
}

// eval returns the cache of in, resetting it if the profile, the request
// or the time changed since it was filled.
func (in *Input) eval() *evaluation {
	ev := in.ev
	if ev == nil {
		ev = &evaluation{}
		in.ev = ev
		ev.reset(in)
		return ev
	}
	if !ev.engine && (ev.prof != in.Profile || !ev.now.Equal(in.Now) || ev.facts != in.Request || ev.newVisit != in.NewVisit) {
		ev.reset(in)
	}
	return ev
}

// begin starts an evaluation by the engine: everything is computed afresh.
func (in *Input) begin() *evaluation {
	ev := in.ev
	if ev == nil {
		ev = evaluations.Get().(*evaluation)
		in.ev = ev
	}
	ev.reset(in)
	ev.engine = true
	return ev
}

// evaluations recycles what the engine's evaluations cache, mostly the
// buffers of documents.
var evaluations = sync.Pool{New: func() any { return new(evaluation) }}

// release recycles the cache of in, which nothing refers to any more: the
// engine's results and explanations hold copies.
func (in *Input) release() {
	ev := in.ev
	if ev == nil {
		return
	}
	in.ev = nil
	ev.prof, ev.set, ev.errs, ev.engine = nil, nil, nil, false
	ev.doc.reset(nil, nil, false)
	ev.derived.reset()
	if cap(ev.doc.buf) > 256<<10 || cap(ev.doc.elems) > 4096 {
		ev.doc.buf, ev.doc.elems = nil, nil
	}
	evaluations.Put(ev)
}

func (ev *evaluation) reset(in *Input) {
	ev.prof, ev.facts, ev.now, ev.newVisit = in.Profile, in.Request, in.Now, in.NewVisit
	ev.doc.reset(in.Profile, &ev.facts, in.NewVisit)
	ev.track = condTracker{}
	ev.reads, ev.touches = 0, 0
	ev.derived.reset()
}

// derived holds values that built-in rules compute from the profile, once
// per evaluation.
type derived struct {
	interest   []interestCache
	email      []emailState
	emailsRead bool
}

func (d *derived) reset() {
	clear(d.interest)
	d.interest = d.interest[:0]
	clear(d.email)
	d.email = d.email[:0]
	d.emailsRead = false
}
