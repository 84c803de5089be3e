package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
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
