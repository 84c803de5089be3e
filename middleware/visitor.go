package middleware

import (
	"context"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

type contextKey struct{ name string }

// visitorKey is a pointer, so it fits in an interface without allocation.
var visitorKey = &contextKey{"visitor"}

// FromContext returns the visitor of a request wrapped by
// Personalizer.Handler, or nil. All Visitor methods are safe on nil: a nil
// visitor is in no segment.
func FromContext(ctx context.Context) *Visitor {
	v, _ := ctx.Value(visitorKey).(*Visitor)
	return v
}

// A Visitor is the person behind a request: their id, their segments as
// classified at the start of the request, and their profile. It is safe for
// concurrent use by the request's goroutines.
type Visitor struct {
	p        *Personalizer
	new      bool
	tracked  bool
	consent  Consent
	segments []string // immutable once set
	facts    rules.Facts
	now      time.Time
	b        atomic.Pointer[binding] // never nil once tracked
	b0       binding                 // what b points to first, saving an allocation
	first    *store.Event            // the first page view the cookie carried
	preview  *Preview                // a preview link's segments and variants
	// previewCookie, if set, is written with the response.
	previewCookie *http.Cookie

	// Set by the handler's goroutine, read after it returns or when the
	// response's headers are written.
	rw           *responseWriter // nil outside Handler
	setCookie    bool
	expireCookie bool
	skipPage     bool
	category     string
	item         string
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
func (v *Visitor) bind() *binding {
	if b := v.b.Load(); b != nil {
		return b
	}
	return &noBinding
}

// ID returns the visitor id: 32 hex digits, stable for as long as the
// cookie lives. Empty for visitors who are not tracked.
func (v *Visitor) ID() string {
	if v == nil {
		return ""
	}
	return v.bind().id
}

// UserID returns the id of the user the visitor identified as (see
// Personalizer.Identify), or "".
func (v *Visitor) UserID() string {
	if v == nil {
		return ""
	}
	return v.bind().user
}

// Consent returns what the visitor agreed to (see Config.Consent):
// ConsentFull for tracked visitors, ConsentNone or ConsentContextual for
// the others. Crawlers get ConsentContextual.
func (v *Visitor) Consent() Consent {
	if v == nil {
		return ConsentNone
	}
	return v.consent
}

// New reports whether this is the visitor's first request: no valid cookie
// came with it.
func (v *Visitor) New() bool { return v != nil && v.new }

// Tracked reports whether what the visitor does is recorded. Crawlers are
// not tracked.
func (v *Visitor) Tracked() bool { return v != nil && v.tracked }

// In reports whether the visitor is in the named segment.
func (v *Visitor) In(segment string) bool {
	return v != nil && slices.Contains(v.segments, segment)
}

// Segments returns the visitor's segments, highest priority first. The
// slice must not be modified.
func (v *Visitor) Segments() []string {
	if v == nil {
		return nil
	}
	return v.segments
}

// Facts returns what the request tells about the visitor.
func (v *Visitor) Facts() rules.Facts {
	if v == nil {
		return rules.Facts{}
	}
	return v.facts
}

// Profile returns a copy of the visitor's profile, including events
// recorded but not yet stored. Nil for visitors who are not tracked.
func (v *Visitor) Profile() *store.Profile {
	if v == nil || !v.tracked {
		return nil
	}
	b := v.bind()
	mu := v.p.lock(b.pid)
	mu.Lock()
	defer mu.Unlock()
	return b.st.prof.Clone()
}

// ReadProfile calls fn with the visitor's profile as this instance has it
// (the stored profile with the events still pending), holding the
// visitor's lock: it costs no copy, unlike Profile. fn must neither keep
// nor change the profile, and must not call the visitor's other methods
// that read the profile or record events (they would wait for the lock).
// fn gets nil for visitors who are not tracked.
func (v *Visitor) ReadProfile(fn func(*store.Profile)) {
	if v == nil || !v.tracked {
		fn(nil)
		return
	}
	b := v.bind()
	mu := v.p.lock(b.pid)
	mu.Lock()
	defer mu.Unlock()
	fn(b.st.prof)
}

// Describe tells what the current page is about, so that its page view
// counts towards the category and item (the visitor's interests). Call it
// from the handler.
func (v *Visitor) Describe(category, item string) {
	if v != nil {
		v.category, v.item = category, item
	}
}

// SkipPageView keeps the current request from being recorded as a page
// view.
func (v *Visitor) SkipPageView() {
	if v != nil {
		v.skipPage = true
	}
}

// Track records a named action with optional properties (any value that
// encodes as a JSON object), as the Segment tracking spec describes them:
// "Order Completed" (or "purchase") with properties.products is an order
// (see Purchase). It has no effect for visitors who are not tracked.
func (v *Visitor) Track(name string, props any) error {
	if v == nil || !v.tracked {
		return nil
	}
	ev, err := trackEvent(name, props)
	if err != nil {
		return err
	}
	return v.Record(ev)
}

// Purchase records an order of items. Revenue is the sum of the items'
// prices times quantities.
func (v *Visitor) Purchase(items ...store.Item) error {
	return v.Record(store.Event{Type: store.TypeTrack, Name: store.EventPurchase, Items: items})
}

// Record records ev for the visitor: it counts towards their segments from
// their next request on. The event's ID, Time (if zero) and NewVisit are
// set by Record.
func (v *Visitor) Record(ev store.Event) error {
	if v == nil || !v.tracked {
		return nil
	}
	if ev.Type == "" {
		return errEventType
	}
	if ev.Type == store.TypeAlias || ev.Type == store.TypeMerge {
		return errEventMerge
	}
	ev.ID = ""
	v.record(ev)
	return nil
}

func (v *Visitor) record(ev store.Event) { v.p.record(v, ev) }

var (
	errEventType  = &eventError{"event has no Type"}
	errEventMerge = &eventError{"alias and merge events are recorded by Identify and Alias"}
)

type eventError struct{ msg string }

func (e *eventError) Error() string { return "tailor: " + e.msg }

// visitorOf returns the visitor of a template argument: a *Visitor, an
// *http.Request or a context.Context.
func visitorOf(x any) *Visitor {
	switch x := x.(type) {
	case *Visitor:
		return x
	case *http.Request:
		return FromContext(x.Context())
	case context.Context:
		return FromContext(x)
	}
	return nil
}
