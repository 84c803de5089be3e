package core

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// Tracing: spans around identification, profile loads, classification,
// flushes and every store call, for package middleware/otel, which
// implements Tracer over OpenTelemetry. The Core knows no OpenTelemetry
// type, so that sites without it do not link it. Without a Tracer each
// traced point costs one atomic load and a nil check, and allocates
// nothing.
//
// Attributes never carry a visitor, user or profile id, nor an error's
// message (which may name one): segment names, counts, flags and error
// classes only.

// A Tracer starts spans. It must be safe for concurrent use.
type Tracer interface {
	// Start begins a span named name, a child of the span in ctx if any,
	// and returns ctx with the new span.
	Start(ctx context.Context, name string) (context.Context, Span)
}

// A Span is one traced operation. Its methods are called from one
// goroutine.
type Span interface {
	SetBool(key string, v bool)
	SetInt(key string, v int)
	SetString(key, v string)
	SetStrings(key string, v []string)
	// End ends the span; err, if not nil, marks it failed with the class
	// ErrorClass gives.
	End(err error)
}

// Span names.
const (
	SpanIdentify = "tailor.identify" // cookie, consent, and the profile the visitor's events go to
	SpanLoad     = "tailor.load"     // a profile not cached: built from the store and pending events
	SpanClassify = "tailor.classify" // the visitor's segments
	SpanFlush    = "tailor.flush"    // a write of queued events
	// SpanStore prefixes the spans of store calls: tailor.store.Load,
	// tailor.store.ApplyBatch, tailor.store.Delete, and the jobs' calls
	// (Due, Scan, Counts, Lease, Release, Expire, TrimPurchases,
	// Document, PutDocument).
	SpanStore = "tailor.store."
)

// Attribute keys.
const (
	AttrTracked    = "tailor.visitor.tracked" // bool: the visitor's events are recorded
	AttrNew        = "tailor.visitor.new"     // bool: a cookie was issued now
	AttrConsent    = "tailor.consent"         // "none", "contextual", "full"
	AttrBot        = "tailor.bot"             // bool
	AttrSegments   = "tailor.segments"        // []string: the segments classified into
	AttrCached     = "tailor.classify.cached" // bool: the last classification was reused
	AttrPartial    = "tailor.load.partial"    // bool: the store failed; only pending events known
	AttrOperation  = "tailor.store.operation" // the store method
	AttrStoreType  = "tailor.store.type"      // the store's Go type, as %T prints it
	AttrProfiles   = "tailor.store.profiles"  // int: profiles written or read
	AttrEvents     = "tailor.store.events"    // int: events written
	AttrFound      = "tailor.store.found"     // bool: a Load found the profile
	AttrErrorClass = "error.type"             // the class of a failure (ErrorClass)
)

// ErrorClass returns a short, fixed description of err for telemetry:
// never its message, which may name a visitor.
func ErrorClass(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, store.ErrNotFound):
		return "not_found"
	case errors.Is(err, store.ErrErased):
		return "erased"
	case errors.Is(err, store.ErrClosed):
		return "closed"
	case errors.Is(err, store.ErrInvalidID):
		return "invalid_id"
	case errors.Is(err, errStoreDown):
		return "store_down"
	}
	return "error"
}

// tracing holds the Tracer, so that an atomic pointer can hold it.
type tracing struct {
	t         Tracer
	storeType string
}

// SetTracer makes the Core report spans to t from now on, instead of to
// the Tracer set before. storeType names the store in the spans.
func (p *Core) SetTracer(t Tracer, storeType string) {
	p.tracer.Store(&tracing{t: t, storeType: storeType})
}

// UnsetTracer stops the spans of t, unless another Tracer replaced it.
func (p *Core) UnsetTracer(t Tracer) {
	if tr := p.tracer.Load(); tr != nil && tr.t == t {
		p.tracer.CompareAndSwap(tr, nil)
	}
}

// span is a started span, or nothing (the zero span) when tracing is off.
type span struct{ s Span }

func (s span) end(err error) {
	if s.s != nil {
		s.s.End(err)
	}
}

// startStore starts the span of a store call op, if tracing is on.
func (p *Core) startStore(ctx context.Context, op string) (context.Context, span) {
	tr := p.tracer.Load()
	if tr == nil {
		return ctx, span{}
	}
	ctx, s := tr.t.Start(ctx, SpanStore+op)
	s.SetString(AttrOperation, op)
	s.SetString(AttrStoreType, tr.storeType)
	return ctx, span{s}
}

// storeLoad is p.store.Load, traced.
func (p *Core) storeLoad(ctx context.Context, id string) (*store.Profile, error) {
	if p.tracer.Load() == nil {
		return p.store.Load(ctx, id)
	}
	ctx, sp := p.startStore(ctx, "Load")
	prof, err := p.store.Load(ctx, id)
	sp.s.SetBool(AttrFound, err == nil)
	if errors.Is(err, store.ErrNotFound) {
		sp.end(nil) // an answer, not a failure
	} else {
		sp.end(err)
	}
	return prof, err
}

// storeDelete is p.store.Delete, traced.
func (p *Core) storeDelete(ctx context.Context, id string) error {
	ctx, sp := p.startStore(ctx, "Delete")
	err := p.store.Delete(ctx, id)
	sp.end(err)
	return err
}

// applyBatch is store.ApplyBatch over p.store, traced.
func (p *Core) applyBatch(ctx context.Context, bs []store.Batch) ([]*store.Profile, error) {
	ctx, sp := p.startStore(ctx, "ApplyBatch")
	if sp.s != nil {
		sp.s.SetInt(AttrProfiles, len(bs))
		sp.s.SetInt(AttrEvents, countEvents(bs))
	}
	profs, err := store.ApplyBatch(ctx, p.store, bs)
	sp.end(err)
	return profs, err
}

func countEvents(bs []store.Batch) int {
	n := 0
	for _, b := range bs {
		n += len(b.Events)
	}
	return n
}

// startFlush starts the span of a flush of bs, if tracing is on and there
// is something to write: an idle flusher makes no spans.
func (p *Core) startFlush(ctx context.Context, bs []store.Batch) (context.Context, span) {
	tr := p.tracer.Load()
	if tr == nil || len(bs) == 0 {
		return ctx, span{}
	}
	ctx, s := tr.t.Start(ctx, SpanFlush)
	s.SetInt(AttrProfiles, len(bs))
	s.SetInt(AttrEvents, countEvents(bs))
	return ctx, span{s}
}

// startLoad starts the span of building a profile's state on a cache
// miss, if tracing is on.
func (p *Core) startLoad(ctx context.Context) (context.Context, span) {
	tr := p.tracer.Load()
	if tr == nil {
		return ctx, span{}
	}
	ctx, s := tr.t.Start(ctx, SpanLoad)
	return ctx, span{s}
}

// endLoad ends the span of startLoad with what was built: st, the state
// of id.
func (s span) endLoad(p *Core, id string, st *state) {
	if s.s == nil {
		return
	}
	mu := p.lock(id) // refresh may clear partial meanwhile
	mu.Lock()
	partial := st.partial
	mu.Unlock()
	s.s.SetBool(AttrPartial, partial)
	s.s.End(nil)
}

// identifyTraced is identify in a span, whose context the profile loads
// run under.
func (p *Core) identifyTraced(tr *tracing, r *http.Request, v *Visit) {
	ctx, s := tr.t.Start(r.Context(), SpanIdentify)
	p.identify(r.WithContext(ctx), v)
	s.SetBool(AttrTracked, v.Tracked)
	s.SetBool(AttrNew, v.New)
	s.SetString(AttrConsent, v.Consent.String())
	s.End(nil)
}

// classifyTraced is classifyCached in a classification span.
func (p *Core) classifyTraced(tr *tracing, r *http.Request, st *state, f *rules.Facts, now time.Time, newVisit bool) ([]string, time.Duration) {
	if p.cfg.Engine == nil {
		return nil, 0
	}
	_, s := tr.t.Start(r.Context(), SpanClassify)
	segs, took, reused := p.classifyMemo(st, f, now, newVisit)
	s.SetBool(AttrCached, reused)
	s.SetStrings(AttrSegments, segs)
	s.End(nil)
	return segs, took
}

// classifyRequest classifies the visitor of r from the request alone (a
// crawler, or a visitor not tracked), traced.
func (p *Core) classifyRequest(r *http.Request, f rules.Facts, now time.Time, bot bool) []string {
	tr := p.tracer.Load()
	if tr == nil {
		return p.classify(nil, f, now)
	}
	_, s := tr.t.Start(r.Context(), SpanClassify)
	segs := p.classify(nil, f, now)
	s.SetBool(AttrBot, bot)
	s.SetStrings(AttrSegments, segs)
	s.End(nil)
	return segs
}

// String returns the consent's name for telemetry.
func (c Consent) String() string {
	switch c {
	case ConsentNone:
		return "none"
	case ConsentContextual:
		return "contextual"
	case ConsentFull:
		return "full"
	}
	return "default"
}
