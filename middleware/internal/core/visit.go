package core

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/middleware/internal/cookie"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// A Visit is what the Core knows of the visitor of one request. Begin and
// Lookup fill it; package middleware's Visitor wraps it. Its fields are set
// before the handler runs, except the binding, which Identify replaces.
type Visit struct {
	New      bool
	Tracked  bool
	Consent  Consent
	Segments []string // immutable once set
	Facts    rules.Facts
	Now      time.Time
	First    *store.Event // the first page view the cookie carried
	// Shown, if set, is the profile that Profile and ReadProfile give
	// instead of the visitor's own: a preview's (see BeginPreview). It is
	// read-only, and v is not tracked.
	Shown *store.Profile

	// SetCookie and ExpireCookie tell the response to write the cookie or
	// delete it. Set by the handler's goroutine.
	SetCookie    bool
	ExpireCookie bool

	b  atomic.Pointer[binding] // never nil once tracked
	b0 binding                 // what b points to first, saving an allocation
}

// A binding is whom a visitor's events go to. Identify replaces it.
type binding struct {
	id   string // the visitor id of the cookie
	user string // the user id the visitor identified as, if any
	pid  string // the profile id: the user's profile once identified, else id
	st   *state // the cached state of pid
}

var noBinding binding

// bind returns the visitor's binding, zero for visitors not tracked.
func (v *Visit) bind() *binding {
	if b := v.b.Load(); b != nil {
		return b
	}
	return &noBinding
}

// ID returns the visitor id, "" for visitors not tracked.
func (v *Visit) ID() string { return v.bind().id }

// UserID returns the user the visitor identified as, or "".
func (v *Visit) UserID() string { return v.bind().user }

// CookieID returns what the visitor's cookie says, from one binding.
func (v *Visit) CookieID() cookie.ID {
	b := v.bind()
	return cookie.ID{Visitor: b.id, User: b.user}
}

// Profile returns a copy of the visitor's profile (or of the profile
// shown instead, Visit.Shown), nil for visitors not tracked.
func (p *Core) Profile(v *Visit) *store.Profile {
	if v.Shown != nil {
		return v.Shown.Clone()
	}
	if !v.Tracked {
		return nil
	}
	b := v.bind()
	mu := p.lock(b.pid)
	mu.Lock()
	defer mu.Unlock()
	return p.profile(b.st).Clone()
}

// ReadProfile calls fn with the visitor's profile as this instance has it,
// holding the visitor's stripe lock: it costs no copy, unlike Profile. fn
// gets nil for visitors not tracked; it must neither keep nor change the
// profile, and must not call into the Core (middleware.Visitor.ReadProfile
// says the same to its callers).
func (p *Core) ReadProfile(v *Visit, fn func(*store.Profile)) {
	p.ReadProfileParts(v, store.TouchAll, fn)
}

// ReadProfileParts is ReadProfile for fn that reads only the parts of
// the profile (store.Touch) in parts: the page views kept aside are
// folded in first only if they touch any of them. An experiment's slot,
// which reads a trait on every page, then leaves the page views aside.
func (p *Core) ReadProfileParts(v *Visit, parts store.Touch, fn func(*store.Profile)) {
	if v.Shown != nil {
		fn(v.Shown) // read-only: no lock needed
		return
	}
	if !v.Tracked {
		fn(nil)
		return
	}
	b := v.bind()
	mu := p.lock(b.pid)
	mu.Lock()
	defer mu.Unlock()
	if b.st.laterTouch&parts == 0 {
		fn(b.st.prof)
		return
	}
	fn(p.profile(b.st))
}

// RecordVisit records events of the visitor v, as Record does, keeping
// the events' ids (messageIds) when they have one.
func (p *Core) RecordVisit(v *Visit, evs []store.Event) {
	b := v.bind()
	mu := p.lock(b.pid)
	mu.Lock()
	prof := p.profile(b.st)
	last := prof.LastSeen
	for i := range evs {
		e := &evs[i]
		if e.ID == "" {
			e.ID = p.nextID()
		}
		if e.Type == store.TypePage {
			e.NewVisit = last.IsZero() || e.Time.Sub(last) > p.cfg.VisitTimeout
		}
		if e.Time.After(last) {
			last = e.Time
		}
	}
	frozen := prof.MergedInto != ""
	if !frozen {
		prof.Apply(p.lim, evs...)
		p.enqueue(b.pid, evs)
	}
	mu.Unlock()
	if frozen {
		p.RecordTo(b.pid, evs...) // forwards them
		return
	}
	p.stats.Events.Add(uint64(len(evs)))
	p.flushSoon()
}

// Now returns the current time, by Config.Now.
func (p *Core) Now() time.Time { return p.cfg.Now() }

// Logger returns the logger of operational logs.
func (p *Core) Logger() *slog.Logger { return p.cfg.Logger }

// Unwrap lets the packages mounted beside package middleware (collect)
// reach the Core of a *middleware.Personalizer and the Visit of a
// *middleware.Visitor (false for nil); package middleware sets it when it
// is initialised.
var Unwrap struct {
	Personalizer func(p any) *Core
	Visitor      func(v any) (*Visit, bool)
	// ReadProfile calls Core.ReadProfileParts for a *middleware.Visitor
	// (fn gets nil for a nil one), for middleware/slots, which reads the
	// profile on every render.
	ReadProfile func(v any, parts store.Touch, fn func(*store.Profile))
}
