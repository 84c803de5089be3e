package integration_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

const ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"

var keys = []middleware.KeyPair{{
	Hash:  []byte("0123456789abcdef0123456789abcdef"),
	Block: []byte("fedcba9876543210fedcba9876543210"),
}}

func engine(t testing.TB) *rules.Engine {
	e, err := rules.NewEngine(
		rules.Segment{Name: "customer", Priority: 2, Rule: rules.Purchased(1)},
		rules.Segment{Name: "returning", Priority: 1, Rule: rules.Visits(2)},
	)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// instance is one app instance: a Personalizer in front of a handler that
// answers with the visitor's segments, and buys on /buy.
type instance struct {
	p *middleware.Personalizer
	h http.Handler
}

func newInstance(t testing.TB, st store.Store, mod func(*middleware.Config)) *instance {
	cfg := middleware.Config{Keys: keys, Store: st, Engine: engine(t), WriteBehind: middleware.WriteBehindConfig{FlushInterval: 50 * time.Millisecond}}
	if mod != nil {
		mod(&cfg)
	}
	p, err := middleware.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		if r.URL.Path == "/buy" {
			v.Purchase(store.Item{ID: "moneyball", Category: "books", Price: 17})
		}
		io.WriteString(w, strings.Join(append([]string{v.ID()}, v.Segments()...), " "))
	}))
	return &instance{p: p, h: h}
}

func (in *instance) get(t testing.TB, path string, ck *http.Cookie) (*httptest.ResponseRecorder, []string) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("User-Agent", ua)
	if ck != nil {
		req.AddCookie(ck)
	}
	in.h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("GET %s: status %d", path, rec.Code)
	}
	return rec, strings.Fields(rec.Body.String())
}

// visitor makes a returning visitor through a and b: the first request on
// a, the return on b. Two page views are recorded.
func visitor(t testing.TB, a, b *instance) (id string, ck *http.Cookie) {
	rec, f := a.get(t, "/", nil)
	id, ck = f[0], rec.Result().Cookies()[0]
	rec, _ = b.get(t, "/", ck)
	return id, rec.Result().Cookies()[0]
}

// twoInstances: 8 goroutines per instance, 5,000 page views each, spread
// over 100 visitors, requests alternating between the instances; after
// Close the shared store holds every count exactly.
func twoInstances(t *testing.T, newStore func(t *testing.T) store.Store) {
	st1, st2 := newStore(t), newStore(t)
	a, b := newInstance(t, st1, nil), newInstance(t, st2, nil)
	const visitors, goroutines, views = 100, 8, 5000
	ids := make([]string, visitors)
	cookies := make([]*http.Cookie, visitors)
	for i := range ids {
		ids[i], cookies[i] = visitor(t, a, b)
	}
	counts := make([][visitors]int, 2*goroutines)
	var wg sync.WaitGroup
	for g := range 2 * goroutines {
		wg.Go(func() {
			for n := range views {
				v := (g*views + n) % visitors
				in := a
				if (g+n)%2 == 1 {
					in = b
				}
				if _, f := in.get(t, fmt.Sprintf("/p/%d", n%7), cookies[v]); len(f) == 0 || f[0] != ids[v] {
					t.Errorf("visitor %d recognised as %v", v, f)
					return
				}
				counts[g][v]++
			}
		})
	}
	wg.Wait()
	ctx := ctxTimeout(t, time.Minute)
	if err := a.p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for v, id := range ids {
		want := 2 // the first page view (from the cookie) and the return
		for g := range counts {
			want += counts[g][v]
		}
		prof, err := st1.Load(ctx, id)
		if err != nil {
			t.Fatalf("visitor %d: %v", v, err)
		}
		if got := prof.Counts["page"]; got != want {
			t.Errorf("visitor %d: %d page views stored, want %d", v, got, want)
		}
	}
}

// awaitAnnouncements waits until b hears the store's announcements of a's
// writes (a Personalizer subscribes in the background when it starts),
// with a visitor of its own who buys through a until b sees it.
func awaitAnnouncements(t *testing.T, a, b *instance) {
	t.Helper()
	_, ck := visitor(t, a, b)
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		a.get(t, "/buy", ck)
		if _, f := b.get(t, "/", ck); strings.Contains(strings.Join(f, " "), "customer") {
			return
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("instance b never heard of a purchase through instance a")
		}
	}
}

// freshness: a purchase through instance a puts the visitor in the
// customer segment on instance b within one second.
func freshness(t *testing.T, newStore func(t *testing.T) store.Store) {
	a, b := newInstance(t, newStore(t), nil), newInstance(t, newStore(t), nil)
	defer a.p.Close(context.Background())
	defer b.p.Close(context.Background())
	awaitAnnouncements(t, a, b)
	_, ck := visitor(t, a, b)
	// b has the visitor cached, not a customer.
	if _, f := b.get(t, "/", ck); strings.Contains(strings.Join(f, " "), "customer") {
		t.Fatalf("customer before buying: %v", f)
	}
	a.get(t, "/buy", ck)
	bought := time.Now()
	for {
		_, f := b.get(t, "/", ck)
		if strings.Contains(strings.Join(f, " "), "customer") {
			t.Logf("instance b saw the purchase after %v", time.Since(bought))
			return
		}
		if time.Since(bought) > time.Second {
			t.Fatalf("instance b does not see the purchase on instance a after 1s: %v", f)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// forgetAcross: Forget on instance a erases the visitor on instance b too,
// through the store's deletion announcement: b's pending events are
// dropped instead of re-creating the profile, and b deletes the cookie.
func forgetAcross(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)
	a := newInstance(t, st, nil)
	// b writes only when told to: its events stay pending.
	b := newInstance(t, newStore(t), func(c *middleware.Config) { c.WriteBehind.FlushInterval = time.Hour })
	defer a.p.Close(context.Background())
	defer b.p.Close(context.Background())
	awaitAnnouncements(t, a, b)
	if err := b.p.Flush(context.Background()); err != nil { // only the visitor below is pending
		t.Fatal(err)
	}
	id, ck := visitor(t, a, b)
	b.get(t, "/more", ck)
	if b.p.Stats().Pending == 0 {
		t.Fatal("setup: nothing pending on b")
	}
	ctx := ctxTimeout(t, 30*time.Second)
	if err := a.p.Forget(ctx, id); err != nil {
		t.Fatal(err)
	}
	forgot := time.Now()
	for {
		rec, _ := b.get(t, "/", ck)
		if cs := rec.Result().Cookies(); len(cs) == 1 && cs[0].MaxAge < 0 {
			t.Logf("instance b erased the visitor %v after Forget on a", time.Since(forgot))
			break
		}
		if time.Since(forgot) > 5*time.Second {
			t.Fatal("instance b still serves the erased visitor 5s after Forget on a")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := b.p.Stats().Pending; n != 0 {
		t.Errorf("%d events still pending on b", n)
	}
	if err := b.p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Load(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the erased visitor is back in the store: %v", err)
	}
}

// outage runs traffic against a Personalizer on st while down makes the
// store unreachable for 1.5 s and up brings it back: every request is
// served, and after Close every event is stored.
func outage(t *testing.T, st store.Store, down, up func()) {
	in := newInstance(t, st, func(c *middleware.Config) {
		c.StoreTimeout = 500 * time.Millisecond
		c.WriteBehind.MaxPending = 1_000_000
		c.Logger = quietLogger()
	})
	const visitors = 20
	ids := make([]string, visitors)
	cookies := make([]*http.Cookie, visitors)
	for i := range ids {
		ids[i], cookies[i] = visitor(t, in, in)
	}
	var sent [visitors]atomic.Int64
	var slowest atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for n := 0; n < 100_000; n++ { // bounded; stopped by the test long before
				select {
				case <-stop:
					return
				default:
				}
				v := (g + n*4) % visitors
				start := time.Now()
				rec, _ := in.get(t, "/", cookies[v])
				if d := int64(time.Since(start)); d > slowest.Load() {
					slowest.Store(d)
				}
				if rec.Code != 200 {
					return
				}
				sent[v].Add(1)
				time.Sleep(time.Millisecond)
			}
		})
	}
	time.Sleep(700 * time.Millisecond)
	down()
	went := time.Now()
	time.Sleep(1500 * time.Millisecond)
	up()
	time.Sleep(700 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("store down for %v; slowest request %v; stats %+v", time.Since(went).Round(time.Millisecond), time.Duration(slowest.Load()), in.p.Stats())
	if err := in.p.Close(ctxTimeout(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if in.p.Stats().FlushErrors == 0 {
		t.Fatal("no flush failed: the outage did not happen")
	}
	if d := time.Duration(slowest.Load()); d > 2*time.Second {
		t.Errorf("a request took %v during the outage", d)
	}
	for v, id := range ids {
		prof, err := st.Load(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if want := int(sent[v].Load()) + 2; prof.Counts["page"] != want {
			t.Errorf("visitor %d: %d page views stored, want %d", v, prof.Counts["page"], want)
		}
	}
}
