package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/webhook"
)

const secret = "s3cret-s3cret-s3cret-s3cret-s3cr"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// receiver is a webhook endpoint that verifies every delivery and answers
// with the statuses of answer, in turn (200 once they run out).
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	answers  []func(w http.ResponseWriter)
	got      []webhook.Event
	attempts map[string][]time.Time // per delivery id
	badSigs  int
}

func newReceiver(t *testing.T, answers ...func(w http.ResponseWriter)) *receiver {
	rc := &receiver{t: t, answers: answers, attempts: map[string][]time.Time{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func status(code int) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { w.WriteHeader(code) }
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, 0); err != nil {
		rc.badSigs++
		rc.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var ev webhook.Event
	if err := json.Unmarshal(body, &ev); err != nil || r.Header.Get(webhook.DeliveryHeader) != ev.ID ||
		r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost {
		rc.t.Errorf("bad delivery: %s %s %q (%v)", r.Method, r.Header, body, err)
	}
	rc.attempts[ev.ID] = append(rc.attempts[ev.ID], time.Now())
	answer := status(http.StatusOK)
	if len(rc.answers) > 0 {
		answer, rc.answers = rc.answers[0], rc.answers[1:]
	}
	rec := httptest.NewRecorder()
	answer(rec)
	if rec.Code < 300 {
		rc.got = append(rc.got, ev)
	}
	rc.mu.Unlock()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
}

func (rc *receiver) events() []webhook.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]webhook.Event(nil), rc.got...)
}

var _ webhook.Source = (*middleware.Personalizer)(nil)

// source stands for a Personalizer: it keeps the Observers registered with
// it, and report sends them a change as a Personalizer would.
type source struct {
	mu        sync.Mutex
	observers []middleware.Observer
}

func (s *source) Observe(o middleware.Observer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observers = append(s.observers, o)
}

func (s *source) report(c middleware.SegmentChange) {
	s.mu.Lock()
	obs := s.observers
	s.mu.Unlock()
	for _, o := range obs {
		if o.SegmentChange != nil {
			o.SegmentChange(c)
		}
	}
}

// dispatcher is a Dispatcher with the source it observes.
type dispatcher struct {
	*webhook.Dispatcher
	*source
}

func newDispatcher(t *testing.T, url string, mod func(*webhook.Config)) dispatcher {
	t.Helper()
	src := new(source)
	cfg := webhook.Config{Personalizer: src, URL: url, Secret: secret, BackoffBase: time.Millisecond, BackoffMax: 20 * time.Millisecond, Logger: quiet}
	if mod != nil {
		mod(&cfg)
	}
	d, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(src.observers) != 1 {
		t.Fatalf("New registered %d observers, want 1", len(src.observers))
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	return dispatcher{d, src}
}

func change(visitor string, entered, exited []string) middleware.SegmentChange {
	return middleware.SegmentChange{VisitorID: visitor, UserID: "u-" + visitor, Entered: entered, Exited: exited,
		Time: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
}

func closeNow(t *testing.T, d dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	src := new(source)
	for _, tc := range []struct {
		cfg  webhook.Config
		want []string
	}{
		{webhook.Config{}, []string{"Config.Personalizer: required", "Config.URL: required", "Config.Secret: required"}},
		{webhook.Config{Personalizer: src, URL: "ftp://x", Secret: "k"}, []string{"Config.URL", "not an absolute http"}},
		{webhook.Config{Personalizer: src, URL: "/hooks", Secret: "k"}, []string{"Config.URL"}},
		{webhook.Config{Personalizer: src, URL: "http://x", Secret: "k", QueueSize: -1, BackoffMax: -1}, []string{"Config.QueueSize", "Config.BackoffMax"}},
	} {
		_, err := webhook.New(tc.cfg)
		if err == nil {
			t.Errorf("New(%+v): no error", tc.cfg)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("New(%+v): %v, want it to mention %q", tc.cfg, err, w)
			}
		}
	}
	if len(src.observers) != 0 {
		t.Errorf("invalid configs registered %d observers", len(src.observers))
	}
}

// TestDeliver: every entry and exit is one signed delivery with the
// change's fields and a unique id.
func TestDeliver(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	d := newDispatcher(t, rc.srv.URL, nil)
	d.report(change("v1", []string{"customer", "returning"}, []string{"new"}))
	closeNow(t, d)

	got := rc.events()
	if len(got) != 3 {
		t.Fatalf("got %d deliveries, want 3: %+v", len(got), got)
	}
	types := map[string]string{}
	ids := map[string]bool{}
	for _, ev := range got {
		types[ev.Segment] = ev.Type
		ids[ev.ID] = true
		if ev.VisitorID != "v1" || ev.UserID != "u-v1" || !ev.Time.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)) || len(ev.ID) != 32 {
			t.Errorf("delivery %+v", ev)
		}
	}
	if types["customer"] != webhook.TypeEntered || types["returning"] != webhook.TypeEntered || types["new"] != webhook.TypeExited {
		t.Errorf("types %v", types)
	}
	if len(ids) != 3 {
		t.Errorf("ids not unique: %v", ids)
	}
	st := d.Stats()
	if st.Enqueued != 3 || st.Delivered != 3 || st.Attempts != 3 || st.Queued != 0 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
	log := d.Log()
	if len(log) != 3 {
		t.Fatalf("log %+v", log)
	}
	for _, e := range log {
		if e.Status != webhook.StatusDelivered || e.Attempts != 1 || e.Code != 200 || e.Err != "" {
			t.Errorf("log entry %+v", e)
		}
	}
	if d.Target() != rc.srv.URL {
		t.Errorf("Target %q, want %q", d.Target(), rc.srv.URL)
	}
}

// TestRetries: 5xx and 429 are retried with the same id until a 2xx;
// Retry-After is honoured.
func TestRetries(t *testing.T) {
	t.Parallel()
	retryAfter := func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	}
	rc := newReceiver(t, status(500), status(503), retryAfter)
	d := newDispatcher(t, rc.srv.URL, func(c *webhook.Config) {
		c.Workers = 1
		c.BackoffMax = 2 * time.Second
		c.BackoffBase = 5 * time.Millisecond
	})
	d.report(change("v1", []string{"customer"}, nil))
	closeNow(t, d)

	got := rc.events()
	if len(got) != 1 {
		t.Fatalf("got %+v", got)
	}
	times := rc.attempts[got[0].ID]
	if len(times) != 4 {
		t.Fatalf("%d attempts, want 4", len(times))
	}
	// Backoff: at least half of 5ms, then of 10ms; Retry-After: 1s.
	if d := times[1].Sub(times[0]); d < 2500*time.Microsecond {
		t.Errorf("first retry after %v", d)
	}
	if d := times[2].Sub(times[1]); d < 5*time.Millisecond {
		t.Errorf("second retry after %v", d)
	}
	if d := times[3].Sub(times[2]); d < 900*time.Millisecond {
		t.Errorf("Retry-After: 1 not honoured: third retry after %v", d)
	}
	log := d.Log()
	if len(log) != 1 || log[0].Status != webhook.StatusDelivered || log[0].Attempts != 4 {
		t.Errorf("log %+v", log)
	}
	if st := d.Stats(); st.Attempts != 4 || st.Delivered != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestNoRetryOn4xx: a 4xx other than 429 is final.
func TestNoRetryOn4xx(t *testing.T) {
	t.Parallel()
	for _, code := range []int{400, 404, 410, 302} {
		rc := newReceiver(t, status(code))
		d := newDispatcher(t, rc.srv.URL, nil)
		d.report(change("v1", []string{"customer"}, nil))
		closeNow(t, d)
		log := d.Log()
		if len(log) != 1 || log[0].Status != webhook.StatusFailed || log[0].Attempts != 1 || log[0].Code != code ||
			!strings.Contains(log[0].Err, "HTTP ") {
			t.Errorf("%d: log %+v", code, log)
		}
		if st := d.Stats(); st.Failed != 1 || st.Attempts != 1 {
			t.Errorf("%d: stats %+v", code, st)
		}
	}
}

// TestGiveUp: after MaxAttempts failures the delivery fails.
func TestGiveUp(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	d := newDispatcher(t, srv.URL, func(c *webhook.Config) { c.MaxAttempts = 3 })
	d.report(change("v1", nil, []string{"customer"}))
	closeNow(t, d)
	if n.Load() != 3 {
		t.Errorf("%d attempts, want 3", n.Load())
	}
	log := d.Log()
	if len(log) != 1 || log[0].Status != webhook.StatusFailed || log[0].Attempts != 3 || log[0].Code != 502 ||
		log[0].Err != "gave up after 3 attempts: HTTP 502" {
		t.Errorf("log %+v", log)
	}
}

// TestNetworkErrorsRetried: a refused connection is retried, and the error
// in the log does not repeat the URL.
func TestNetworkErrorsRetried(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/hook?token=sekrit"
	ln.Close()
	d := newDispatcher(t, url, func(c *webhook.Config) { c.MaxAttempts = 2 })
	d.report(change("v1", []string{"customer"}, nil))
	closeNow(t, d)
	log := d.Log()
	if len(log) != 1 || log[0].Status != webhook.StatusFailed || log[0].Attempts != 2 || log[0].Code != 0 {
		t.Fatalf("log %+v", log)
	}
	if !strings.Contains(log[0].Err, "gave up after 2 attempts") || strings.Contains(log[0].Err, "sekrit") {
		t.Errorf("error %q", log[0].Err)
	}
	if strings.Contains(d.Target(), "sekrit") || strings.Contains(d.Target(), "/hook") {
		t.Errorf("Target %q shows the path", d.Target())
	}
}

// TestTimeout: a receiver that does not answer within Timeout is retried.
func TestTimeout(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // so that the server notices the client leaving
		if n.Add(1) == 1 {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
	}))
	defer srv.Close()
	// Long enough that the answered retry is never cut short, even on a
	// busy machine.
	d := newDispatcher(t, srv.URL, func(c *webhook.Config) { c.Timeout = 500 * time.Millisecond })
	d.report(change("v1", []string{"customer"}, nil))
	closeNow(t, d)
	if log := d.Log(); len(log) != 1 || log[0].Status != webhook.StatusDelivered || log[0].Attempts != 2 {
		t.Errorf("log %+v", log)
	}
}

// TestQueueBound: with the worker stuck, the queue keeps the newest
// QueueSize deliveries and drops the oldest, counted and logged.
func TestQueueBound(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan string, 1)
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev webhook.Event
		json.NewDecoder(r.Body).Decode(&ev)
		select {
		case started <- ev.Segment:
		default:
		}
		<-release
		mu.Lock()
		got = append(got, ev.Segment)
		mu.Unlock()
	}))
	defer srv.Close()
	d := newDispatcher(t, srv.URL, func(c *webhook.Config) { c.Workers = 1; c.QueueSize = 3 })
	d.report(change("v", []string{"s0"}, nil))
	if s := <-started; s != "s0" {
		t.Fatalf("first delivery %q", s)
	}
	// s0 is in flight and not counted; s1..s5 arrive at a queue of 3.
	for _, s := range []string{"s1", "s2", "s3", "s4", "s5"} {
		d.report(change("v", []string{s}, nil))
	}
	st := d.Stats()
	if st.Queued != 3 || st.Dropped != 2 || st.InFlight != 1 || st.Enqueued != 6 {
		t.Errorf("stats %+v", st)
	}
	close(release)
	closeNow(t, d)
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, ",") != "s0,s3,s4,s5" {
		t.Errorf("delivered %v, want s0,s3,s4,s5", got)
	}
	dropped := map[string]bool{}
	for _, e := range d.Log() {
		if e.Status == webhook.StatusDropped {
			dropped[e.Event.Segment] = true
			if e.Attempts != 0 || !strings.Contains(e.Err, "queue full") {
				t.Errorf("dropped entry %+v", e)
			}
		}
	}
	if len(dropped) != 2 || !dropped["s1"] || !dropped["s2"] {
		t.Errorf("dropped %v, want s1 and s2", dropped)
	}
}

// TestQueueBoundRetries: a delivery waiting for a retry is older than the
// changes queued after it, and goes first when the queue is full; an
// attempt in flight is not in the queue.
func TestQueueBoundRetries(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev webhook.Event
		json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		got = append(got, ev.Segment)
		mu.Unlock()
		if ev.Segment == "old" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		<-release
	}))
	defer srv.Close()
	d := newDispatcher(t, srv.URL, func(c *webhook.Config) {
		c.Workers, c.QueueSize = 1, 2
		c.BackoffBase, c.BackoffMax = time.Hour, time.Hour
	})
	waitFor := func(what string, ok func(webhook.Stats) bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(d.Stats()); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: stats %+v", what, d.Stats())
			}
		}
	}
	d.report(change("v", []string{"old"}, nil))
	waitFor("old attempted", func(s webhook.Stats) bool { return s.Attempts == 1 && s.InFlight == 0 })
	// "old" waits an hour for its retry; "a" is in flight; "b" fills the
	// queue; "c" drops "old".
	d.report(change("v", []string{"a"}, nil))
	waitFor("a in flight", func(s webhook.Stats) bool { return s.InFlight == 1 })
	d.report(change("v", []string{"b"}, nil))
	d.report(change("v", []string{"c"}, nil))
	if st := d.Stats(); st.Dropped != 1 || st.Queued != 2 {
		t.Errorf("stats %+v", st)
	}
	for _, e := range d.Log() {
		if e.Event.Segment == "old" && (e.Status != webhook.StatusDropped || e.Attempts != 1) {
			t.Errorf("the oldest delivery, waiting for a retry, was not the one dropped: %+v", e)
		}
	}
	close(release)
	closeNow(t, d)
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, ",") != "old,a,b,c" {
		t.Errorf("attempts %v, want old, a, b, c", got)
	}
}

// TestReportNeverBlocks: a stuck receiver does not slow down the
// Personalizer that reports changes.
func TestReportNeverBlocks(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	d := newDispatcher(t, srv.URL, func(c *webhook.Config) { c.QueueSize = 100 })
	// Reporting returns with the receiver stuck: the loop ends at all
	// (a report that waited for the receiver would hang it until the
	// watchdog), and the queue drops what it cannot hold.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10_000 {
			d.report(change("v", []string{"a"}, []string{"b"}))
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("10,000 reports did not return in a minute with the receiver stuck: report blocks")
	}
	if st := d.Stats(); st.Queued != 100 || st.Dropped < 19_000 {
		t.Errorf("stats %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := d.Close(ctx); err == nil {
		t.Error("Close with a stuck receiver: no error")
	}
}

// TestCloseAbandons: Close gives up at its context's end and says so.
func TestCloseAbandons(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	d := newDispatcher(t, srv.URL, func(c *webhook.Config) { c.BackoffBase = time.Hour; c.BackoffMax = time.Hour })
	d.report(change("v", []string{"a", "b"}, nil))
	for d.Stats().Attempts < 2 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := d.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "2 deliveries abandoned") {
		t.Fatalf("Close: %v", err)
	}
	for _, e := range d.Log() {
		if e.Status != webhook.StatusAbandoned || e.Attempts != 1 || e.Code != 503 {
			t.Errorf("log entry %+v", e)
		}
	}
	if st := d.Stats(); st.Abandoned != 2 || st.Queued != 0 {
		t.Errorf("stats %+v", st)
	}
	// Changes after Close are dropped.
	d.report(change("v", []string{"c"}, nil))
	if st := d.Stats(); st.Dropped != 1 {
		t.Errorf("after Close: stats %+v", st)
	}
}

// TestLogBound: the log keeps the last LogSize deliveries, newest first.
func TestLogBound(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	d := newDispatcher(t, rc.srv.URL, func(c *webhook.Config) { c.LogSize = 3; c.Workers = 1 })
	for i := range 5 {
		d.report(change("v", []string{string(rune('a' + i))}, nil))
		for d.Stats().Delivered < uint64(i+1) {
			time.Sleep(time.Millisecond)
		}
	}
	closeNow(t, d)
	var segs []string
	for _, e := range d.Log() {
		segs = append(segs, e.Event.Segment)
	}
	if strings.Join(segs, "") != "edc" {
		t.Errorf("log %v, want e d c", segs)
	}
}
