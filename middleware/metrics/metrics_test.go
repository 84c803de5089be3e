package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/metrics"
	"github.com/tailorhq/tailor/middleware/webhook"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

const browserUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"

var keys = middleware.KeyPair{
	Hash:  []byte("0123456789abcdef0123456789abcdef"),
	Block: []byte("fedcba9876543210fedcba9876543210"),
}

var _ metrics.Source = (*middleware.Personalizer)(nil)

// tap is a Personalizer that also keeps the Observers registered with it,
// so that tests can report to them directly.
type tap struct {
	*middleware.Personalizer
	observers []middleware.Observer
}

func (t *tap) Observe(o middleware.Observer) {
	t.observers = append(t.observers, o)
	t.Personalizer.Observe(o)
}

// site is a Personalizer with its metrics behind a test server: GET /buy
// records a purchase.
type site struct {
	p   *middleware.Personalizer
	m   *metrics.Metrics
	obs middleware.Observer // the one metrics.New registered
	wh  *webhook.Dispatcher
	srv *httptest.Server
}

// newSite makes a site; with a hookURL, it also sends webhooks there.
func newSite(t testing.TB, hookURL string) *site {
	t.Helper()
	engine, err := rules.NewEngine(
		rules.Segment{Name: "customer", Priority: 20, Rule: rules.Purchased(1)},
		rules.Segment{Name: "browser", Priority: 10, Rule: rules.Not(rules.Purchased(1))},
	)
	if err != nil {
		t.Fatal(err)
	}
	s := &site{}
	s.p, err = middleware.New(middleware.Config{
		Keys: []middleware.KeyPair{keys}, Store: memory.New(store.Limits{}), Engine: engine,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.p.Close(context.Background()) })
	if hookURL != "" {
		s.wh, err = webhook.New(webhook.Config{Personalizer: s.p, URL: hookURL, Secret: "k"})
		if err != nil {
			t.Fatal(err)
		}
	}
	tp := &tap{Personalizer: s.p}
	s.m, err = metrics.New(metrics.Config{Personalizer: tp, Webhooks: s.wh, ConstLabels: prometheus.Labels{"site": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tp.observers) != 1 {
		t.Fatalf("metrics.New registered %d observers, want 1", len(tp.observers))
	}
	s.obs = tp.observers[0]
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/buy", func(w http.ResponseWriter, r *http.Request) {
		middleware.FromContext(r.Context()).Purchase(store.Item{ID: "moneyball", Price: 10})
	})
	s.srv = httptest.NewServer(s.p.Handler(mux))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *site) get(t *testing.T, c *http.Client, path string) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.srv.URL+path, nil)
	req.Header.Set("User-Agent", browserUA)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func newClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

func TestNewRequiresPersonalizer(t *testing.T) {
	t.Parallel()
	if _, err := metrics.New(metrics.Config{}); err == nil || !strings.Contains(err.Error(), "Config.Personalizer") {
		t.Fatalf("New without Personalizer: %v", err)
	}
}

func TestCollect(t *testing.T) {
	t.Parallel()
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer rc.Close()
	s := newSite(t, rc.URL)
	c := newClient()
	s.get(t, c, "/")    // new visitor: cookie
	s.get(t, c, "/")    // back with the cookie, and kept: "browser" entered
	s.get(t, c, "/buy") // still "browser"; records the purchase
	s.get(t, c, "/")    // "customer" entered, "browser" exited
	s.get(t, newClient(), "/")
	bot, _ := http.NewRequest("GET", s.srv.URL+"/", nil)
	bot.Header.Set("User-Agent", "Googlebot/2.1")
	if resp, err := http.DefaultClient.Do(bot); err == nil {
		resp.Body.Close()
	}
	if err := s.p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.obs.Classified(3 * time.Microsecond)
	s.obs.Classified(30 * time.Millisecond)
	if err := s.wh.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.m)
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}

	st := s.p.Stats()
	want := `
# HELP tailor_requests_total Requests seen by the Personalizer.
# TYPE tailor_requests_total counter
tailor_requests_total{site="test"} 6
# HELP tailor_bot_requests_total Requests from crawlers, which are not tracked.
# TYPE tailor_bot_requests_total counter
tailor_bot_requests_total{site="test"} 1
# HELP tailor_new_visitors_total Cookies issued to new visitors.
# TYPE tailor_new_visitors_total counter
tailor_new_visitors_total{site="test"} 2
# HELP tailor_segment_entries_total Visitors entering a segment, each reported by the one instance whose write made the change.
# TYPE tailor_segment_entries_total counter
tailor_segment_entries_total{segment="browser",site="test"} 1
tailor_segment_entries_total{segment="customer",site="test"} 1
# HELP tailor_segment_exits_total Visitors leaving a segment, each reported by the one instance whose write made the change.
# TYPE tailor_segment_exits_total counter
tailor_segment_exits_total{segment="browser",site="test"} 1
tailor_segment_exits_total{segment="customer",site="test"} 0
# HELP tailor_pending_events Events waiting to be written to the store.
# TYPE tailor_pending_events gauge
tailor_pending_events{site="test"} 0
# HELP tailor_webhook_deliveries_total Webhook deliveries by outcome.
# TYPE tailor_webhook_deliveries_total counter
tailor_webhook_deliveries_total{outcome="abandoned",site="test"} 0
tailor_webhook_deliveries_total{outcome="delivered",site="test"} 3
tailor_webhook_deliveries_total{outcome="dropped",site="test"} 0
tailor_webhook_deliveries_total{outcome="failed",site="test"} 0
# HELP tailor_profiles Stored profiles, not merged into another, as the store counts them (gauge).
# TYPE tailor_profiles gauge
tailor_profiles{site="test"} 1
# HELP tailor_segment_size Stored profiles in a segment, as the store counts them (gauge).
# TYPE tailor_segment_size gauge
tailor_segment_size{segment="browser",site="test"} 0
tailor_segment_size{segment="customer",site="test"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"tailor_requests_total", "tailor_bot_requests_total", "tailor_new_visitors_total",
		"tailor_segment_entries_total", "tailor_segment_exits_total", "tailor_pending_events",
		"tailor_webhook_deliveries_total", "tailor_profiles", "tailor_segment_size"); err != nil {
		t.Error(err)
	}
	// The histogram has the two observations above and those of the
	// requests' classifications, which New registered it to hear.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var hist *dto.Histogram
	for _, mf := range mfs {
		if mf.GetName() == "tailor_classification_seconds" {
			hist = mf.GetMetric()[0].GetHistogram()
		}
	}
	if hist == nil {
		t.Fatal("no tailor_classification_seconds")
	}
	if n := hist.GetSampleCount(); n < 3 || hist.GetSampleSum() < 0.030003 {
		t.Errorf("tailor_classification_seconds: %d samples summing to %v; want the 2 observed here and the requests'", n, hist.GetSampleSum())
	}

	// The other counters follow Stats.
	for name, want := range map[string]float64{
		"tailor_events_total":            float64(st.Events),
		"tailor_events_flushed_total":    float64(st.Flushed),
		"tailor_returned_visitors_total": float64(st.Returned),
		"tailor_cache_hits_total":        float64(st.CacheHits),
		"tailor_cache_misses_total":      float64(st.CacheMisses),
		"tailor_flushes_total":           float64(st.Flushes),
		"tailor_flush_seconds_total":     st.FlushTime.Seconds(),
		"tailor_webhook_attempts_total":  3,
		"tailor_webhook_queue_length":    0,
	} {
		got := gather(t, reg, name)
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if st.Events == 0 || st.Flushed != st.Events || st.Returned != 1 || st.CacheHits+st.CacheMisses == 0 {
		t.Errorf("stats %+v", st)
	}
	// With the aggregates: profiles, a size per segment, three of the
	// backfill, and the errors counter.
	if n := testutil.CollectAndCount(s.m); n != 17+4+1+1+1+2+2+1+2+3+1 {
		t.Errorf("%d metrics collected", n)
	}
}

// gather returns the value of the single-series metric name.
func gather(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestWithoutWebhooks: the webhook metrics are absent without a dispatcher.
func TestWithoutWebhooks(t *testing.T) {
	t.Parallel()
	s := newSite(t, "")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "tailor_") {
			t.Errorf("metric %s does not start with tailor_", mf.GetName())
		}
		if strings.HasPrefix(mf.GetName(), "tailor_webhook_") {
			t.Errorf("metric %s without webhooks", mf.GetName())
		}
	}
}

func BenchmarkObserveClassification(b *testing.B) {
	s := newSite(b, "")
	b.ReportAllocs()
	for b.Loop() {
		s.obs.Classified(5 * time.Microsecond)
	}
}
