package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/bolt"
	"github.com/tailorhq/tailor/store/memory"
)

func serve(h http.Handler, method, path, ua string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, nil)
	if ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	h.ServeHTTP(rec, req)
	return rec
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, nil)
	for _, tc := range []struct {
		name         string
		cc, vary     string
		wantCC       string
		wantVary     []string
		writeNothing bool
	}{
		{name: "none", wantCC: "private", wantVary: []string{"Cookie"}},
		{name: "nothing written", writeNothing: true, wantCC: "private", wantVary: []string{"Cookie"}},
		{name: "no-store kept", cc: "no-store", wantCC: "no-store", wantVary: []string{"Cookie"}},
		{name: "private kept", cc: "private, max-age=60", wantCC: "private, max-age=60", wantVary: []string{"Cookie"}},
		{name: "public made private", cc: "public, max-age=600, s-maxage=3600", wantCC: "private, max-age=600", wantVary: []string{"Cookie"}},
		{name: "max-age made private", cc: "max-age=60", wantCC: "private, max-age=60", wantVary: []string{"Cookie"}},
		{name: "vary appended", vary: "Accept-Encoding", wantCC: "private", wantVary: []string{"Accept-Encoding", "Cookie"}},
		{name: "vary cookie kept", vary: "Accept, cookie", wantCC: "private", wantVary: []string{"Accept, cookie"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.cc != "" {
					w.Header().Set("Cache-Control", tc.cc)
				}
				if tc.vary != "" {
					w.Header().Set("Vary", tc.vary)
				}
				if !tc.writeNothing {
					io.WriteString(w, "hello")
				}
			}))
			for _, ua := range []string{browserUA, "Googlebot/2.1"} {
				rec := serve(h, "GET", "/", ua)
				if got := rec.Header().Get("Cache-Control"); got != tc.wantCC {
					t.Errorf("%s: Cache-Control %q, want %q", ua, got, tc.wantCC)
				}
				if got := rec.Header().Values("Vary"); fmt.Sprint(got) != fmt.Sprint(tc.wantVary) {
					t.Errorf("%s: Vary %q, want %q", ua, got, tc.wantVary)
				}
			}
		})
	}
}

func TestCookieBeforeFirstByteAndResponseController(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, nil)
	flushed := make(chan struct{})
	srv := httptest.NewServer(p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "first")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("ResponseController.Flush: %v", err)
		}
		<-flushed
		io.WriteString(w, " second")
	})))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("User-Agent", browserUA)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The headers arrived before the handler finished: the cookie was set
	// before the first byte, and Flush reached the connection.
	if resp.StatusCode != http.StatusAccepted || len(resp.Cookies()) != 1 || resp.Header.Get("Cache-Control") != "private" {
		t.Errorf("status %d, cookies %v, Cache-Control %q", resp.StatusCode, resp.Cookies(), resp.Header.Get("Cache-Control"))
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Errorf("streamed %q, %v", buf, err)
	}
	close(flushed)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != " second" {
		t.Errorf("rest %q", rest)
	}

	// Hijack goes through Unwrap too.
	hj := httptest.NewServer(p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, bufrw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		bufrw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nhijack!")
		bufrw.Flush()
	})))
	defer hj.Close()
	req, _ = http.NewRequest("GET", hj.URL, nil)
	req.Header.Set("User-Agent", browserUA)
	resp2, err := hj.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if string(b) != "hijack!" {
		t.Errorf("hijacked response %q", b)
	}
}

// TestNothingLost: 1,000 visitors × 10 page views from 8 goroutines; after
// Close and a reopen of the bolt file every count is exact.
func TestNothingLost(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tailor.db")
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := middleware.New(middleware.Config{Keys: []middleware.KeyPair{testKeys}, Store: st,
		WriteBehind: middleware.WriteBehindConfig{FlushInterval: 20 * time.Millisecond}, Cache: middleware.CacheConfig{Bytes: 1 << 20}}) // a small cache: evictions happen
	if err != nil {
		t.Fatal(err)
	}
	h := p.Handler(echo)
	const visitors, views, workers = 1000, 10, 8
	ids := make([]string, visitors)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := w; v < visitors; v += workers {
				var ck *http.Cookie
				for i := range views {
					var rec *httptest.ResponseRecorder
					if ck == nil {
						rec = serve(h, "GET", fmt.Sprintf("/p/%d", i), browserUA)
						ck = rec.Result().Cookies()[0]
						ids[v] = strings.Fields(rec.Body.String())[0]
					} else {
						rec = serve(h, "GET", fmt.Sprintf("/p/%d", i), browserUA, ck)
					}
					if rec.Code != 200 {
						t.Errorf("status %d", rec.Code)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := p.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st2, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	p2 := newP(t, st2, nil)
	for v, id := range ids {
		prof, err := st2.Load(context.Background(), id)
		if err != nil {
			t.Fatalf("visitor %d: %v", v, err)
		}
		if prof.Counts["page"] != views || len(prof.Pages) != views || prof.Pages["/p/3"] != 1 {
			t.Fatalf("visitor %d: counts %v pages %v, want %d views of %d pages", v, prof.Counts, prof.Pages, views, views)
		}
	}
	// The reopened store serves the same visitors.
	_ = p2
}

func TestBotsAndOneHitsLeaveNothing(t *testing.T) {
	t.Parallel()
	st := memory.New(storeLimits)
	p := newP(t, st, func(c *middleware.Config) { c.WriteBehind.FlushInterval = 10 * time.Millisecond })
	h := p.Handler(echo)
	for i := range 50 {
		for _, ua := range []string{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "curl/8.5.0", "", "python-requests/2.31"} {
			rec := serve(h, "GET", fmt.Sprintf("/x/%d", i), ua)
			if rec.Code != 200 || len(rec.Result().Cookies()) != 0 {
				t.Fatalf("bot %q: status %d cookies %v", ua, rec.Code, rec.Result().Cookies())
			}
		}
		serve(h, "GET", "/", browserUA) // a one-hit client: cookie given, never sent back
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := 0
	st.Range(context.Background(), func(*store.Profile) bool { n++; return true })
	if n != 0 {
		t.Fatalf("bots and one-hit clients left %d profiles in the store", n)
	}
	if s := p.Stats(); s.Bots != 200 || s.NewVisitors != 50 || s.Returned != 0 || s.Events != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestSegmentsOnNextRequest(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC))
	p := newP(t, nil, func(c *middleware.Config) { c.Now = clk.Now })
	srv := httptest.NewServer(p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		if r.URL.Path == "/buy" {
			v.Purchase(store.Item{ID: "moneyball", Category: "books", Price: 15})
		}
		echo(w, r)
	})))
	defer srv.Close()
	c := newClient(t, srv)
	segs := func(path string) string {
		_, body := c.get(path)
		f := strings.Fields(body)
		return strings.Join(f[1:], " ")
	}
	steps := []struct {
		path, want string
		advance    time.Duration
	}{
		{"/", "", 0},
		{"/products/red-sox-banner?cat=red-sox", "", time.Minute},
		{"/products/red-sox-potato-head?cat=red-sox", "", time.Minute},
		{"/", "red-sox-fan", time.Minute}, // two red-sox views so far: on the very next request
		{"/", "red-sox-fan", 29 * time.Minute},
		{"/", "red-sox-fan returning", 31 * time.Minute}, // a second visit begins
		{"/buy", "red-sox-fan returning", time.Minute},
		{"/", "customer red-sox-fan returning", time.Minute},
	}
	for i, s := range steps {
		clk.Add(s.advance)
		if got := segs(s.path); got != s.want {
			t.Fatalf("step %d %s: segments %q, want %q", i, s.path, got, s.want)
		}
	}
}

func TestFromContextWithoutVisitor(t *testing.T) {
	t.Parallel()
	v := middleware.FromContext(context.Background())
	if v != nil || v.In("x") || v.ID() != "" || v.Segments() != nil || v.Profile() != nil || v.Track("x", nil) != nil {
		t.Fatal("nil visitor is not safe")
	}
}

func TestOnSegmentChange(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var changes []middleware.SegmentChange
	p := newP(t, nil, nil)
	p.Observe(middleware.Observer{SegmentChange: func(ch middleware.SegmentChange) { mu.Lock(); changes = append(changes, ch); mu.Unlock() }})
	srv := httptest.NewServer(p.Handler(echo))
	defer srv.Close()
	c := newClient(t, srv)
	c.get("/?cat=red-sox")
	c.get("/?cat=red-sox") // the return: baseline, no change
	c.get("/")             // two red-sox views: entered red-sox-fan
	c.get("/")
	// A change is reported once the store has the write that made it.
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 1 || fmt.Sprint(changes[0].Entered) != "[red-sox-fan]" || changes[0].Exited != nil || len(changes[0].VisitorID) != 32 {
		t.Fatalf("changes %+v", changes)
	}
	prof, err := p.Profile(context.Background(), changes[0].VisitorID)
	if err != nil || prof.Categories["red-sox"] != 2 {
		t.Fatalf("Profile: %v %v", prof, err)
	}
	if _, err := p.Profile(context.Background(), "0123456789abcdef0123456789abcdef"); err != store.ErrNotFound {
		t.Fatalf("Profile of a stranger: %v", err)
	}
}

// TestObserversMayCallThePersonalizer: observers are called with no lock
// held, so one may read the visitor it hears of.
func TestObserversMayCallThePersonalizer(t *testing.T) {
	t.Parallel()
	// Not newP: after a deadlock, closing would wait for ever.
	p, err := middleware.New(middleware.Config{Keys: []middleware.KeyPair{testKeys}, Store: memory.New(storeLimits), Engine: heroEngine(t)})
	if err != nil {
		t.Fatal(err)
	}
	var id atomic.Pointer[string]
	var read atomic.Int32
	p.Observe(middleware.Observer{Classified: func(time.Duration) {
		if s := id.Load(); s != nil {
			p.Profile(context.Background(), *s)
			read.Add(1)
		}
	}})
	srv := httptest.NewServer(p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := middleware.FromContext(r.Context()).ID()
		id.Store(&s)
	})))
	c := newClient(t, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 3 {
			c.get("/")
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("requests did not finish: an observer waited for a lock its caller held")
	}
	srv.Close()
	p.Close(context.Background())
	if read.Load() == 0 {
		t.Fatal("the observer never heard a classification of a known visitor")
	}
}

// TestRequestContext checks the context Handler gives the wrapped
// handler: the visitor, the parent's values, deadline and cancellation,
// also for contexts derived from it.
func TestRequestContext(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, nil)
	type key struct{}
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if v := middleware.FromContext(ctx); v == nil || v.ID() == "" {
			t.Errorf("FromContext = %v, want the tracked visitor", v)
		}
		if got := ctx.Value(key{}); got != "parent" {
			t.Errorf("the parent's value: %v", got)
		}
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the parent's deadline is lost")
		}
		child, cancel := context.WithCancel(ctx)
		defer cancel()
		if middleware.FromContext(child) != middleware.FromContext(ctx) {
			t.Error("a derived context has another visitor")
		}
		<-child.Done() // the parent is cancelled below
		if !errors.Is(child.Err(), context.Canceled) {
			t.Errorf("derived context's Err = %v", child.Err())
		}
	}))
	parent, cancel := context.WithTimeout(context.WithValue(context.Background(), key{}, "parent"), time.Minute)
	req := httptest.NewRequestWithContext(parent, "GET", "/", nil)
	req.Header.Set("User-Agent", browserUA)
	time.AfterFunc(10*time.Millisecond, cancel)
	h.ServeHTTP(httptest.NewRecorder(), req)
}

// TestHeadersAreTheResponses checks that the Cache-Control and Vary
// values Handler sets belong to the response: a handler that appends to
// them after writing changes no other response.
func TestHeadersAreTheResponses(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, nil)
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
		w.Header()["Vary"] = append(w.Header()["Vary"], "Accept")
		w.Header()["Cache-Control"][0] = "changed"
	}))
	for range 3 {
		rec := serve(h, "GET", "/", browserUA)
		if got := rec.Header().Get("Cache-Control"); got != "changed" {
			t.Errorf("Cache-Control %q", got)
		}
		if got := rec.Header().Values("Vary"); fmt.Sprint(got) != "[Cookie Accept]" {
			t.Errorf("Vary %q", got)
		}
	}
}
