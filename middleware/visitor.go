package middleware

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/tailorhq/tailor/middleware/internal/core"
	"github.com/tailorhq/tailor/middleware/internal/tracking"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

type contextKey struct{ name string }

// visitorKey is a pointer, so it fits in an interface without allocation.
var visitorKey = &contextKey{"visitor"}

// visitorContext is the context of a request wrapped by Handler: its
// parent with the visitor under visitorKey, as context.WithValue would
// make it, but kept inside the Visitor, saving an allocation per request.
// Cancellation, deadline and every other value are the parent's.
type visitorContext struct {
	context.Context
	v *Visitor
}

func (c *visitorContext) Value(key any) any {
	if key == visitorKey {
		return c.v
	}
	return c.Context.Value(key)
}

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
	p *Personalizer
	v core.Visit
	// Set by the handler's goroutine, read after it returns or when the
	// response's headers are written.
	rw            responseWriter // zero outside Handler
	ctx           visitorContext // the request's context, with the visitor
	headers       [3]string      // backing of the Cache-Control, Vary and first Set-Cookie values written
	preview       *Preview       // a preview link's segments and variants
	previewCookie *http.Cookie   // if set, written with the response
	skipPage      bool
	category      string
	item          string

	pinned map[string]string // on a cacheable page: the key's slot variants (Edge)
}

// ID returns the visitor id: 32 hex digits, stable for as long as the
// cookie lives. Empty for visitors who are not tracked.
func (v *Visitor) ID() string {
	if v == nil {
		return ""
	}
	return v.v.ID()
}

// UserID returns the id of the user the visitor identified as (see
// Personalizer.Identify), or "".
func (v *Visitor) UserID() string {
	if v == nil {
		return ""
	}
	return v.v.UserID()
}

// Consent returns what the visitor agreed to (see Config.Consent):
// ConsentFull for tracked visitors, ConsentNone or ConsentContextual for
// the others. Crawlers get ConsentContextual.
func (v *Visitor) Consent() Consent {
	if v == nil {
		return ConsentNone
	}
	return Consent(v.v.Consent)
}

// New reports whether this is the visitor's first request: no valid cookie
// came with it.
func (v *Visitor) New() bool { return v != nil && v.v.New }

// Tracked reports whether what the visitor does is recorded. Crawlers are
// not tracked.
func (v *Visitor) Tracked() bool { return v != nil && v.v.Tracked }

// In reports whether the visitor is in the named segment.
func (v *Visitor) In(segment string) bool {
	return v != nil && slices.Contains(v.v.Segments, segment)
}

// Segments returns the visitor's segments, highest priority first. The
// slice must not be modified.
func (v *Visitor) Segments() []string {
	if v == nil {
		return nil
	}
	return v.v.Segments
}

// Facts returns what the request tells about the visitor.
func (v *Visitor) Facts() rules.Facts {
	if v == nil {
		return rules.Facts{}
	}
	return v.v.Facts
}

// Profile returns a copy of the visitor's profile, including events
// recorded but not yet stored. Nil for visitors who are not tracked; in a
// preview, the previewed profile (see PreviewLinkAs).
func (v *Visitor) Profile() *store.Profile {
	if v == nil {
		return nil
	}
	return v.p.core.Profile(&v.v)
}

// ReadProfile calls fn with the visitor's profile as Profile gives it, but
// without copying it: for code that reads a few things of the profile on
// every page (recommendations, a template helper), as a copy of a profile
// with its recent events is tens of kilobytes. fn must not keep the
// profile nor modify it, and must not record for the visitor (Track,
// Purchase...): it runs under the lock that guards the profile. fn gets
// nil for visitors who are not tracked.
func (v *Visitor) ReadProfile(fn func(*store.Profile)) {
	if v == nil {
		fn(nil)
		return
	}
	v.p.core.ReadProfile(&v.v, fn)
}

// ReadProfileParts is ReadProfile for fn that reads only the parts of the
// profile in parts (see store.Touch, and TouchCounts and the like for all
// of a counter's keys). A returning visitor's latest page views are kept
// aside from the cached profile until something reads a part they change
// (the page and event counts, the times, the recent events...): a reader
// of other parts (the purchases, the traits) leaves them aside and costs
// less. fn may see a profile without those page views: it must read
// nothing else than parts.
func (v *Visitor) ReadProfileParts(parts store.Touch, fn func(*store.Profile)) {
	if v == nil {
		fn(nil)
		return
	}
	v.p.core.ReadProfileParts(&v.v, parts, fn)
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
	if v == nil || !v.v.Tracked {
		return nil
	}
	ev, err := trackEvent(name, props)
	if err != nil {
		return fmt.Errorf("tailor: Track: %w", err)
	}
	return v.Record(ev)
}

// Page records a page view of the visitor for a page that is not a
// request of its own (a single-page app's route change): name is the
// page's name, props its Segment page properties (path or url, category,
// referrer), any value that encodes as a JSON object. The path defaults to
// the request's. It has no effect for visitors who are not tracked.
func (v *Visitor) Page(name string, props any) error {
	if v == nil || !v.v.Tracked {
		return nil
	}
	raw, err := propsJSON(props)
	if err != nil {
		return fmt.Errorf("tailor: Page: %w", err)
	}
	ev := tracking.PageEvent(name, "", raw)
	if ev.Path == "" {
		ev.Path = v.v.Facts.Path
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
	if v == nil || !v.v.Tracked {
		return nil
	}
	if ev.Type == "" {
		return errEventType
	}
	if ev.Type == store.TypeAlias || ev.Type == store.TypeMerge {
		return errEventMerge
	}
	ev.ID = ""
	v.p.core.Record(&v.v, ev)
	return nil
}

// pageView returns the page-view event of the visitor's request.
func (v *Visitor) pageView() store.Event {
	return core.PageView(&v.v.Facts, v.category, v.item)
}

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
