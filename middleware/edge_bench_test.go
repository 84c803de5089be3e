package middleware_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tailorhq/tailor/middleware"
)

// BenchmarkEdge measures what an Edge adds: "cacheable" is the origin's
// work for a page the edge missed (verifying the key, making the page's
// visitor); "handler" and "handler-edge" a returning visitor's request
// through Handler without and with an Edge (classifying, and checking the
// key cookie is current).
func BenchmarkEdge(b *testing.B) {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		if v.In("red-sox-fan") {
			io.WriteString(w, "Go Sox")
		}
	})
	// cookies returns the cookies of a returning visitor of h.
	cookies := func(b *testing.B, h http.Handler) []*http.Cookie {
		var jar []*http.Cookie
		for range 2 {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("User-Agent", browserUA)
			for _, c := range jar {
				r.AddCookie(c)
			}
			h.ServeHTTP(rec, r)
			for _, c := range rec.Result().Cookies() {
				jar = append(jar, c)
			}
		}
		seen := map[string]*http.Cookie{}
		for _, c := range jar {
			seen[c.Name] = c // the last of each name
		}
		jar = jar[:0]
		for _, c := range seen {
			jar = append(jar, c)
		}
		return jar
	}
	run := func(b *testing.B, h http.Handler, cs []*http.Cookie, header string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("User-Agent", browserUA)
		for _, c := range cs {
			r.AddCookie(c)
		}
		if header != "" {
			r.Header.Set(middleware.VariantHeader, header)
		}
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
		}
	}
	b.Run("handler", func(b *testing.B) {
		p := newP(b, nil, nil)
		h := p.Handler(page)
		run(b, h, cookies(b, h), "")
	})
	b.Run("handler-edge", func(b *testing.B) {
		p := newP(b, nil, nil)
		if _, err := p.Edge(middleware.EdgeConfig{Segments: []string{"red-sox-fan", "customer"}}); err != nil {
			b.Fatal(err)
		}
		h := p.Handler(page)
		run(b, h, cookies(b, h), "")
	})
	b.Run("cacheable", func(b *testing.B) {
		p := newP(b, nil, nil)
		e, err := p.Edge(middleware.EdgeConfig{Segments: []string{"red-sox-fan", "customer"}})
		if err != nil {
			b.Fatal(err)
		}
		h := e.Cacheable(page)
		var key string
		for _, c := range cookies(b, h) {
			if c.Name == e.CookieName() {
				key = c.Value
			}
		}
		run(b, h, nil, key)
	})
}
