package middleware_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/collect"
)

// edgeSite returns a site whose home page "/" is cacheable (it echoes the
// visitor's id and segments) and whose other pages are served by Handler,
// with the collection endpoint at /_tailor/.
func edgeSite(t *testing.T, p *middleware.Personalizer, cfg middleware.EdgeConfig) (*httptest.Server, *middleware.Edge) {
	t.Helper()
	e, err := p.Edge(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := collect.New(p, collect.Config{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/_tailor/", c)
	mux.Handle("/{$}", e.Cacheable(echo))
	mux.Handle("/", p.Handler(echo))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, e
}

// keyCookie returns the value of the variant-key cookie a response sets,
// and whether it sets one.
func keyCookie(resp *http.Response, name string) (string, bool) {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c.Value, true
		}
	}
	return "", false
}

// asEdge requests path as an edge does: with the Tailor-Variant header
// the key cookie filled and without the visitor's cookies.
func asEdge(t *testing.T, base, path, key string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("User-Agent", browserUA)
	req.Header.Set(middleware.VariantHeader, key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestEdgeKeyFollowsSegments(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, nil)
	srv, e := edgeSite(t, p, middleware.EdgeConfig{Segments: []string{"red-sox-fan", "customer"}})
	if e.CookieName() != "tailor_v" {
		t.Fatalf("CookieName = %q", e.CookieName())
	}

	// Without the header (the edge let the request through with its
	// cookies): personalised, private, with both cookies.
	alice := newClient(t, srv)
	resp, body := alice.get("/")
	none, ok := keyCookie(resp, "tailor_v")
	if !ok || none == "" || !strings.Contains(resp.Header.Get("Cache-Control"), "private") {
		t.Fatalf("first request: key cookie %q %v, Cache-Control %q", none, ok, resp.Header.Get("Cache-Control"))
	}
	if _, ok := keyCookie(resp, "tailor"); !ok {
		t.Fatal("first request: no visitor cookie")
	}
	id := strings.TrimSpace(body)
	if len(id) != 32 {
		t.Fatalf("first request: body %q, want the visitor id", body)
	}

	// Another visitor in no segment gets the very same key.
	resp, _ = newClient(t, srv).get("/")
	if k, _ := keyCookie(resp, "tailor_v"); k != none {
		t.Errorf("two visitors of no segment: keys %q and %q", none, k)
	}

	// The page made for the key: public, keyed, nothing of the visitor.
	resp, body = asEdge(t, srv.URL, "/", none)
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=0, s-maxage=60" {
		t.Errorf("Cache-Control = %q", cc)
	}
	if got := resp.Header.Get(middleware.VariantHeader); got != none {
		t.Errorf("Tailor-Variant = %q, want %q", got, none)
	}
	if v := resp.Header.Values("Vary"); len(v) != 1 || v[0] != middleware.VariantHeader {
		t.Errorf("Vary = %q", v)
	}
	if len(resp.Cookies()) != 0 || body != "" {
		t.Errorf("cacheable page: cookies %v, body %q (want none, empty)", resp.Cookies(), body)
	}

	// Alice becomes a Red Sox fan on pages of Handler: the response after
	// she is classified into the segment carries the new key.
	var fan string
	for i := 0; i < 3 && fan == ""; i++ {
		resp, _ = alice.get("/team?cat=red-sox")
		if k, ok := keyCookie(resp, "tailor_v"); ok && k != none {
			fan = k
		}
	}
	if fan == "" {
		t.Fatal("no new key after two views of red-sox")
	}
	if resp, body = asEdge(t, srv.URL, "/", fan); body != " red-sox-fan" || len(resp.Cookies()) != 0 {
		t.Errorf("the fans' page: %q, cookies %v", body, resp.Cookies())
	}
	// An unchanged key is not sent again.
	if resp, _ = alice.get("/team"); len(resp.Cookies()) != 0 {
		if k, ok := keyCookie(resp, "tailor_v"); ok {
			t.Errorf("unchanged key sent again: %q", k)
		}
	}
	if p.Stats().Requests == 0 {
		t.Error("no requests counted")
	}
}

func TestEdgeRefusesForgedKeys(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, nil)
	srv, e := edgeSite(t, p, middleware.EdgeConfig{Segments: []string{"red-sox-fan", "customer"}})
	resp, _ := newClient(t, srv).get("/")
	valid, _ := keyCookie(resp, "tailor_v")

	// A key of another site (other cookie keys), or of another
	// declaration of the same site.
	other := newP(t, nil, func(c *middleware.Config) {
		c.Keys = []middleware.KeyPair{middleware.GenerateKeyPair()}
	})
	osrv, _ := edgeSite(t, other, middleware.EdgeConfig{Segments: []string{"red-sox-fan", "customer"}})
	resp, _ = newClient(t, osrv).get("/")
	foreign, _ := keyCookie(resp, "tailor_v")
	redecl := newP(t, nil, nil)
	rsrv, _ := edgeSite(t, redecl, middleware.EdgeConfig{Segments: []string{"customer", "red-sox-fan"}})
	resp, _ = newClient(t, rsrv).get("/")
	reordered, _ := keyCookie(resp, "tailor_v")

	payload, sig, _ := strings.Cut(valid, ".")
	forged := []string{
		"x", "AQ", "AQ.", "." + sig, "Aw." + sig, // all segments, with the signature of none
		payload + "." + sig[:len(sig)-1] + "A", payload + ".." + sig, strings.Repeat("A", 600),
		foreign, reordered,
	}
	if foreign == valid || reordered == valid {
		t.Fatal("keys of other sites or declarations equal this one's")
	}
	for i, k := range forged {
		resp, body := asEdge(t, srv.URL, "/", k)
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("key %q: Cache-Control %q, want no-store", k, cc)
		}
		del, ok := keyCookie(resp, "tailor_v")
		if !ok || del != "" || resp.Header.Get(middleware.VariantHeader) != "" || body != "" {
			t.Errorf("key %q: key cookie %q %v, header %q, body %q: want the deletion, no header, the page of no segment",
				k, del, ok, resp.Header.Get(middleware.VariantHeader), body)
		}
		if got := e.Refused(); got != uint64(i+1) {
			t.Errorf("key %q: Refused = %d, want %d", k, got, i+1)
		}
	}
	// An empty header (an edge that copied a missing cookie): served as
	// Handler serves it.
	if resp, _ := asEdge(t, srv.URL, "/", ""); !strings.HasPrefix(resp.Header.Get("Cache-Control"), "private") {
		t.Errorf("empty header: Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	// Two values of the header: refused too.
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.Header.Add(middleware.VariantHeader, valid)
	req.Header.Add(middleware.VariantHeader, valid)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("two headers: %v %v", err, resp.Header)
	}
}

func TestEdgeKeyAfterRotation(t *testing.T) {
	t.Parallel()
	old := middleware.GenerateKeyPair()
	before := newP(t, nil, func(c *middleware.Config) { c.Keys = []middleware.KeyPair{old} })
	bsrv, _ := edgeSite(t, before, middleware.EdgeConfig{Segments: []string{"customer"}})
	resp, _ := newClient(t, bsrv).get("/")
	oldKey, _ := keyCookie(resp, "tailor_v")

	after := newP(t, nil, func(c *middleware.Config) { c.Keys = []middleware.KeyPair{middleware.GenerateKeyPair(), old} })
	srv, e := edgeSite(t, after, middleware.EdgeConfig{Segments: []string{"customer"}})
	if resp, _ := asEdge(t, srv.URL, "/", oldKey); resp.Header.Get("Cache-Control") == "no-store" || e.Refused() != 0 {
		t.Errorf("a key under the older keys was refused: %v", resp.Header)
	}
	// The visitor's next response of the origin re-issues it under the
	// newest keys.
	c := newClient(t, srv)
	u, _ := http.NewRequest("GET", srv.URL, nil)
	c.c.Jar.SetCookies(u.URL, []*http.Cookie{{Name: "tailor_v", Value: oldKey}})
	resp, _ = c.get("/team")
	if k, ok := keyCookie(resp, "tailor_v"); !ok || k == oldKey {
		t.Errorf("key not re-issued under the newest keys: %q %v", k, ok)
	}
}

func TestEdgeDropsCookiesOfCacheablePages(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, nil)
	e, err := p.Edge(middleware.EdgeConfig{Segments: []string{"customer"}, MaxAge: 30e9, SMaxAge: 600e9})
	if err != nil {
		t.Fatal(err)
	}
	h := e.Cacheable(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "mine"})
		w.Header().Set("Vary", "Accept-Encoding")
		io.WriteString(w, "page")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil)) // personalised: its key
	key, _ := keyCookie(rec.Result(), "tailor_v")
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set(middleware.VariantHeader, key)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if c := rec.Result().Cookies(); len(c) != 0 {
		t.Errorf("cookies of a cacheable page: %v", c)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "public, max-age=30, s-maxage=600" {
		t.Errorf("Cache-Control = %q", cc)
	}
	if v := rec.Header().Values("Vary"); len(v) != 2 || v[1] != middleware.VariantHeader {
		t.Errorf("Vary = %q", v)
	}

	// Inside Handler: served as Handler serves it.
	rec = httptest.NewRecorder()
	p.Handler(h).ServeHTTP(rec, req)
	if cc := rec.Header().Get("Cache-Control"); !strings.HasPrefix(cc, "private") {
		t.Errorf("inside Handler: Cache-Control = %q", cc)
	}
}

func TestEdgeKeyFromSnippetCalls(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, nil)
	srv, _ := edgeSite(t, p, middleware.EdgeConfig{Segments: []string{"red-sox-fan"}})
	c := newClient(t, srv)
	resp, _ := c.get("/")
	none, _ := keyCookie(resp, "tailor_v")
	c.get("/") // kept from now on

	// The snippet's page views of cached pages about the Red Sox.
	page := func() *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+"/_tailor/v1/page", strings.NewReader(`{"properties":{"path":"/","category":"red-sox"}}`))
		req.Header.Set("User-Agent", browserUA)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := c.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("page call: %d", resp.StatusCode)
		}
		return resp
	}
	if _, ok := keyCookie(page(), "tailor_v"); ok {
		t.Error("key sent after one view, which changes no segment")
	}
	fan, ok := keyCookie(page(), "tailor_v")
	if !ok || fan == none {
		t.Fatalf("no new key after the second view: %q %v", fan, ok)
	}
	if _, body := asEdge(t, srv.URL, "/", fan); body != " red-sox-fan" {
		t.Errorf("page of the new key: %q", body)
	}
}

func TestEdgeConfigErrors(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, nil)
	for _, tc := range []struct {
		cfg  middleware.EdgeConfig
		want string
	}{
		{middleware.EdgeConfig{}, "name at least one"},
		{middleware.EdgeConfig{Segments: []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}}, "9 segments, at most 8"},
		{middleware.EdgeConfig{Segments: []string{"a", "a"}}, `Segments[1]: "a" is empty or named twice`},
		{middleware.EdgeConfig{Segments: []string{""}}, `Segments[0]`},
		{middleware.EdgeConfig{Slots: []string{"hero"}}, "EdgeConfig.Picker: required"},
		{middleware.EdgeConfig{Segments: []string{"a"}, SMaxAge: -1}, "SMaxAge: -1ns is negative"},
	} {
		if _, err := p.Edge(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := p.Edge(middleware.EdgeConfig{Segments: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Edge(middleware.EdgeConfig{Segments: []string{"a"}}); err == nil || !strings.Contains(err.Error(), "already has an Edge") {
		t.Errorf("second Edge: %v", err)
	}
}

func TestEdgeConsentAndPreview(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, func(c *middleware.Config) {
		c.Consent = func(r *http.Request) middleware.Consent {
			if r.Header.Get("X-Declined") != "" {
				return middleware.ConsentNone
			}
			return middleware.ConsentDefault
		}
	})
	srv, _ := edgeSite(t, p, middleware.EdgeConfig{Segments: []string{"red-sox-fan"}})
	resp, _ := newClient(t, srv).get("/")
	key, _ := keyCookie(resp, "tailor_v")

	// A visitor who declined tracking gets no key, and loses theirs.
	req, _ := http.NewRequest("GET", srv.URL+"/team", nil)
	req.Header.Set("User-Agent", browserUA)
	req.Header.Set("X-Declined", "1")
	req.AddCookie(&http.Cookie{Name: "tailor_v", Value: key})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if k, ok := keyCookie(resp, "tailor_v"); !ok || k != "" {
		t.Errorf("declined: key cookie %q %v, want its deletion", k, ok)
	}
	req.Header.Del("Cookie")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, ok := keyCookie(resp, "tailor_v"); ok {
		t.Error("declined, without a key: a key cookie was set")
	}

	// A preview link on a cacheable page: the preview, privately.
	link, err := p.PreviewLink("/", []string{"red-sox-fan"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := asEdge(t, srv.URL, link, key)
	if body != " red-sox-fan" || !strings.HasPrefix(resp.Header.Get("Cache-Control"), "private") {
		t.Errorf("preview link with a key: %q, Cache-Control %q", body, resp.Header.Get("Cache-Control"))
	}
}

// A cacheable page served personalised records no page view: its
// snippet does, as on the cached copies.
func TestEdgePersonalPageViewIsTheSnippets(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, nil)
	srv, _ := edgeSite(t, p, middleware.EdgeConfig{Segments: []string{"customer"}})
	c := newClient(t, srv)
	_, id := c.get("/")
	c.get("/")
	c.get("/team")
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	prof, err := p.Profile(context.Background(), strings.TrimSpace(id))
	if err != nil {
		t.Fatal(err)
	}
	if n := prof.Counts["page"]; n != 1 {
		t.Errorf("%d page views, want 1 (of /team)", n)
	}
}
