package middleware_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/collect"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

var storeLimits = store.Limits{}

const browserUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"

var testKeys = middleware.KeyPair{
	Hash:  []byte("0123456789abcdef0123456789abcdef"),
	Block: []byte("fedcba9876543210fedcba9876543210"),
}

func heroEngine(t testing.TB) *rules.Engine {
	e, err := rules.NewEngine(
		rules.Segment{Name: "customer", Priority: 30, Rule: rules.Purchased(1)},
		rules.Segment{Name: "red-sox-fan", Priority: 20, Rule: rules.CategoryViews("red-sox", 2)},
		rules.Segment{Name: "returning", Priority: 10, Rule: rules.Visits(2)},
	)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// newP returns a Personalizer on st (a memory store if nil), closed at the
// end of the test.
func newP(t testing.TB, st store.Store, mod func(*middleware.Config)) *middleware.Personalizer {
	t.Helper()
	if st == nil {
		st = memory.New(store.Limits{})
	}
	cfg := middleware.Config{Keys: []middleware.KeyPair{testKeys}, Store: st, Engine: heroEngine(t)}
	if mod != nil {
		mod(&cfg)
	}
	p, err := middleware.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Bounded: a test that failed with its store still down must
		// report its failure, not hang in Close.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Logf("Close: %v", err)
		}
	})
	return p
}

// echo answers with the visitor's id and segments.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	v := middleware.FromContext(r.Context())
	if cat := r.URL.Query().Get("cat"); cat != "" {
		v.Describe(cat, "")
	}
	io.WriteString(w, v.ID())
	for _, s := range v.Segments() {
		io.WriteString(w, " "+s)
	}
})

// client is a browser: a cookie jar and a browser User-Agent.
type client struct {
	t    testing.TB
	base string
	c    *http.Client
}

func newClient(t testing.TB, srv *httptest.Server) *client {
	jar, _ := cookiejar.New(nil)
	c := *srv.Client() // a copy: srv.Client returns the same client every time
	c.Jar = jar
	return &client{t: t, base: srv.URL, c: &c}
}

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.base+path, nil)
	req.Header.Set("User-Agent", browserUA)
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// clock is a settable time source, safe for concurrent use (the
// Personalizer's background jobs read it too).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// AddDate moves the clock by years, months and days.
func (c *clock) AddDate(y, m, d int) {
	c.mu.Lock()
	c.t = c.t.AddDate(y, m, d)
	c.mu.Unlock()
}

// withCollector returns site with p's collection endpoint mounted beside
// it at /_tailor/.
func withCollector(t testing.TB, p *middleware.Personalizer, cfg collect.Config, site http.Handler) http.Handler {
	t.Helper()
	c, err := collect.New(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/_tailor/", c)
	mux.Handle("/", site)
	return mux
}

const writeKey = "wk_test_0123456789"

// basic returns an Authorization header of HTTP Basic with key as user.
func basic(key string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(key, "")
	return r.Header.Get("Authorization")
}
