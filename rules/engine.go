package rules

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/internal/errlist"
	"github.com/tailorhq/tailor/internal/watched"
	"github.com/tailorhq/tailor/store"
)

// A Segment is a named group of visitors, defined by a Rule.
type Segment struct {
	// Name identifies the segment in templates and exports. Required,
	// unique in a Set.
	Name        string
	Description string
	// Priority orders segments: higher first. Segments of equal priority
	// keep their definition order.
	Priority int
	// Group, if set, makes the segment exclusive with the others of the same
	// group: a visitor is in at most one of them, the first that matches in
	// priority order.
	Group string
	Rule  Rule
}

// A Set is a validated, ordered set of segments, ready to classify
// visitors. Make one with NewSet or Parse. It is immutable and safe for
// concurrent use.
type Set struct {
	segs  []Segment // sorted by priority, highest first
	index map[string]int
	deps  []Dependencies
	known []bool // the rule says its dependencies
	// touching: every rule of the segment's tells the parts of the
	// profile it depends on (see builtin.touches and Touching); fixed
	// are the parts its Touching rules depend on
	touching  []bool
	fixed     []store.Touch
	groupPrev [][]int // per segment, the segments before it in its group
	// contextual: the segment's membership depends on request facts (or
	// on what a rule that does not say its dependencies reads), itself,
	// through InSegment or through its group
	contextual []bool
	source     string
	digest     string   // of the file parsed, "" for a set made in Go
	text       []byte   // the file parsed, nil for a set made in Go
	plugins    []string // the plugins the file uses, sorted
	registered []string // the plugins of the registry it was parsed with
}

// NewSet returns a set of segs. It reports every problem at once: empty
// and duplicate names, missing rules, invalid arguments of built-in rules,
// InSegment references to unknown segments and cycles of references.
func NewSet(segs ...Segment) (*Set, error) {
	defs := make([]segDef, len(segs))
	for i, s := range segs {
		defs[i] = segDef{seg: s}
	}
	var errs errlist.List[error]
	s := buildSet(defs, func(p srcPos, seg int, msg string) {
		if seg < 0 {
			errs = append(errs, errors.New(msg))
			return
		}
		errs = append(errs, fmt.Errorf("segment %d %q: %s", seg, segs[seg].Name, msg))
	})
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// Segments returns the segments in evaluation order, highest priority first.
func (s *Set) Segments() []Segment {
	if s == nil {
		return nil
	}
	return slices.Clone(s.segs)
}

// Len returns the number of segments.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.segs)
}

// Source returns the name of the file the set was parsed from (see
// Filename), or "".
func (s *Set) Source() string {
	if s == nil {
		return ""
	}
	return s.source
}

// Digest identifies the definitions of the set, so that a job can tell
// that they changed since it last ran (a backfill of the stored
// segments): for a set parsed from a file, a SHA-256 of the file's
// bytes; for one made with NewSet, of the segments' names, priorities and
// groups only, as rules made in Go cannot be compared.
func (s *Set) Digest() string {
	if s == nil {
		return ""
	}
	if s.digest != "" {
		return s.digest
	}
	h := sha256.New()
	for _, seg := range s.segs {
		fmt.Fprintf(h, "%q %d %q\n", seg.Name, seg.Priority, seg.Group)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// srcPos is where something was defined in a segments file: an offset and
// a JSON Pointer. The zero srcPos is "defined in Go".
type srcPos struct {
	off int
	ptr string
	ok  bool
}

// segDef is a segment with where it was defined.
type segDef struct {
	seg     Segment
	namePos srcPos
	rulePos srcPos
}

// ruleParent is implemented by rules that combine others.
type ruleParent interface{ children() []Rule }

// checker is implemented by rules whose constructor may have found a
// problem.
type checker interface{ check() error }

// walkRules calls f with r and every rule it combines.
func walkRules(r Rule, f func(Rule)) {
	if r == nil {
		return
	}
	f(r)
	if p, ok := r.(ruleParent); ok {
		for _, c := range p.children() {
			walkRules(c, f)
		}
	}
}

// tellsTouches reports whether r and the rules it combines all tell the
// parts of the profile their answers depend on: the built-ins as they
// are evaluated, the Touching rules once for all, in fixed.
func tellsTouches(r Rule) (fixed store.Touch, ok bool) {
	ok = true
	walkRules(r, func(r Rule) {
		switch x := r.(type) {
		case *combo:
		case *builtin:
			ok = ok && x.touches
		case Touching:
			fixed |= x.Touches()
		default:
			ok = false
		}
	})
	return fixed, ok
}

// buildSet validates defs and builds a set, calling report for each
// problem: at p when the problem was found in a file, about segment seg
// (its index in defs, or -1).
func buildSet(defs []segDef, report func(p srcPos, seg int, msg string)) *Set {
	bad := false
	problem := func(p srcPos, seg int, format string, args ...any) {
		bad = true
		report(p, seg, fmt.Sprintf(format, args...))
	}
	seen := make(map[string]int, len(defs))
	for i, d := range defs {
		switch {
		case d.seg.Name == "":
			if !d.namePos.ok { // a file's names are checked by the parser
				problem(d.namePos, i, "empty name")
			}
		case seen[d.seg.Name] > 0:
			problem(d.namePos, i, "duplicate segment name %q: segment %d has it too", d.seg.Name, seen[d.seg.Name]-1)
		default:
			seen[d.seg.Name] = i + 1
		}
		if d.seg.Rule == nil {
			if !d.rulePos.ok { // a file's missing rule is reported by the parser
				problem(d.rulePos, i, "no rule")
			}
			continue
		}
		if !d.rulePos.ok { // a file's built-ins are checked by the parser
			walkRules(d.seg.Rule, func(r Rule) {
				if c, ok := r.(checker); ok {
					if err := c.check(); err != nil {
						problem(srcPos{}, i, "%v", err)
					}
				}
			})
		}
	}
	// References between segments.
	refs := make([][]*builtin, len(defs))
	for i, d := range defs {
		walkRules(d.seg.Rule, func(r Rule) {
			if b, ok := r.(*builtin); ok && b.name == "inSegment" && b.err == nil {
				if _, ok := seen[b.ref]; !ok {
					problem(b.pos, i, "inSegment: no segment is named %q", b.ref)
					return
				}
				refs[i] = append(refs[i], b)
			}
		})
	}

	order := make([]int, len(defs)) // order[k] is the index in defs of the k-th segment
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(defs[b].seg.Priority, defs[a].seg.Priority) })
	s := &Set{
		segs:      make([]Segment, len(defs)),
		index:     make(map[string]int, len(defs)),
		deps:      make([]Dependencies, len(defs)),
		known:     make([]bool, len(defs)),
		touching:  make([]bool, len(defs)),
		fixed:     make([]store.Touch, len(defs)),
		groupPrev: make([][]int, len(defs)),
	}
	groups := map[string][]int{}
	for k, i := range order {
		seg := defs[i].seg
		s.segs[k] = seg
		s.index[seg.Name] = k
		s.deps[k], s.known[k] = DependenciesOf(seg.Rule)
		s.fixed[k], s.touching[k] = tellsTouches(seg.Rule)
		if seg.Group != "" {
			s.groupPrev[k] = slices.Clone(groups[seg.Group])
			groups[seg.Group] = append(groups[seg.Group], k)
		}
	}
	cycles(s, order, refs, problem)
	if bad {
		return nil
	}
	s.contextual = contextual(s, order, refs)
	return s
}

// contextual returns, per segment of s, whether its membership depends on
// the request: see Set.contextual. s has no cycles.
func contextual(s *Set, order []int, refs [][]*builtin) []bool {
	n := len(s.segs)
	out := make([]bool, n)
	done := make([]bool, n)
	var visit func(k int) bool
	visit = func(k int) bool {
		if done[k] {
			return out[k]
		}
		c := s.deps[k].Request != 0 || !s.known[k]
		for _, r := range refs[order[k]] {
			c = visit(s.index[r.ref]) || c
		}
		for _, j := range s.groupPrev[k] {
			c = visit(j) || c
		}
		out[k], done[k] = c, true
		return c
	}
	for k := range n {
		visit(k)
	}
	return out
}

// cycles reports every cycle of segments whose membership depends on
// itself: through InSegment references, and through exclusive groups (a
// segment's membership depends on the segments before it in its group).
func cycles(s *Set, order []int, refs [][]*builtin, problem func(srcPos, int, string, ...any)) {
	n := len(s.segs)
	type edge struct {
		to  int
		ref *builtin // nil for a group edge
	}
	out := make([][]edge, n)
	for k, i := range order {
		for _, r := range refs[i] {
			out[k] = append(out[k], edge{s.index[r.ref], r})
		}
		for _, j := range s.groupPrev[k] {
			out[k] = append(out[k], edge{to: j})
		}
	}
	const (
		white = iota
		grey
		black
	)
	color := make([]uint8, n)
	var stack []edge // the edges from the root to the current segment
	var visit func(k int)
	visit = func(k int) {
		color[k] = grey
		for _, e := range out[k] {
			switch color[e.to] {
			case white:
				stack = append(stack, edge{to: k, ref: e.ref})
				visit(e.to)
				stack = stack[:len(stack)-1]
			case grey:
				// The cycle is the path from e.to to k, then e.
				var path []edge
				for j := len(stack) - 1; j >= 0; j-- {
					if stack[j].to == e.to {
						path = slices.Clone(stack[j:])
						break
					}
				}
				path = append(path, edge{to: k, ref: e.ref})
				var b strings.Builder
				var at *builtin
				for _, p := range path {
					b.WriteString(s.segs[p.to].Name)
					if p.ref != nil {
						b.WriteString(" → ")
						if at == nil {
							at = p.ref
						}
					} else {
						fmt.Fprintf(&b, " →[after, in exclusive group %q]→ ", s.segs[p.to].Group)
					}
				}
				b.WriteString(s.segs[e.to].Name)
				seg := -1
				pos := srcPos{}
				if at != nil {
					pos = at.pos
					for _, p := range path {
						if p.ref == at {
							seg = order[p.to]
						}
					}
				}
				problem(pos, seg, "cycle of segment references: %s", b.String())
			}
		}
		color[k] = black
	}
	for k := range n {
		if color[k] == white {
			visit(k)
		}
	}
}

// memberState is what an evaluation knows of a segment's membership.
type memberState uint8

const (
	memberUnknown memberState = iota
	memberBusy                // being evaluated
	memberIn
	memberOut
	memberExcluded // another segment of its group took the visitor
	memberError
)

// member reports whether the visitor is in segment i of ev.set, evaluating
// it and the segments it depends on if needed.
func (ev *evaluation) member(in *Input, i int) bool {
	switch ev.memo[i] {
	case memberIn:
		return true
	case memberUnknown:
	default:
		return false
	}
	ev.memo[i] = memberBusy
	s := ev.set
	for _, j := range s.groupPrev[i] {
		if ev.member(in, j) {
			ev.memo[i] = memberExcluded
			return false
		}
	}
	ev.reads |= s.deps[i].Request
	if s.touching[i] {
		ev.touches |= s.fixed[i]
	} else {
		ev.touches = store.TouchAll
	}
	if !s.known[i] {
		ev.track.note(in.Now, in.Now)
	}
	ok, err := safeMatch(s.segs[i].Rule, in)
	switch {
	case err != nil:
		ev.memo[i] = memberError
		if ev.errs != nil {
			ev.errs.Add(1)
		}
	case ok:
		ev.memo[i] = memberIn
	default:
		ev.memo[i] = memberOut
	}
	return ok && err == nil
}

// safeMatch calls r.Match, turning a panic into an error.
func safeMatch(r Rule, in *Input) (ok bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			ok, err = false, fmt.Errorf("rule panicked: %v", p)
		}
	}()
	return r.Match(in)
}

// An Engine classifies visitors into the segments of its current Set,
// which Load, Reload, ReloadFile and Watch replace atomically while it
// classifies. It is safe for concurrent use. The zero Engine has no
// segments.
type Engine struct {
	// Logger receives the reloads of Watch that fail; nil is
	// slog.Default(). Set it before calling Watch.
	Logger *slog.Logger

	set    watched.Holder[Set]
	errors atomic.Uint64
	// gen counts the calls of Invalidate: a result of an earlier one is
	// not reused.
	gen atomic.Uint64
}

// Invalidate tells e that something its rules consult besides the
// profile, the request and the time has changed (a model that learns
// from purchases, which a plugin reads): every classification remembered
// until now (Memo) is made again at its next use. It is cheap, and safe
// to call from any goroutine at any rate; each call costs each visitor
// one classification at most.
func (e *Engine) Invalidate() { e.gen.Add(1) }

// Status is the state of a file that a site reloads while it runs: an
// Engine's segments (Engine.Status), the slots of a slots.Engine, the
// experiments of an admin.FileSource.
type Status = watched.Status

// NewEngine returns an engine for segs. It reports every problem at once,
// as NewSet does.
func NewEngine(segs ...Segment) (*Engine, error) {
	s, err := NewSet(segs...)
	if err != nil {
		return nil, err
	}
	e := &Engine{}
	e.Load(s)
	return e, nil
}

// Load makes s the engine's set of segments. Classifications in progress
// finish with the set they started with.
func (e *Engine) Load(s *Set) { e.set.Load(s, s.Source()) }

// Reload parses data as a segments file (see Parse) and, only if it is
// valid, makes it the engine's set. Otherwise the engine keeps its set,
// and the error, which lists every problem, is also kept for Status.
func (e *Engine) Reload(data []byte, opts ...ParseOption) error {
	return e.set.Reload(data, parseConfigOf(opts).file, parser(opts))
}

// ReloadFile reads the segments file at path and reloads it as Reload
// does; problems are reported with the file's name.
func (e *Engine) ReloadFile(path string, opts ...ParseOption) error {
	return e.set.ReloadFile("rules", path, parser(opts))
}

// Watch reloads the segments file at path whenever its content changes,
// checking every interval (2 seconds if interval is not positive), until
// ctx is done; then it returns ctx.Err(). It reloads the file within one
// interval if its content is not the last it read (a content is read
// twice, an interval apart, so that a half-written file is never
// loaded). A bad file, or one that cannot be read, leaves the engine's set
// as it was: Status reports why, and so does the engine's Logger.
func (e *Engine) Watch(ctx context.Context, path string, interval time.Duration, opts ...ParseOption) error {
	return e.set.Watch(ctx, "rules", path, interval, e.Logger, parser(opts))
}

// parser parses segments files with opts.
func parser(opts []ParseOption) watched.Parser[Set] {
	return func(data []byte, file string) (*Set, error) {
		if file != "" {
			opts = append(slices.Clip(opts), Filename(file))
		}
		return Parse(data, opts...)
	}
}

// Status returns the state of the engine's set.
func (e *Engine) Status() Status {
	if e == nil {
		return Status{}
	}
	return e.set.Status()
}

// Set returns the engine's current set.
func (e *Engine) Set() *Set {
	if e == nil {
		return nil
	}
	return e.set.Get()
}

// Segments returns the segments in evaluation order, highest priority first.
func (e *Engine) Segments() []Segment {
	return e.Set().Segments()
}

// Classify returns the names of the segments in matches, highest priority
// first. A rule that fails counts as no match (see Errors).
func (e *Engine) Classify(in *Input) []string {
	return e.classify(in).segments
}

// A Memo is an engine's last classification of one visitor, kept so that
// ClassifyMemo classifies again only when the answer may have changed. The
// zero Memo holds nothing.
type Memo struct {
	r        result
	prof     *store.Profile
	changes  uint64
	newVisit bool
}

// ClassifyMemo returns in's segments, reusing m's when they still hold: the
// same profile (pointer), either with the same Changes or with changes
// that touched no part of it that the rules evaluated depend on (see
// store.Touch: a page view does not change "bought twice", nor "viewed
// books 3 times" once true), the same NewVisit, the engine's set not
// reloaded nor invalidated (Invalidate) since, no time window of a rule
// evaluated passed, and the same request facts that the rules read. It reports whether it classified
// anew, and then keeps the result in m, and has the profile keep its
// touches from then on (store.Profile.KeepTouches): it writes the
// profile as well as reading it. It is not safe for concurrent use of one
// m: guard m as the profile is guarded.
func (e *Engine) ClassifyMemo(m *Memo, in *Input) (segments []string, classified bool) {
	if segs, ok := e.Recall(m, in.Profile, in.Request, in.Now, in.NewVisit, 0); ok {
		return segs, false
	}
	p := in.Profile
	var changes uint64
	if p != nil {
		changes = p.Changes()
		p.KeepTouches()
	}
	*m = Memo{r: e.classifyReusing(in, m.r.segments), prof: p, changes: changes, newVisit: in.NewVisit}
	return m.r.segments, true
}

// Recall returns m's segments if ClassifyMemo would reuse them for the
// Input of profile p, request facts f, time now and newVisit; else false.
// It lets a caller build its Input (which the rules may keep, so that it
// usually escapes to the heap) only when it must classify anew. pending
// are the parts of p that events not applied to it yet would touch
// (store.Profile.Touches; 0 for none): a caller that keeps events aside
// learns whether they would change the answer without applying them.
// Guard m as for ClassifyMemo.
func (e *Engine) Recall(m *Memo, p *store.Profile, f Facts, now time.Time, newVisit bool, pending store.Touch) ([]string, bool) {
	if m.r.set == nil || m.prof != p || m.newVisit != newVisit || pending&m.r.touches != 0 || !e.valid(m.r, f, now) {
		return nil, false
	}
	if p == nil || m.changes == p.Changes() {
		return m.r.segments, true
	}
	if t, ok := p.TouchedSince(m.changes); ok && t&m.r.touches == 0 {
		return m.r.segments, true
	}
	return nil, false
}

// Until returns when the classification m holds may next change with the
// same profile and request facts (a rule's window of time moving past an
// event); zero if no rule it evaluated depends on the time.
func (m *Memo) Until() time.Time { return m.r.validUntil }

// Reclassify classifies a stored profile without a request, as a job does
// when the profile's time has come (store.Profile.Recheck): the segments
// whose membership depends on the request (their rules read request facts,
// or do not say what they read, themselves, through InSegment or through
// their group) keep their membership in was, the segments the profile was
// last classified into, since no request says otherwise; the others are
// evaluated at now. It returns the segments, highest priority first, and
// when they may next change without a new event (zero if they cannot).
func (e *Engine) Reclassify(p *store.Profile, was []string, now time.Time) ([]string, time.Time) {
	s := e.Set()
	if s == nil {
		return nil, time.Time{}
	}
	in := &Input{Profile: p, Now: now}
	ev := in.begin()
	ev.set, ev.errs = s, &e.errors
	if cap(ev.memo) < len(s.segs) {
		ev.memo = make([]memberState, len(s.segs))
	}
	ev.memo = ev.memo[:len(s.segs)]
	for i := range s.segs {
		switch {
		case !s.contextual[i]:
			ev.memo[i] = memberUnknown
		case slices.Contains(was, s.segs[i].Name):
			ev.memo[i] = memberIn
		default:
			ev.memo[i] = memberOut
		}
	}
	var out []string
	for i := range s.segs {
		if ev.member(in, i) {
			out = append(out, s.segs[i].Name)
		}
	}
	until := ev.track.until
	in.release()
	return out, until
}

// A result is a classification, with how long it stays valid.
type result struct {
	segments []string // highest priority first
	// validUntil is the earliest time at which a rule evaluated may change
	// its answer with the same profile and request facts (a window of "the
	// last 7 days" moving past an event); zero if none depends on the time.
	validUntil time.Time
	request    Fields // the request facts read
	facts      Facts  // their values
	// touches are the parts of the profile whose change could change
	// the segments.
	touches store.Touch
	set     *Set
	gen     uint64 // Engine.gen when it was made
}

// classify classifies the visitor and says for how long, and for which
// requests, the result holds: see valid.
func (e *Engine) classify(in *Input) result { return e.classifyReusing(in, nil) }

// classifyReusing is classify, returning prev itself as the segments
// when they are the same (a memo's last result, which nobody changes):
// a visitor's segments seldom change, and then cost no allocation.
func (e *Engine) classifyReusing(in *Input, prev []string) result {
	s := e.Set()
	if s == nil {
		return result{}
	}
	gen := e.gen.Load() // before the rules read what it stands for
	ev := e.run(s, in)
	n := 0
	same := true
	for i, m := range ev.memo {
		if m == memberIn {
			same = same && n < len(prev) && prev[n] == s.segs[i].Name
			n++
		}
	}
	var out []string
	if same && n == len(prev) {
		out = prev
	} else if n > 0 {
		out = make([]string, 0, n)
		for i := range s.segs {
			if ev.memo[i] == memberIn {
				out = append(out, s.segs[i].Name)
			}
		}
	}
	r := result{
		segments:   out,
		validUntil: ev.track.until,
		request:    ev.reads,
		facts:      in.Request.Only(ev.reads),
		touches:    ev.touches,
		set:        s,
		gen:        gen,
	}
	in.release()
	return r
}

// run evaluates the membership of every segment of s.
func (e *Engine) run(s *Set, in *Input) *evaluation {
	ev := in.begin()
	ev.set, ev.errs = s, &e.errors
	if cap(ev.memo) < len(s.segs) {
		ev.memo = make([]memberState, len(s.segs))
	}
	ev.memo = ev.memo[:len(s.segs)]
	clear(ev.memo)
	for i := range s.segs {
		ev.member(in, i)
	}
	return ev
}

// valid reports whether r, the result of classify for a profile, is still
// the engine's answer for the same profile, unchanged, in a request with
// facts f at time now: the engine's set is the one that produced r, now is
// before r.validUntil (if set), and the request facts that the rules read
// are those r saw.
func (e *Engine) valid(r result, f Facts, now time.Time) bool {
	if r.set == nil || r.set != e.Set() || r.gen != e.gen.Load() {
		return false
	}
	if !r.validUntil.IsZero() && !now.Before(r.validUntil) {
		return false
	}
	return r.request == 0 || f.Only(r.request) == r.facts
}

// Explain classifies the visitor and returns, for every segment in
// evaluation order, whether the visitor is in it and the clauses its rule
// tested. Rules are evaluated in full, even where Classify stops early, so
// that every clause has a result.
func (e *Engine) Explain(in *Input) []Explanation {
	s := e.Set()
	if s == nil {
		return nil
	}
	ev := e.run(s, in)
	ev.errs = nil // errors were counted by run
	out := make([]Explanation, len(s.segs))
	for i := range s.segs {
		seg := &s.segs[i]
		x := &out[i]
		x.Segment, x.Description, x.Priority, x.Group = seg.Name, seg.Description, seg.Priority, seg.Group
		x.In = ev.memo[i] == memberIn
		if ev.memo[i] == memberExcluded {
			for _, j := range s.groupPrev[i] {
				if ev.memo[j] == memberIn {
					x.ExcludedBy = s.segs[j].Name
				}
			}
		}
		x.Matched, x.Clauses, x.Err = safeExplain(seg.Rule, in)
		x.Matched = x.Matched && x.Err == nil
	}
	in.release()
	return out
}

func safeExplain(r Rule, in *Input) (ok bool, cl []Clause, err error) {
	defer func() {
		if p := recover(); p != nil {
			ok, cl, err = false, nil, fmt.Errorf("rule panicked: %v", p)
		}
	}()
	return ExplainRule(r, in)
}

// Errors returns how many rule evaluations have failed since the engine was
// made.
func (e *Engine) Errors() uint64 {
	if e == nil {
		return 0
	}
	return e.errors.Load()
}
