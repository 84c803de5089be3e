package middleware

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
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
	id       string
	new      bool
	tracked  bool
	segments []string // immutable once set
	facts    rules.Facts
	now      time.Time
	st       *state

	// Set by the handler, read after it returns.
	setCookie bool
	skipPage  bool
	category  string
	item      string
}

// ID returns the visitor id: 32 hex digits, stable for as long as the
// cookie lives. Empty for visitors who are not tracked.
func (v *Visitor) ID() string {
	if v == nil {
		return ""
	}
	return v.id
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
	mu := v.p.lock(v.id)
	mu.Lock()
	defer mu.Unlock()
	return v.st.prof.Clone()
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
// encodes as a JSON object). It has no effect for visitors who are not
// tracked.
func (v *Visitor) Track(name string, props any) error {
	ev := store.Event{Type: store.TypeTrack, Name: name}
	if props != nil {
		b, err := json.Marshal(props)
		if err != nil {
			return err
		}
		ev.Props = b
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
	v.record(ev)
	return nil
}

func (v *Visitor) record(ev store.Event) { v.p.record(v, ev) }

var errEventType = &eventError{"event has no Type"}

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
