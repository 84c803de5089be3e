// Package metrics exports a Personalizer's counters to Prometheus.
//
// # Use
//
// Metrics is a prometheus.Collector: register it, and serve the registry.
// New registers it as an Observer of the Personalizer (see
// middleware.Observer), which feeds its segment counters and its
// classification histogram; other observers, such as webhooks, listen
// beside it:
//
//	hooks, err := webhook.New(webhook.Config{Personalizer: p, ...}) // optional
//	...
//	m, err := metrics.New(metrics.Config{Personalizer: p, Webhooks: hooks})
//	...
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(m)
//	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Make the metrics before serving: changes and classifications that happen
// before New are not counted.
//
// # Metrics
//
// Every name starts with "tailor_". The counters of [middleware.Stats] are
// read on each scrape, so they cost nothing between scrapes:
//
//	tailor_requests_total                 requests seen
//	tailor_bot_requests_total             requests from crawlers (not tracked)
//	tailor_new_visitors_total             cookies issued to new visitors
//	tailor_returned_visitors_total        new visitors who came back with their cookie
//	tailor_rejected_cookies_total         tampered, truncated, expired or foreign cookies
//	tailor_renewed_cookies_total          cookies re-issued
//	tailor_events_total                   events recorded
//	tailor_events_flushed_total           events the store acknowledged
//	tailor_events_dropped_total           pending events dropped at Config.WriteBehind.MaxPending
//	tailor_pending_events                 events waiting for the store (gauge)
//	tailor_flushes_total                  flushes that wrote something
//	tailor_flush_errors_total             failed store writes (retried)
//	tailor_flush_seconds_total            time spent writing to the store
//	tailor_load_errors_total              failed store reads
//	tailor_cache_hits_total               profile cache hits
//	tailor_cache_misses_total             profile cache misses
//	tailor_rule_errors_total              rule evaluations that failed (no match)
//
// The cache hit ratio is rate(tailor_cache_hits_total[5m]) /
// (rate(tailor_cache_hits_total[5m]) + rate(tailor_cache_misses_total[5m])),
// and the mean flush time rate(tailor_flush_seconds_total[5m]) /
// rate(tailor_flushes_total[5m]).
//
// Fed as things happen:
//
//	tailor_segment_entries_total{segment}  visitors entering a segment (Observer.SegmentChange)
//	tailor_segment_exits_total{segment}    visitors leaving a segment (Observer.SegmentChange)
//	tailor_classification_seconds          time to classify a visitor (Observer.Classified)
//
// The segment label takes the names of the engine's segments, which the
// site defines, so its cardinality is bounded; every segment starts at 0.
//
// Read from the store's aggregates on each scrape (one small read; see
// middleware.Aggregates), exact over every stored profile:
//
//	tailor_profiles                        stored profiles, not merged into another
//	tailor_segment_size{segment}           stored profiles in the segment
//	tailor_backfill_running                1 while the stored segments are classified again
//	tailor_backfill_done_profiles          profiles done by the current or last backfill
//	tailor_backfill_total_profiles         profiles to do (at least done)
//	tailor_aggregate_read_errors_total     scrapes that could not read them
//
// With Config.Webhooks, the dispatcher's counters too:
//
//	tailor_webhook_deliveries_total{outcome}  "delivered", "failed", "dropped", "abandoned"
//	tailor_webhook_attempts_total             attempts, retries included
//	tailor_webhook_queue_length               deliveries waiting (gauge)
package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/webhook"
	"github.com/tailorhq/tailor/rules"
)

// DefaultBuckets are the buckets of tailor_classification_seconds: from 1
// microsecond to about 16 milliseconds. Classification is in-memory work,
// far below Prometheus's default buckets.
var DefaultBuckets = prometheus.ExponentialBuckets(1e-6, 2, 15)

// A Source is what Metrics reads and hears: a *middleware.Personalizer.
type Source interface {
	// Stats returns the counters read on each scrape.
	Stats() middleware.Stats
	// Engine returns the engine whose segments label the segment
	// counters; nil for none.
	Engine() *rules.Engine
	// Observe registers the Observer that feeds the segment counters and
	// the classification histogram.
	Observe(middleware.Observer)
}

// Config configures Metrics.
type Config struct {
	// Personalizer is the one whose Stats are exported and whose segment
	// changes and classifications are counted. Required.
	Personalizer Source
	// Webhooks, if set, adds the dispatcher's counters.
	Webhooks *webhook.Dispatcher
	// Buckets are the upper bounds of tailor_classification_seconds, in
	// seconds. Default DefaultBuckets.
	Buckets []float64
	// ConstLabels are added to every metric (an instance or site name,
	// say). Default none.
	ConstLabels prometheus.Labels
}

// Metrics is a prometheus.Collector of a Personalizer's metrics. Its
// methods are safe for concurrent use.
type Metrics struct {
	p  Source
	wh *webhook.Dispatcher

	stats    []statMetric
	whDeliv  *prometheus.Desc
	whTries  *prometheus.Desc
	whQueue  *prometheus.Desc
	classify prometheus.Histogram
	entries  *prometheus.CounterVec
	exits    *prometheus.CounterVec

	agg                                    aggregator // nil if the Source reads no aggregates
	sizes, profiles, bfDone, bfTotal, bfOn *prometheus.Desc
	aggErrors                              prometheus.Counter
}

// aggregator is the optional ability of a Source to read the store's
// aggregates (middleware.Personalizer has it).
type aggregator interface {
	Aggregates(ctx context.Context) (middleware.Aggregates, error)
}

type statMetric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(*middleware.Stats) float64
}

// New returns the metrics of cfg.Personalizer, registered as its Observer.
func New(cfg Config) (*Metrics, error) {
	if cfg.Personalizer == nil {
		return nil, errors.New("tailor/metrics: Config.Personalizer: required")
	}
	if cfg.Buckets == nil {
		cfg.Buckets = DefaultBuckets
	}
	cl := cfg.ConstLabels
	m := &Metrics{p: cfg.Personalizer, wh: cfg.Webhooks}
	counter := func(name, help string, v func(*middleware.Stats) float64) {
		m.stats = append(m.stats, statMetric{prometheus.NewDesc(name, help, nil, cl), prometheus.CounterValue, v})
	}
	u := func(f func(*middleware.Stats) uint64) func(*middleware.Stats) float64 {
		return func(s *middleware.Stats) float64 { return float64(f(s)) }
	}
	counter("tailor_requests_total", "Requests seen by the Personalizer.", u(func(s *middleware.Stats) uint64 { return s.Requests }))
	counter("tailor_bot_requests_total", "Requests from crawlers, which are not tracked.", u(func(s *middleware.Stats) uint64 { return s.Bots }))
	counter("tailor_new_visitors_total", "Cookies issued to new visitors.", u(func(s *middleware.Stats) uint64 { return s.NewVisitors }))
	counter("tailor_returned_visitors_total", "New visitors who came back with their cookie, and so are kept.", u(func(s *middleware.Stats) uint64 { return s.Returned }))
	counter("tailor_rejected_cookies_total", "Tampered, truncated, expired or foreign visitor cookies.", u(func(s *middleware.Stats) uint64 { return s.RejectedCookies }))
	counter("tailor_renewed_cookies_total", "Visitor cookies re-issued (older key, or over a day old).", u(func(s *middleware.Stats) uint64 { return s.RenewedCookies }))
	counter("tailor_events_total", "Events recorded.", u(func(s *middleware.Stats) uint64 { return s.Events }))
	counter("tailor_events_flushed_total", "Events the store acknowledged.", u(func(s *middleware.Stats) uint64 { return s.Flushed }))
	counter("tailor_events_dropped_total", "Pending events dropped at Config.WriteBehind.MaxPending.", u(func(s *middleware.Stats) uint64 { return s.Dropped }))
	m.stats = append(m.stats, statMetric{prometheus.NewDesc("tailor_pending_events", "Events waiting to be written to the store.", nil, cl),
		prometheus.GaugeValue, func(s *middleware.Stats) float64 { return float64(s.Pending) }})
	counter("tailor_flushes_total", "Flushes of pending events that wrote something.", u(func(s *middleware.Stats) uint64 { return s.Flushes }))
	counter("tailor_flush_errors_total", "Failed writes of pending events (they are retried).", u(func(s *middleware.Stats) uint64 { return s.FlushErrors }))
	counter("tailor_flush_seconds_total", "Time spent writing pending events to the store.", func(s *middleware.Stats) float64 { return s.FlushTime.Seconds() })
	counter("tailor_load_errors_total", "Failed profile reads from the store.", u(func(s *middleware.Stats) uint64 { return s.LoadErrors }))
	counter("tailor_cache_hits_total", "Profile cache hits.", u(func(s *middleware.Stats) uint64 { return s.CacheHits }))
	counter("tailor_cache_misses_total", "Profile cache misses.", u(func(s *middleware.Stats) uint64 { return s.CacheMisses }))
	counter("tailor_rule_errors_total", "Rule evaluations that failed, counted as no match.", u(func(s *middleware.Stats) uint64 { return s.RuleErrors }))

	if m.wh != nil {
		m.whDeliv = prometheus.NewDesc("tailor_webhook_deliveries_total", "Webhook deliveries by outcome.", []string{"outcome"}, cl)
		m.whTries = prometheus.NewDesc("tailor_webhook_attempts_total", "Webhook delivery attempts, retries included.", nil, cl)
		m.whQueue = prometheus.NewDesc("tailor_webhook_queue_length", "Webhook deliveries waiting to be sent or retried.", nil, cl)
	}

	m.classify = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "tailor_classification_seconds", Help: "Time to classify a visitor into segments.",
		Buckets: cfg.Buckets, ConstLabels: cl,
	})
	m.entries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_segment_entries_total", Help: "Visitors entering a segment, each reported by the one instance whose write made the change.", ConstLabels: cl,
	}, []string{"segment"})
	m.exits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tailor_segment_exits_total", Help: "Visitors leaving a segment, each reported by the one instance whose write made the change.", ConstLabels: cl,
	}, []string{"segment"})
	if ag, ok := cfg.Personalizer.(aggregator); ok {
		m.agg = ag
		m.profiles = prometheus.NewDesc("tailor_profiles", "Stored profiles, not merged into another, as the store counts them (gauge).", nil, cl)
		m.sizes = prometheus.NewDesc("tailor_segment_size", "Stored profiles in a segment, as the store counts them (gauge).", []string{"segment"}, cl)
		m.bfOn = prometheus.NewDesc("tailor_backfill_running", "1 while the stored segments are being classified again after their definitions changed.", nil, cl)
		m.bfDone = prometheus.NewDesc("tailor_backfill_done_profiles", "Profiles classified again by the current or last backfill.", nil, cl)
		m.bfTotal = prometheus.NewDesc("tailor_backfill_total_profiles", "Profiles to classify again in the current or last backfill.", nil, cl)
		m.aggErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "tailor_aggregate_read_errors_total", Help: "Scrapes that could not read the store's aggregates.", ConstLabels: cl})
	}
	for _, s := range cfg.Personalizer.Engine().Segments() {
		m.entries.WithLabelValues(s.Name)
		m.exits.WithLabelValues(s.Name)
	}
	cfg.Personalizer.Observe(middleware.Observer{SegmentChange: m.segmentChange, Classified: m.classified})
	return m, nil
}

// Describe sends the descriptors of every metric.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range m.stats {
		ch <- s.desc
	}
	if m.wh != nil {
		ch <- m.whDeliv
		ch <- m.whTries
		ch <- m.whQueue
	}
	m.classify.Describe(ch)
	m.entries.Describe(ch)
	m.exits.Describe(ch)
	if m.agg != nil {
		for _, d := range []*prometheus.Desc{m.profiles, m.sizes, m.bfOn, m.bfDone, m.bfTotal} {
			ch <- d
		}
		m.aggErrors.Describe(ch)
	}
}

// Collect reads the Personalizer's (and the dispatcher's) counters and
// sends every metric.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	st := m.p.Stats()
	for _, s := range m.stats {
		ch <- prometheus.MustNewConstMetric(s.desc, s.typ, s.value(&st))
	}
	if m.wh != nil {
		ws := m.wh.Stats()
		for _, o := range []struct {
			name string
			n    uint64
		}{{"delivered", ws.Delivered}, {"failed", ws.Failed}, {"dropped", ws.Dropped}, {"abandoned", ws.Abandoned}} {
			ch <- prometheus.MustNewConstMetric(m.whDeliv, prometheus.CounterValue, float64(o.n), o.name)
		}
		ch <- prometheus.MustNewConstMetric(m.whTries, prometheus.CounterValue, float64(ws.Attempts))
		ch <- prometheus.MustNewConstMetric(m.whQueue, prometheus.GaugeValue, float64(ws.Queued))
	}
	m.classify.Collect(ch)
	m.entries.Collect(ch)
	m.exits.Collect(ch)
	m.collectAggregates(ch)
}

// collectAggregates reads the store's aggregates: one small read per
// scrape, bounded by a few seconds.
func (m *Metrics) collectAggregates(ch chan<- prometheus.Metric) {
	if m.agg == nil {
		return
	}
	defer m.aggErrors.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := m.agg.Aggregates(ctx)
	if errors.Is(err, middleware.ErrNoAggregates) {
		return
	}
	if err != nil {
		m.aggErrors.Inc()
		return
	}
	ch <- prometheus.MustNewConstMetric(m.profiles, prometheus.GaugeValue, float64(a.Profiles))
	for _, seg := range m.p.Engine().Segments() {
		ch <- prometheus.MustNewConstMetric(m.sizes, prometheus.GaugeValue, float64(a.Segments[seg.Name]), seg.Name)
	}
	on := 0.0
	if a.Backfill.Running {
		on = 1
	}
	ch <- prometheus.MustNewConstMetric(m.bfOn, prometheus.GaugeValue, on)
	ch <- prometheus.MustNewConstMetric(m.bfDone, prometheus.GaugeValue, float64(a.Backfill.Done))
	ch <- prometheus.MustNewConstMetric(m.bfTotal, prometheus.GaugeValue, float64(a.Backfill.Total))
}

// segmentChange counts the segments the visitor entered and exited. It is
// cheap and never blocks, as an Observer must.
func (m *Metrics) segmentChange(c middleware.SegmentChange) {
	for _, s := range c.Entered {
		m.entries.WithLabelValues(s).Inc()
	}
	for _, s := range c.Exited {
		m.exits.WithLabelValues(s).Inc()
	}
}

// classified records the time one classification of a visitor took, in
// tailor_classification_seconds. It runs on every classification, so it is
// safe for concurrent use and does not allocate.
func (m *Metrics) classified(d time.Duration) {
	m.classify.Observe(d.Seconds())
}
