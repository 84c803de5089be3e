package otel_test

import (
	"context"

	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tailorhq/tailor/middleware"
	tailorotel "github.com/tailorhq/tailor/middleware/otel"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

const browserUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"

var keys = middleware.KeyPair{
	Hash:  []byte("0123456789abcdef0123456789abcdef"),
	Block: []byte("fedcba9876543210fedcba9876543210"),
}

// newP returns a Personalizer on st with two segments: "visitor" (one
// visit or more) and "regular" (five or more), closed at the end of the
// test.
func newP(t testing.TB, st store.Store) *middleware.Personalizer {
	t.Helper()
	e, err := rules.NewEngine(
		rules.Segment{Name: "visitor", Priority: 10, Rule: rules.Visits(1)},
		rules.Segment{Name: "regular", Priority: 20, Rule: rules.Visits(5)},
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := middleware.New(middleware.Config{Keys: []middleware.KeyPair{keys}, Store: st, Engine: e,
		WriteBehind: middleware.WriteBehindConfig{FlushInterval: time.Hour}, RecheckInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

// visit sends a GET through h under ctx with the cookie c (none if nil)
// and returns the visitor id and the cookie the response set (c if none).
func visit(t *testing.T, ctx context.Context, h http.Handler, c *http.Cookie) (string, *http.Cookie) {
	t.Helper()
	r := httptest.NewRequestWithContext(ctx, "GET", "/products/moneyball", nil)
	r.Header.Set("User-Agent", browserUA)
	if c != nil {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	for _, rc := range w.Result().Cookies() {
		c = rc
	}
	return w.Body.String(), c
}

// post sends a POST with the cookie c through h.
func post(t *testing.T, ctx context.Context, h http.Handler, c *http.Cookie) {
	t.Helper()
	r := httptest.NewRequestWithContext(ctx, "POST", "/cart", nil)
	r.Header.Set("User-Agent", browserUA)
	r.AddCookie(c)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
}

var echoID = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Write([]byte(middleware.FromContext(r.Context()).ID()))
})

// inTrace returns the spans of root's trace.
func inTrace(spans []sdktrace.ReadOnlySpan, root interface{ SpanContext() trace.SpanContext }) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanContext().TraceID() == root.SpanContext().TraceID() {
			out = append(out, s)
		}
	}
	return out
}

func byName(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func one(t *testing.T, spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	got := byName(spans, name)
	if len(got) != 1 {
		t.Fatalf("%d spans %s, want 1; spans: %v", len(got), name, names(spans))
	}
	return got[0]
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name())
	}
	return n
}

func attr(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value, true
		}
	}
	return attribute.Value{}, false
}

// noID fails if any attribute, event or status of spans holds one of ids.
func noID(t *testing.T, spans []sdktrace.ReadOnlySpan, ids ...string) {
	t.Helper()
	for _, s := range spans {
		texts := []string{s.Name(), s.Status().Description}
		for _, a := range s.Attributes() {
			texts = append(texts, a.Value.Emit())
		}
		for _, e := range s.Events() {
			texts = append(texts, e.Name)
			for _, a := range e.Attributes {
				texts = append(texts, a.Value.Emit())
			}
		}
		for _, x := range texts {
			for _, id := range ids {
				if id != "" && strings.Contains(x, id) {
					t.Errorf("span %s carries the id %q in %q", s.Name(), id, x)
				}
			}
		}
	}
}

func TestRequestSpans(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	p := newP(t, memory.New(store.Limits{}))
	tel, err := tailorotel.New(p, tailorotel.Config{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Close()
	h := p.Handler(echoID)

	id, c := visit(t, context.Background(), h, nil) // new: a cookie, nothing loaded
	rec.Reset()
	// The return, under the request's span as otelhttp would make it.
	ctx, root := tp.Tracer("test").Start(context.Background(), "GET /products")
	if back, _ := visit(t, ctx, h, c); back != id {
		t.Fatalf("returned as %q, was %q", back, id)
	}
	root.End()
	// Filtered by trace: the segment jobs, in the background, make spans
	// of their own.
	spans := inTrace(rec.Ended(), root)

	ident := one(t, spans, "tailor.identify")
	load := one(t, spans, "tailor.load")
	sload := one(t, spans, "tailor.store.Load")
	cls := one(t, spans, "tailor.classify")
	req := one(t, spans, "GET /products")
	for _, pc := range []struct{ child, parent sdktrace.ReadOnlySpan }{
		{ident, req}, {load, ident}, {sload, load}, {cls, req},
	} {
		if pc.child.Parent().SpanID() != pc.parent.SpanContext().SpanID() || pc.child.SpanContext().TraceID() != req.SpanContext().TraceID() {
			t.Errorf("%s is not a child of %s", pc.child.Name(), pc.parent.Name())
		}
	}
	if v, _ := attr(ident, "tailor.visitor.tracked"); !v.AsBool() {
		t.Errorf("identify: tracked = %v", v.Emit())
	}
	if v, _ := attr(ident, "tailor.consent"); v.AsString() != "full" {
		t.Errorf("identify: consent = %q", v.Emit())
	}
	if v, _ := attr(sload, "tailor.store.operation"); v.AsString() != "Load" {
		t.Errorf("store span: operation = %q", v.Emit())
	}
	if v, _ := attr(sload, "tailor.store.type"); v.AsString() != "*memory.Store" {
		t.Errorf("store span: type = %q", v.Emit())
	}
	if v, ok := attr(sload, "tailor.store.found"); !ok || v.AsBool() {
		t.Errorf("store span: found = %v (the visitor was not persisted yet)", v.Emit())
	}
	if sload.Status().Code == codes.Error {
		t.Errorf("a Load that finds nothing is not a failure: %v", sload.Status())
	}
	if v, _ := attr(cls, "tailor.segments"); !slices.Equal(v.AsStringSlice(), []string{"visitor"}) {
		t.Errorf("classify: segments = %v", v.Emit())
	}
	if v, ok := attr(cls, "tailor.classify.cached"); !ok || v.AsBool() {
		t.Errorf("classify: cached = %v, want false the first time", v.Emit())
	}

	// The write-behind: a flush span, root of its own trace, with the
	// store's write beneath.
	rec.Reset()
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	flush := one(t, rec.Ended(), "tailor.flush")
	if flush.Parent().IsValid() {
		t.Errorf("flush has a parent: %v", flush.Parent())
	}
	spans = inTrace(rec.Ended(), flush)
	apply := one(t, spans, "tailor.store.ApplyBatch")
	if apply.Parent().SpanID() != flush.SpanContext().SpanID() {
		t.Error("ApplyBatch is not a child of flush")
	}
	if v, _ := attr(apply, "tailor.store.profiles"); v.AsInt64() != 1 {
		t.Errorf("ApplyBatch: profiles = %v", v.Emit())
	}
	if v, _ := attr(apply, "tailor.store.events"); v.AsInt64() < 1 {
		t.Errorf("ApplyBatch: events = %v", v.Emit())
	}
	// An idle flush makes no span.
	rec.Reset()
	p.Flush(context.Background())
	if s := byName(rec.Ended(), "tailor.flush"); len(s) != 0 {
		t.Errorf("idle flush made spans %v", names(s))
	}

	// Cached now: the next requests load nothing, and one that records
	// nothing (a POST is no page view) leaves the profile unchanged, so
	// that the one after it reuses the classification.
	post(t, context.Background(), h, c)
	ctx, root = tp.Tracer("test").Start(context.Background(), "POST /cart")
	post(t, ctx, h, c)
	root.End()
	spans = inTrace(rec.Ended(), root)
	if n := len(byName(spans, "tailor.load")); n != 0 {
		t.Errorf("%d load spans for a cached profile", n)
	}
	if v, _ := attr(one(t, spans, "tailor.classify"), "tailor.classify.cached"); !v.AsBool() {
		t.Errorf("classify: cached = %v, want true", v.Emit())
	}

	// Erasure: the store's delete, under the caller's span.
	ctx, root = tp.Tracer("test").Start(context.Background(), "erase")
	if err := p.Forget(ctx, id); err != nil {
		t.Fatal(err)
	}
	root.End()
	if del := byName(inTrace(rec.Ended(), root), "tailor.store.Delete"); len(del) == 0 {
		t.Errorf("no Delete span in Forget's trace; spans %v", names(rec.Ended()))
	}
	// Every span tailor made, the jobs' included.
	noID(t, rec.Ended(), id)
}

// failing is a store whose every call fails with an error that names the
// profile, as some stores' errors do.
// Healed, it passes the calls on (so that Close can write).
type failing struct {
	store.Store
	healed atomic.Bool
}

func (f *failing) Load(ctx context.Context, id string) (*store.Profile, error) {
	if f.healed.Load() {
		return f.Store.Load(ctx, id)
	}
	return nil, fmt.Errorf("connection reset reading profile %q", id)
}

func (f *failing) Apply(ctx context.Context, id string, evs []store.Event) (*store.Profile, error) {
	if f.healed.Load() {
		return f.Store.Apply(ctx, id, evs)
	}
	return nil, fmt.Errorf("connection reset writing profile %q", id)
}

func TestFailuresKeepIDsOut(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	st := &failing{Store: memory.New(store.Limits{})}
	p := newP(t, st)
	t.Cleanup(func() { st.healed.Store(true) }) // before Close
	tel, err := tailorotel.New(p, tailorotel.Config{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Close()
	h := p.Handler(echoID)
	id, c := visit(t, context.Background(), h, nil)
	visit(t, context.Background(), h, c)
	if err := p.Flush(context.Background()); err == nil {
		t.Fatal("flush to a failing store succeeded")
	}
	spans := rec.Ended()
	sload := one(t, spans, "tailor.store.Load")
	if sload.Status().Code != codes.Error {
		t.Errorf("failed Load: status %v", sload.Status())
	}
	if v, _ := attr(sload, "error.type"); v.AsString() != "error" {
		t.Errorf("failed Load: error.type = %q", v.Emit())
	}
	if v, _ := attr(one(t, spans, "tailor.load"), "tailor.load.partial"); !v.AsBool() {
		t.Error("load from a failing store is not partial")
	}
	for _, name := range []string{"tailor.flush", "tailor.store.ApplyBatch"} {
		if s := one(t, spans, name); s.Status().Code != codes.Error {
			t.Errorf("%s: status %v", name, s.Status())
		}
	}
	noID(t, spans, id)
}

func TestOffAndClosed(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	if _, err := tailorotel.New(newP(t, memory.New(store.Limits{})), tailorotel.Config{}); err == nil {
		t.Error("New without providers succeeded")
	}
	if _, err := tailorotel.New(nil, tailorotel.Config{TracerProvider: tp}); err == nil {
		t.Error("New without a Personalizer succeeded")
	}

	p := newP(t, memory.New(store.Limits{}))
	tel, err := tailorotel.New(p, tailorotel.Config{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	h := p.Handler(echoID)
	_, c := visit(t, context.Background(), h, nil)
	if len(rec.Ended()) == 0 {
		t.Fatal("no span while instrumented")
	}
	if err := tel.Close(); err != nil {
		t.Fatal(err)
	}
	rec.Reset()
	visit(t, context.Background(), h, c)
	visit(t, context.Background(), h, nil)
	p.Flush(context.Background())
	if s := rec.Ended(); len(s) != 0 {
		t.Errorf("spans after Close: %v", names(s))
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "tailor.requests" {
				t.Errorf("tailor.requests collected after Close: %+v", m.Data)
			}
		}
	}

	// A Personalizer never instrumented records nothing, whatever else
	// in the process is.
	other := newP(t, memory.New(store.Limits{}))
	rec.Reset()
	oh := other.Handler(echoID)
	_, oc := visit(t, context.Background(), oh, nil)
	visit(t, context.Background(), oh, oc)
	other.Flush(context.Background())
	if s := rec.Ended(); len(s) != 0 {
		t.Errorf("spans of a Personalizer not instrumented: %v", names(s))
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	p := newP(t, memory.New(store.Limits{}))
	tel, err := tailorotel.New(p, tailorotel.Config{MeterProvider: mp}) // metrics alone
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Close()
	h := p.Handler(echoID)
	id, c := visit(t, context.Background(), h, nil)
	visit(t, context.Background(), h, c) // kept now: classified into "visitor"
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The segment change is reported once the write is acknowledged, and
	// delivered as the flush lock is released: poll with a deadline.
	var got map[string]metricdata.Aggregation
	deadline := time.Now().Add(20 * time.Second)
	for {
		got = collect(t, reader)
		if entries(got["tailor.segment.entries"], "visitor") == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := entries(got["tailor.segment.entries"], "visitor"); n != 1 {
		t.Errorf("tailor.segment.entries{visitor} = %d, want 1", n)
	}
	// The counters are the Stats that Prometheus reads too.
	s := p.Stats()
	for name, want := range map[string]int64{
		"tailor.requests": int64(s.Requests), "tailor.visitors.new": int64(s.NewVisitors),
		"tailor.visitors.returned": int64(s.Returned), "tailor.events.flushed": int64(s.Flushed),
		"tailor.cache.misses": int64(s.CacheMisses),
	} {
		sum, ok := got[name].(metricdata.Sum[int64])
		if !ok || len(sum.DataPoints) != 1 {
			t.Errorf("%s: %+v", name, got[name])
			continue
		}
		if v := sum.DataPoints[0].Value; v != want || v == 0 {
			t.Errorf("%s = %d, Stats say %d", name, v, want)
		}
	}
	ops := map[string]uint64{}
	if hist, ok := got["tailor.store.duration"].(metricdata.Histogram[float64]); ok {
		for _, dp := range hist.DataPoints {
			op, _ := dp.Attributes.Value("tailor.store.operation")
			ops[op.AsString()] += dp.Count
			for _, kv := range dp.Attributes.ToSlice() {
				if strings.Contains(kv.Value.Emit(), id) {
					t.Errorf("store duration attribute %s carries the visitor id", kv.Key)
				}
			}
		}
	}
	if ops["Load"] == 0 || ops["ApplyBatch"] == 0 {
		t.Errorf("tailor.store.duration by operation: %v", ops)
	}
	if hist, ok := got["tailor.classification.duration"].(metricdata.Histogram[float64]); !ok || len(hist.DataPoints) != 1 || hist.DataPoints[0].Count == 0 {
		t.Errorf("tailor.classification.duration: %+v", got["tailor.classification.duration"])
	}
}

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

func entries(a metricdata.Aggregation, segment string) int64 {
	sum, ok := a.(metricdata.Sum[int64])
	if !ok {
		return -1
	}
	for _, dp := range sum.DataPoints {
		if v, _ := dp.Attributes.Value("tailor.segment"); v.AsString() == segment {
			return dp.Value
		}
	}
	return 0
}

func TestReplaced(t *testing.T) {
	t.Parallel()
	rec1, rec2 := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	tp1 := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec1))
	tp2 := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec2))
	p := newP(t, memory.New(store.Limits{}))
	first, err := tailorotel.New(p, tailorotel.Config{TracerProvider: tp1})
	if err != nil {
		t.Fatal(err)
	}
	second, err := tailorotel.New(p, tailorotel.Config{TracerProvider: tp2})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	first.Close() // must not stop the second's spans
	visit(t, context.Background(), p.Handler(echoID), nil)
	if n := len(byName(rec1.Ended(), "tailor.identify")); n != 0 {
		t.Errorf("the replaced Telemetry got %d identify spans", n)
	}
	if n := len(byName(rec2.Ended(), "tailor.identify")); n != 1 {
		t.Errorf("the last Telemetry got %d identify spans, want 1", n)
	}
}

// The segment jobs' store calls are traced too, as roots of their own
// traces.
func TestJobSpans(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	e, err := rules.NewEngine(rules.Segment{Name: "visitor", Rule: rules.Visits(1)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := middleware.New(middleware.Config{Keys: []middleware.KeyPair{keys}, Store: memory.New(store.Limits{}),
		Engine: e, RecheckInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	tel, err := tailorotel.New(p, tailorotel.Config{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Close()
	h := p.Handler(echoID)
	id, c := visit(t, context.Background(), h, nil)
	visit(t, context.Background(), h, c)
	p.Flush(context.Background())
	deadline := time.Now().Add(20 * time.Second)
	for len(byName(rec.Ended(), "tailor.store.Due")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no tailor.store.Due span within 20s; spans %v", names(rec.Ended()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	due := byName(rec.Ended(), "tailor.store.Due")[0]
	if due.Parent().IsValid() {
		t.Error("a job's store call has a parent")
	}
	if due.SpanKind() != trace.SpanKindClient {
		t.Errorf("store span kind %v, want client", due.SpanKind())
	}
	noID(t, rec.Ended(), id)
}
