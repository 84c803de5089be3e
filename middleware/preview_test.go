package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/collect"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

func TestPreview(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC))
	p := newP(t, nil, func(c *middleware.Config) { c.Now = clk.Now })
	var got *middleware.Visitor
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = middleware.FromContext(r.Context()) }))
	get := func(target string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", target, nil)
		req.Header.Set("User-Agent", browserUA)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		h.ServeHTTP(rec, req)
		return rec
	}
	previewCookie := func(rec *httptest.ResponseRecorder) *http.Cookie {
		for _, c := range rec.Result().Cookies() {
			if c.Name == "tailor_preview" {
				return c
			}
		}
		return nil
	}

	link, err := p.PreviewLink("/products?x=1", []string{"customer", "red-sox-fan"}, map[string]string{"hero": "red-sox"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(link)
	if u.Path != "/products" || u.Query().Get("x") != "1" || u.Query().Get("tailor_preview") == "" {
		t.Fatalf("link %s", link)
	}
	rec := get(link)
	if !got.In("customer") || !got.In("red-sox-fan") || got.Preview() == nil {
		t.Fatalf("preview link: segments %v", got.Segments())
	}
	if v, ok := got.Preview().Variant("hero"); !ok || v != "red-sox" {
		t.Errorf("preview variant: %q %v", v, ok)
	}
	ck := previewCookie(rec)
	if ck == nil || !ck.HttpOnly {
		t.Fatalf("no preview cookie: %v", rec.Result().Cookies())
	}
	// The next requests of the browser stay in the preview.
	get("/", ck)
	if !got.In("customer") || got.Preview() == nil {
		t.Fatalf("preview cookie: %v", got.Segments())
	}
	// Expired: ignored, and the cookie is deleted.
	clk.Add(2 * time.Hour)
	rec = get("/", ck)
	if got.Preview() != nil || got.In("customer") {
		t.Fatalf("expired preview still applies: %v", got.Segments())
	}
	if c := previewCookie(rec); c == nil || c.MaxAge >= 0 {
		t.Errorf("expired preview cookie not deleted: %v", rec.Result().Cookies())
	}
	// Tampered or unsigned: ignored.
	for _, bad := range []string{strings.Replace(u.Query().Get("tailor_preview"), "A", "B", 1), "eyJzIjpbImN1c3RvbWVyIl19", ""} {
		get("/?tailor_preview=" + url.QueryEscape(bad))
		if got.Preview() != nil || got.In("customer") {
			t.Fatalf("bad token %q applied", bad)
		}
	}
	for _, ttl := range []time.Duration{0, -time.Second, 8 * 24 * time.Hour} {
		if _, err := p.PreviewLink("/", nil, nil, ttl); err == nil {
			t.Errorf("ttl %v accepted", ttl)
		}
	}
	// Bots see previews too (an editor's tool may be one), without a visitor cookie.
	link, _ = p.PreviewLink("/", []string{"returning"}, nil, time.Hour)
	rec = httptest.NewRecorder()
	req := httptest.NewRequest("GET", link, nil)
	req.Header.Set("User-Agent", "curl/8.0")
	h.ServeHTTP(rec, req)
	if !got.In("returning") {
		t.Errorf("bot with preview link: %v", got.Segments())
	}
}

// previewShop is a site whose handler tells what the visitor looks like
// and tries every way a page can record something: a track event, a
// purchase, an identify (with ?login=1).
func previewShop(t *testing.T, p *middleware.Personalizer) *httptest.Server {
	t.Helper()
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		v.Describe("red-sox", "red-sox-banner")
		if err := v.Track("clicked", nil); err != nil {
			t.Errorf("Track: %v", err)
		}
		if err := v.Purchase(store.Item{ID: "snowshoes", Price: 80}); err != nil {
			t.Errorf("Purchase: %v", err)
		}
		if r.URL.Query().Get("login") != "" {
			if err := p.Identify(w, r, "previewer@example.com", map[string]any{"plan": "pro"}); err != nil {
				t.Errorf("Identify: %v", err)
			}
		}
		prof := v.Profile()
		var pid string
		var orders int
		if prof != nil {
			pid, orders = prof.ID, prof.Purchases.Count
		}
		fmt.Fprintf(w, "id=%s tracked=%v profile=%s orders=%d segments=%s exit=%s",
			v.ID(), v.Tracked(), pid, orders, strings.Join(v.Segments(), ","), v.Preview().ExitURL())
	})
	srv := httptest.NewServer(withCollector(t, p, collect.Config{WriteKeys: []string{writeKey}}, p.Handler(site)))
	t.Cleanup(srv.Close)
	return srv
}

// field returns the value of key in a previewShop body.
func field(body, key string) string {
	for _, f := range strings.Fields(body) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// A preview as a representative visitor shows that visitor's profile and
// records nothing, into either profile, by any path.
func TestPreviewAsVisitorRecordsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := memory.New(store.Limits{})
	const member = "0123456789abcdef0123456789abcdef"
	t0 := time.Now().Add(-time.Hour)
	if _, err := st.Apply(ctx, member, []store.Event{
		{ID: "m1", Type: store.TypePage, Time: t0, Path: "/products/moneyball", Category: "baseball-books"},
		{ID: "m2", Type: store.TypeTrack, Name: store.EventPurchase, Time: t0.Add(time.Minute), Items: []store.Item{{ID: "moneyball", Price: 12}}},
	}); err != nil {
		t.Fatal(err)
	}
	p := newP(t, st, nil)
	srv := previewShop(t, p)

	// The editor is a visitor of the site with a profile of their own.
	admin := newClient(t, srv)
	admin.get("/")
	_, body := admin.get("/")
	adminID := field(body, "id")
	if adminID == "" || field(body, "orders") != "2" {
		t.Fatalf("editor before the preview: %s", body)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := st.Load(ctx, adminID)
	if err != nil {
		t.Fatal(err)
	}

	link, err := p.PreviewLinkAs("/products?x=1", member, []string{"customer"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, body = admin.get(strings.TrimPrefix(link, "http://example.com"))
	if field(body, "profile") != member || field(body, "orders") != "1" || field(body, "tracked") != "false" ||
		field(body, "id") != "" || field(body, "segments") != "customer" {
		t.Fatalf("preview link as %s: %s", member, body)
	}
	if exit := field(body, "exit"); exit != "/products?tailor_preview=exit&x=1" {
		t.Errorf("exit URL %q", exit)
	}
	// The next requests (by the cookie), an identify and the browser's
	// calls to the collection endpoint record nothing either.
	for range 3 {
		_, body = admin.get("/?login=1")
		if field(body, "profile") != member || field(body, "orders") != "1" {
			t.Fatalf("preview by cookie: %s", body)
		}
	}
	req, _ := http.NewRequest("POST", srv.URL+"/_tailor/v1/track", strings.NewReader(`{"event":"Clicked Banner"}`))
	req.Header.Set("User-Agent", browserUA)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Content-Type", "application/json")
	resp, err := admin.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("collect in a preview: %s", resp.Status)
	}

	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := st.Load(ctx, adminID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != before.Version || after.Recent.Len() != before.Recent.Len() || after.Counts["Clicked Banner"] != 0 {
		t.Errorf("the editor's profile changed in the preview: version %d -> %d, %d -> %d recent events",
			before.Version, after.Version, before.Recent.Len(), after.Recent.Len())
	}
	m, err := st.Load(ctx, member)
	if err != nil {
		t.Fatal(err)
	}
	if m.Recent.Len() != 2 || m.Purchases.Count != 1 {
		t.Errorf("the previewed profile changed: version %d, %d recent, %d orders", m.Version, m.Recent.Len(), m.Purchases.Count)
	}
	uid, _ := store.UserProfileID("previewer@example.com")
	if _, err := st.Load(ctx, uid); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Identify in a preview stored the user: %v", err)
	}

	// Exit: back to the same page without the preview, as the editor.
	resp, body = admin.get("/products?tailor_preview=exit&x=1")
	if resp.Request.URL.RequestURI() != "/products?x=1" || field(body, "id") != adminID || field(body, "tracked") != "true" {
		t.Fatalf("after exit, at %s: %s", resp.Request.URL, body)
	}
	u, _ := url.Parse(srv.URL)
	for _, c := range admin.c.Jar.Cookies(u) {
		if c.Name == "tailor_preview" {
			t.Errorf("preview cookie kept after exit: %v", c)
		}
	}
}

// Without a representative visitor (an empty segment), or once that
// visitor is gone, a preview shows an empty profile, never the editor's.
func TestPreviewEmptyProfile(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, nil)
	srv := previewShop(t, p)
	admin := newClient(t, srv)
	admin.get("/")
	_, body := admin.get("/")
	if field(body, "orders") != "2" {
		t.Fatalf("editor: %s", body)
	}
	noone, _ := p.PreviewLink("/", []string{"customer", "returning"}, nil, time.Hour)
	gone, _ := p.PreviewLinkAs("/", "fedcba9876543210fedcba9876543210", []string{"customer"}, nil, time.Hour)
	for _, link := range []string{noone, gone} {
		_, body = admin.get(strings.TrimPrefix(link, "http://example.com"))
		if field(body, "profile") != "" || field(body, "orders") != "0" || !strings.HasPrefix(field(body, "segments"), "customer") {
			t.Errorf("preview without a member: %s", body)
		}
	}
	if _, err := p.PreviewLinkAs("/", "bad\x00id", nil, nil, time.Hour); err == nil || !strings.Contains(err.Error(), "preview profile") {
		t.Errorf("PreviewLinkAs with a bad id: %v", err)
	}
}

// The exit link never leads to another site.
func TestPreviewExitStaysOnSite(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, nil)
	h := p.Handler(http.NotFoundHandler())
	for target, want := range map[string]string{
		"/a/b?tailor_preview=exit":             "/a/b",
		"/a?q=1&tailor_preview=exit":           "/a?q=1",
		"//evil.example/x?tailor_preview=exit": "/",
		"/\\evil.example?tailor_preview=exit":  "/%5Cevil.example", // escaped: a path
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", target, nil)
		req.Header.Set("User-Agent", browserUA)
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != want {
			t.Errorf("%s: %d to %q, want %q", target, rec.Code, rec.Header().Get("Location"), want)
		}
		if !strings.Contains(rec.Header().Get("Set-Cookie"), "tailor_preview=;") || !strings.Contains(rec.Header().Get("Set-Cookie"), "Max-Age=0") {
			t.Errorf("%s: preview cookie not deleted: %q", target, rec.Header().Get("Set-Cookie"))
		}
	}
}

// A link lives as long as it says on every Personalizer with the same
// keys: after a restart, and with the keys rotated; and its cookie expires
// with it.
func TestPreviewSurvivesRestart(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC))
	st := memory.New(store.Limits{})
	withClock := func(c *middleware.Config) { c.Now = clk.Now }
	p1 := newP(t, st, withClock)
	link, err := p1.PreviewLink("/", []string{"customer"}, nil, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expires := clk.Now().Add(48 * time.Hour)
	if err := p1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	open := func(p *middleware.Personalizer, target string, cookies ...*http.Cookie) (*middleware.Visitor, *httptest.ResponseRecorder) {
		var got *middleware.Visitor
		h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = middleware.FromContext(r.Context()) }))
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", target, nil)
		req.Header.Set("User-Agent", browserUA)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		h.ServeHTTP(rec, req)
		return got, rec
	}

	// Restarted: the link works, and its cookie expires when it does.
	p2 := newP(t, st, withClock)
	v, rec := open(p2, link)
	if !v.In("customer") || v.Preview() == nil || !v.Preview().Expires.Equal(expires) {
		t.Fatalf("link after a restart: %v %+v", v.Segments(), v.Preview())
	}
	var ck *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == "tailor_preview" {
			ck = c
		}
	}
	if ck == nil || !ck.Expires.Equal(expires) {
		t.Fatalf("preview cookie %v, want it to expire at %v", ck, expires)
	}

	// Restarted again, with new keys first: until the expiry, and not after.
	rotated := func(c *middleware.Config) {
		c.Now = clk.Now
		c.Keys = []middleware.KeyPair{{Hash: []byte("abcdefghijklmnopqrstuvwxyz012345"), Block: []byte("543210zyxwvutsrqponmlkjihgfedcba")}, testKeys}
	}
	p3 := newP(t, st, rotated)
	clk.Add(48*time.Hour - time.Second)
	if v, _ := open(p3, "/", ck); !v.In("customer") {
		t.Fatalf("cookie a second before its expiry, rotated keys: %v", v.Segments())
	}
	if v, _ := open(p3, link); !v.In("customer") {
		t.Fatalf("link a second before its expiry, rotated keys: %v", v.Segments())
	}
	clk.Add(time.Second)
	if v, _ := open(p3, "/", ck); v.Preview() != nil || v.In("customer") {
		t.Fatalf("cookie at its expiry: %v", v.Segments())
	}
	if v, _ := open(p3, link); v.Preview() != nil || v.In("customer") {
		t.Fatalf("link at its expiry: %v", v.Segments())
	}
	// Without the link's key, it is refused.
	p4 := newP(t, st, func(c *middleware.Config) { rotated(c); c.Keys = c.Keys[:1] })
	clk.Add(-time.Hour)
	if v, _ := open(p4, link); v.Preview() != nil {
		t.Fatal("link accepted without its key")
	}
}

// A link outlives the visitor cookie's MaxAge when its ttl says so: its
// expiry is its own.
func TestPreviewLongerThanCookieMaxAge(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, func(c *middleware.Config) { c.Cookie.MaxAge = time.Second })
	link, err := p.PreviewLink("/", []string{"customer"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The keys' age check counts whole seconds of the real clock.
	for start := time.Now(); time.Since(start) < 3*time.Second; {
		time.Sleep(100 * time.Millisecond)
	}
	var got *middleware.Visitor
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = middleware.FromContext(r.Context()) }))
	req := httptest.NewRequest("GET", link, nil)
	req.Header.Set("User-Agent", browserUA)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !got.In("customer") {
		t.Fatalf("a link of an hour refused after 3s, with Cookie.MaxAge 1s: %v", got.Segments())
	}
}

// A preview as a visitor who is active on the same instance reads a copy
// of their profile: both go on at once without a race, and the preview
// sees the member's new events.
func TestPreviewWhileMemberIsActive(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, nil)
	var mu sync.Mutex
	views := map[string]int{} // by "member" or "preview": the red-sox views seen
	srv := httptest.NewServer(p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		v.Describe("red-sox", "")
		who := "member"
		if v.Preview() != nil {
			who = "preview"
		}
		n := v.Profile().Categories["red-sox"]
		mu.Lock()
		views[who] = max(views[who], n)
		mu.Unlock()
		io.WriteString(w, v.ID())
	})))
	t.Cleanup(srv.Close)
	member := newClient(t, srv)
	member.get("/")
	_, id := member.get("/")
	link, err := p.PreviewLinkAs("/", id, []string{"red-sox-fan"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	editor := newClient(t, srv)
	editor.get(strings.TrimPrefix(link, "http://example.com"))
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 50 {
			member.get("/")
		}
	})
	wg.Go(func() {
		for range 50 {
			editor.get("/")
		}
	})
	wg.Wait()
	_, body := editor.get("/")
	if body != "" {
		t.Errorf("the preview has a visitor id: %q", body)
	}
	mu.Lock()
	defer mu.Unlock()
	if views["member"] < 50 || views["preview"] < 50 {
		t.Errorf("red-sox views seen: member %d, preview %d; want at least 50 each", views["member"], views["preview"])
	}
}
