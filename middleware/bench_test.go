package middleware_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/collect"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// BenchmarkHandler measures what tailor adds to a request: bare is the
// same trivial handler without tailor.
func BenchmarkHandler(b *testing.B) {
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, middleware.FromContext(r.Context()).ID())
	})
	engine, err := rules.NewEngine(
		rules.Segment{Name: "customer", Priority: 50, Rule: rules.Purchased(1)},
		rules.Segment{Name: "red-sox-fan", Priority: 40, Rule: rules.CategoryViews("red-sox", 2)},
		rules.Segment{Name: "returning", Priority: 30, Rule: rules.Visits(2)},
		rules.Segment{Name: "cart-abandoner", Priority: 20, Rule: rules.And(rules.EventCount("add_to_cart", 1), rules.Not(rules.Purchased(1)))},
		rules.Segment{Name: "reader", Priority: 10, Rule: rules.Or(rules.CategoryViews("books", 3), rules.EventCount("page", 20))},
	)
	if err != nil {
		b.Fatal(err)
	}
	st := memory.New(store.Limits{})
	// Flushing often keeps the queue short at the benchmark's request rate;
	// the flusher's work is part of what is measured.
	p, err := middleware.New(middleware.Config{Keys: []middleware.KeyPair{testKeys}, Store: st, Engine: engine,
		WriteBehind: middleware.WriteBehindConfig{FlushInterval: 100 * time.Millisecond}})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	h := p.Handler(hello)
	newReq := func() *http.Request {
		r := httptest.NewRequest("GET", "/products/moneyball?utm_source=news", nil)
		r.Header.Set("User-Agent", browserUA)
		r.Header.Set("Referer", "https://www.example.org/page")
		return r
	}
	// Returning visitors with a history that fills the ring of recent
	// events: cookie issued, came back (so persisted), profile cached. They
	// take turns, as real visitors do, rather than one visitor requesting a
	// million pages a second.
	const returning = 100
	rets := make([]*http.Request, returning)
	history := make([]store.Event, 250)
	for i := range history {
		history[i] = store.Event{ID: store.EventID("history", uint64(i+1)), Type: store.TypePage,
			Path: "/products/moneyball", Category: "books", Item: "moneyball", Time: time.Now().Add(-time.Hour)}
	}
	for i := range rets {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, newReq())
		id := strings.Fields(rec.Body.String())[0]
		back := newReq() // the return: the cookie is re-issued without the first page view
		back.AddCookie(rec.Result().Cookies()[0])
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, back)
		rets[i] = newReq()
		rets[i].AddCookie(rec.Result().Cookies()[0])
		if _, err := st.Apply(context.Background(), id, history); err != nil {
			b.Fatal(err)
		}
		for range 3 {
			h.ServeHTTP(httptest.NewRecorder(), rets[i])
		}
	}
	p.Flush(context.Background())

	run := func(name string, h http.Handler, reqs ...*http.Request) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			w := &discard{h: make(http.Header)}
			i := 0
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, reqs[i%len(reqs)])
				i++
			}
		})
	}
	run("bare", hello, newReq())
	run("new-visitor", h, newReq())
	run("returning-visitor", h, rets...)
}

// discard is a ResponseWriter that keeps nothing, so that the benchmark
// measures the handler and not a recorder. Like net/http's own, it writes
// strings without converting them (io.StringWriter).
type discard struct{ h http.Header }

func (d *discard) Header() http.Header               { return d.h }
func (d *discard) Write(b []byte) (int, error)       { return len(b), nil }
func (d *discard) WriteString(s string) (int, error) { return len(s), nil }
func (d *discard) WriteHeader(int)                   {}

// BenchmarkCollect measures the collection endpoint: a batch of 100
// Segment events (page views, product views, orders) of 100 of 1,000
// users, sent with a write key to the endpoint mounted beside Handler,
// parsed and queued. It reports events/s.
//
// batch-100 measures the request alone: the queue is written to the store
// between timed runs (BenchmarkStoreApply measures that). batch-100-flushing
// lets the flusher write to a memory store every 100 ms meanwhile, on the
// same CPUs, as in production.
func BenchmarkCollect(b *testing.B) {
	const perBatch, users, bodies = 100, 1000, 256
	batches := make([][]byte, bodies)
	for i := range batches {
		var sb strings.Builder
		sb.WriteString(`{"batch":[`)
		for j := range perBatch {
			if j > 0 {
				sb.WriteByte(',')
			}
			user := (i*perBatch + j*7) % users
			msg := fmt.Sprintf(`"userId":"user-%d@example.com","messageId":"m-%d-%d","timestamp":"2026-06-01T12:00:%02d.%03dZ"`, user, i, j, j%60, i)
			switch j % 10 {
			case 0, 1:
				fmt.Fprintf(&sb, `{"type":"page",%s,"name":"Product","properties":{"path":"/products/p%d","category":"books","title":"A book"}}`, msg, j)
			case 9:
				fmt.Fprintf(&sb, `{"type":"track",%s,"event":"Order Completed","properties":{"order_id":"o%d","revenue":25,"products":[{"product_id":"p%d","category":"books","price":12.5,"quantity":2}]}}`, msg, j, j)
			default:
				fmt.Fprintf(&sb, `{"type":"track",%s,"event":"Product Viewed","properties":{"product_id":"p%d","category":"books","price":12.5}}`, msg, j)
			}
		}
		sb.WriteString(`],"context":{"library":{"name":"analytics-node","version":"2.2"}},"sentAt":"2026-06-01T12:01:00Z"}`)
		batches[i] = []byte(sb.String())
	}
	auth := basic(writeKey)
	run := func(b *testing.B, flushing bool) {
		interval := time.Hour
		if flushing {
			interval = 100 * time.Millisecond
		}
		p, err := middleware.New(middleware.Config{Keys: []middleware.KeyPair{testKeys}, Store: memory.New(store.Limits{}),
			WriteBehind: middleware.WriteBehindConfig{FlushInterval: interval}})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close(context.Background())
		c, err := collect.New(p, collect.Config{WriteKeys: []string{writeKey}, KeyRate: -1})
		if err != nil {
			b.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("/_tailor/", c)
		mux.Handle("/", p.Handler(http.NotFoundHandler()))
		h := mux
		b.ReportAllocs()
		w := &discard{h: make(http.Header)}
		i := 0
		for b.Loop() {
			if !flushing && i%200 == 199 {
				b.StopTimer()
				p.Flush(context.Background())
				b.StartTimer()
			}
			clear(w.h)
			r := httptest.NewRequest("POST", "/_tailor/v1/batch", bytes.NewReader(batches[i%bodies]))
			r.Header.Set("Authorization", auth)
			h.ServeHTTP(w, r)
			i++
		}
		b.ReportMetric(float64(i*perBatch)/b.Elapsed().Seconds(), "events/s")
		if s := p.Stats(); s.Dropped > 0 || s.Collected != uint64(i*perBatch) {
			b.Fatalf("stats %+v", s)
		}
	}
	b.Run("batch-100", func(b *testing.B) { run(b, false) })
	b.Run("batch-100-flushing", func(b *testing.B) { run(b, true) })
}
