// Package otel reports a Personalizer's traces and metrics through
// OpenTelemetry. Nothing is reported unless New is called with a
// TracerProvider or a MeterProvider; a site that never imports this
// package does not link OpenTelemetry.
//
// # Use
//
//	p, err := middleware.New(cfg)
//	...
//	tel, err := tailorotel.New(p, tailorotel.Config{
//		TracerProvider: tp, // an sdk/trace TracerProvider, or otel.GetTracerProvider()
//		MeterProvider:  mp,
//	})
//	...
//	defer tel.Close()
//
// Call New before serving: spans start with the next request, and
// segment changes and classifications before New are not counted.
//
// # Spans
//
// On the request path, as children of the request's span (an
// otelhttp.Handler around Personalizer.Handler makes one):
//
//	tailor.identify          the cookie, the consent, and the profile the
//	                         visitor's events go to
//	  tailor.load            a profile not in the cache, built from the store
//	    tailor.store.Load    the store's read (within Config.LoadTimeout)
//	tailor.classify          the visitor's segments
//
// In the background, as roots of their own traces (or children of the
// caller's span for Personalizer.Flush and Forget):
//
//	tailor.flush             a write of the queued events (none when idle)
//	  tailor.store.ApplyBatch
//	tailor.store.Delete      erasures (Forget, consent withdrawn, retention)
//	tailor.store.Due, Scan, Counts, Lease, Release, Expire,
//	  TrimPurchases, Document, PutDocument   the site-wide jobs' calls
//
// Attributes: tailor.segments (the segment names a visitor was classified
// into), tailor.classify.cached, tailor.visitor.tracked,
// tailor.visitor.new, tailor.consent, tailor.bot, tailor.load.partial,
// tailor.store.operation, tailor.store.type, tailor.store.profiles,
// tailor.store.events, tailor.store.found, and error.type on failures.
// They never carry a visitor, user or profile id, nor an error's message
// (a store's error may name the profile): a failed span has the status
// Error and error.type set to a class ("timeout", "canceled", "erased",
// "closed", "store_down", "error"). A Load that finds no profile is an
// answer (tailor.store.found false), not a failure.
//
// # Metrics
//
// The counters of middleware.Stats, read on each collection from the same
// counters that package middleware/metrics exports to Prometheus, so both
// agree: tailor.requests, tailor.bot_requests, tailor.visitors.new,
// tailor.visitors.returned, tailor.cookies.rejected, tailor.cookies.renewed,
// tailor.events, tailor.events.flushed, tailor.events.dropped,
// tailor.flushes, tailor.flush.errors, tailor.flush.duration (seconds spent
// flushing), tailor.load.errors, tailor.cache.hits, tailor.cache.misses,
// tailor.rule.errors, and the gauge tailor.events.pending. Fed as things
// happen: tailor.segment.entries and tailor.segment.exits (attribute
// tailor.segment, a segment name; see middleware.Observer.SegmentChange),
// tailor.classification.duration (seconds; Observer.Classified) and
// tailor.store.duration (seconds, per store call; attributes
// tailor.store.operation and error.type).
//
// Package middleware/metrics stays the way to serve Prometheus: its names
// are tailor's documented metric names, which OpenTelemetry's Prometheus
// exporter would rename (unit suffixes, scope labels). Use both side by
// side, or this package alone with an OTLP exporter.
package otel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/internal/core"
)

// ScopeName is the instrumentation scope of tailor's tracer and meter.
const ScopeName = "github.com/tailorhq/tailor/middleware/otel"

// Config says where spans and metrics go.
type Config struct {
	// TracerProvider receives the spans. Nil: no spans.
	TracerProvider trace.TracerProvider
	// MeterProvider receives the metrics. Nil: no metrics.
	MeterProvider metric.MeterProvider
	// DurationBuckets are the bucket bounds, in seconds, of
	// tailor.classification.duration and tailor.store.duration. Default
	// DefaultBuckets.
	DurationBuckets []float64
}

// DefaultBuckets span 1 microsecond (a classification) to about 4
// seconds (a slow store write).
var DefaultBuckets = []float64{1e-6, 4e-6, 16e-6, 64e-6, 256e-6, 1e-3, 4e-3, 16e-3, 64e-3, 256e-3, 1, 4}

// Telemetry is the instrumentation of one Personalizer. Close stops it.
type Telemetry struct {
	p      *middleware.Personalizer
	c      *core.Core
	closed atomic.Bool
	reg    metric.Registration // nil without a MeterProvider

	tracer   trace.Tracer            // nil without a TracerProvider
	store    metric.Float64Histogram // nil without a MeterProvider
	classify metric.Float64Histogram
	entries  metric.Int64Counter
	exits    metric.Int64Counter
}

// New instruments p: from now on it reports spans to cfg.TracerProvider
// and metrics to cfg.MeterProvider. With neither, it returns an error. A
// Personalizer sends its spans to one Telemetry at a time, the last made;
// the metrics of each are reported until it is closed.
func New(p *middleware.Personalizer, cfg Config) (*Telemetry, error) {
	if p == nil {
		return nil, errors.New("tailor/otel: New: the Personalizer is nil")
	}
	if cfg.TracerProvider == nil && cfg.MeterProvider == nil {
		return nil, errors.New("tailor/otel: New: Config has neither a TracerProvider nor a MeterProvider")
	}
	if cfg.DurationBuckets == nil {
		cfg.DurationBuckets = DefaultBuckets
	}
	t := &Telemetry{p: p, c: core.Unwrap.Personalizer(p)}
	if cfg.TracerProvider != nil {
		t.tracer = cfg.TracerProvider.Tracer(ScopeName)
	}
	if cfg.MeterProvider != nil {
		if err := t.meter(cfg.MeterProvider.Meter(ScopeName), cfg.DurationBuckets); err != nil {
			return nil, fmt.Errorf("tailor/otel: New: %w", err)
		}
	}
	t.c.SetTracer(tracer{t}, fmt.Sprintf("%T", p.Store()))
	return t, nil
}

// Close stops the instrumentation: no more spans, and no more metrics
// from the next collection on. It does not shut the providers down.
func (t *Telemetry) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	t.c.UnsetTracer(tracer{t})
	if t.reg != nil {
		return t.reg.Unregister()
	}
	return nil
}

// meter makes the instruments and registers the callback that reads the
// Personalizer's counters.
func (t *Telemetry) meter(m metric.Meter, buckets []float64) error {
	type stat struct {
		name, unit, desc string
		value            func(*middleware.Stats) int64
	}
	stats := []stat{
		{"tailor.requests", "{request}", "Requests seen by the Personalizer.", func(s *middleware.Stats) int64 { return int64(s.Requests) }},
		{"tailor.bot_requests", "{request}", "Requests from crawlers, which are not tracked.", func(s *middleware.Stats) int64 { return int64(s.Bots) }},
		{"tailor.visitors.new", "{visitor}", "Cookies issued to new visitors.", func(s *middleware.Stats) int64 { return int64(s.NewVisitors) }},
		{"tailor.visitors.returned", "{visitor}", "New visitors who came back with their cookie, and so are kept.", func(s *middleware.Stats) int64 { return int64(s.Returned) }},
		{"tailor.cookies.rejected", "{cookie}", "Tampered, truncated, expired or foreign visitor cookies.", func(s *middleware.Stats) int64 { return int64(s.RejectedCookies) }},
		{"tailor.cookies.renewed", "{cookie}", "Visitor cookies re-issued.", func(s *middleware.Stats) int64 { return int64(s.RenewedCookies) }},
		{"tailor.events", "{event}", "Events recorded.", func(s *middleware.Stats) int64 { return int64(s.Events) }},
		{"tailor.events.flushed", "{event}", "Events the store acknowledged.", func(s *middleware.Stats) int64 { return int64(s.Flushed) }},
		{"tailor.events.dropped", "{event}", "Pending events dropped at Config.WriteBehind.MaxPending.", func(s *middleware.Stats) int64 { return int64(s.Dropped) }},
		{"tailor.flushes", "{flush}", "Flushes of pending events that wrote something.", func(s *middleware.Stats) int64 { return int64(s.Flushes) }},
		{"tailor.flush.errors", "{error}", "Failed writes of pending events (they are retried).", func(s *middleware.Stats) int64 { return int64(s.FlushErrors) }},
		{"tailor.load.errors", "{error}", "Failed profile reads from the store.", func(s *middleware.Stats) int64 { return int64(s.LoadErrors) }},
		{"tailor.cache.hits", "{hit}", "Profile cache hits.", func(s *middleware.Stats) int64 { return int64(s.CacheHits) }},
		{"tailor.cache.misses", "{miss}", "Profile cache misses.", func(s *middleware.Stats) int64 { return int64(s.CacheMisses) }},
		{"tailor.rule.errors", "{error}", "Rule evaluations that failed, counted as no match.", func(s *middleware.Stats) int64 { return int64(s.RuleErrors) }},
	}
	counters := make([]metric.Int64ObservableCounter, len(stats))
	insts := make([]metric.Observable, 0, len(stats)+2)
	for i, s := range stats {
		c, err := m.Int64ObservableCounter(s.name, metric.WithUnit(s.unit), metric.WithDescription(s.desc))
		if err != nil {
			return err
		}
		counters[i] = c
		insts = append(insts, c)
	}
	flushTime, err := m.Float64ObservableCounter("tailor.flush.duration", metric.WithUnit("s"),
		metric.WithDescription("Time spent writing pending events to the store."))
	if err != nil {
		return err
	}
	pending, err := m.Int64ObservableUpDownCounter("tailor.events.pending", metric.WithUnit("{event}"),
		metric.WithDescription("Events waiting to be written to the store."))
	if err != nil {
		return err
	}
	insts = append(insts, flushTime, pending)
	t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if t.closed.Load() {
			return nil
		}
		s := t.p.Stats()
		for i, st := range stats {
			o.ObserveInt64(counters[i], st.value(&s))
		}
		o.ObserveFloat64(flushTime, s.FlushTime.Seconds())
		o.ObserveInt64(pending, int64(s.Pending))
		return nil
	}, insts...)
	if err != nil {
		return err
	}
	if t.store, err = m.Float64Histogram("tailor.store.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of the store calls tailor makes."),
		metric.WithExplicitBucketBoundaries(buckets...)); err != nil {
		return err
	}
	if t.classify, err = m.Float64Histogram("tailor.classification.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to classify a visitor into segments (not when a cached classification is reused)."),
		metric.WithExplicitBucketBoundaries(buckets...)); err != nil {
		return err
	}
	if t.entries, err = m.Int64Counter("tailor.segment.entries", metric.WithUnit("{visitor}"),
		metric.WithDescription("Visitors entering a segment, each reported by the one instance whose write made the change.")); err != nil {
		return err
	}
	if t.exits, err = m.Int64Counter("tailor.segment.exits", metric.WithUnit("{visitor}"),
		metric.WithDescription("Visitors leaving a segment, each reported by the one instance whose write made the change.")); err != nil {
		return err
	}
	t.p.Observe(middleware.Observer{
		SegmentChange: t.segmentChange,
		Classified:    t.classified,
	})
	return nil
}

func (t *Telemetry) segmentChange(c middleware.SegmentChange) {
	if t.closed.Load() {
		return
	}
	ctx := context.Background()
	for _, s := range c.Entered {
		t.entries.Add(ctx, 1, metric.WithAttributes(attribute.String("tailor.segment", s)))
	}
	for _, s := range c.Exited {
		t.exits.Add(ctx, 1, metric.WithAttributes(attribute.String("tailor.segment", s)))
	}
}

func (t *Telemetry) classified(d time.Duration) {
	if t.closed.Load() {
		return
	}
	t.classify.Record(context.Background(), d.Seconds())
}

// tracer is the core.Tracer over OpenTelemetry.
type tracer struct{ t *Telemetry }

func (tr tracer) Start(ctx context.Context, name string) (context.Context, core.Span) {
	op, isStore := strings.CutPrefix(name, core.SpanStore)
	measured := isStore && tr.t.store != nil
	if tr.t.tracer == nil && !measured {
		return ctx, nop{} // metrics alone: no span to make
	}
	sp := &span{s: noSpan, t: tr.t}
	if tr.t.tracer != nil {
		kind := trace.SpanKindInternal
		if isStore {
			kind = trace.SpanKindClient
		}
		ctx, sp.s = tr.t.tracer.Start(ctx, name, trace.WithSpanKind(kind))
	}
	if measured {
		sp.op, sp.start = op, time.Now()
	}
	return ctx, sp
}

// noSpan stands for the span of a store call measured without tracing.
var noSpan = trace.SpanFromContext(context.Background())

// nop is a core.Span that records nothing.
type nop struct{}

func (nop) SetBool(string, bool)        {}
func (nop) SetInt(string, int)          {}
func (nop) SetString(string, string)    {}
func (nop) SetStrings(string, []string) {}
func (nop) End(error)                   {}

// span is a core.Span over an OpenTelemetry span; a store call's also
// feeds tailor.store.duration.
type span struct {
	s     trace.Span
	t     *Telemetry
	op    string // the store operation, if measured
	start time.Time
}

func (s *span) SetBool(k string, v bool)        { s.s.SetAttributes(attribute.Bool(k, v)) }
func (s *span) SetInt(k string, v int)          { s.s.SetAttributes(attribute.Int(k, v)) }
func (s *span) SetString(k, v string)           { s.s.SetAttributes(attribute.String(k, v)) }
func (s *span) SetStrings(k string, v []string) { s.s.SetAttributes(attribute.StringSlice(k, v)) }

func (s *span) End(err error) {
	class := core.ErrorClass(err)
	if err != nil {
		s.s.SetAttributes(attribute.String(core.AttrErrorClass, class))
		s.s.SetStatus(codes.Error, class)
	}
	s.s.End()
	if s.op != "" {
		attrs := []attribute.KeyValue{attribute.String(core.AttrOperation, s.op)}
		if err != nil {
			attrs = append(attrs, attribute.String(core.AttrErrorClass, class))
		}
		s.t.store.Record(context.Background(), time.Since(s.start).Seconds(), metric.WithAttributes(attrs...))
	}
}
