package middleware_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// A home page that a cache at the edge keeps, one copy per variant: the
// visitor's first request reaches the origin and gets the variant-key
// cookie; the edge then sends that key in the Tailor-Variant header, and
// the page made for it is public and the same for every visitor of the
// variant.
func ExamplePersonalizer_Edge() {
	engine, _ := rules.NewEngine(
		rules.Segment{Name: "red-sox-fan", Rule: rules.CategoryViews("red-sox", 2)},
	)
	p, err := middleware.New(middleware.Config{
		Keys:   []middleware.KeyPair{middleware.GenerateKeyPair()},
		Store:  memory.New(store.Limits{}),
		Engine: engine,
	})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())
	edge, err := p.Edge(middleware.EdgeConfig{Segments: []string{"red-sox-fan"}})
	if err != nil {
		panic(err)
	}
	home := edge.Cacheable(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if middleware.FromContext(r.Context()).In("red-sox-fan") {
			io.WriteString(w, "Go Sox!")
		} else {
			io.WriteString(w, "Welcome")
		}
	}))

	// The first request: no key yet, so the edge lets it through.
	rec := httptest.NewRecorder()
	home.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	var key string
	for _, c := range rec.Result().Cookies() {
		if c.Name == edge.CookieName() {
			key = c.Value
		}
	}
	fmt.Println(rec.Header().Get("Cache-Control"), rec.Body)

	// The edge's request on a miss: the key, no cookie.
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set(middleware.VariantHeader, key)
	rec = httptest.NewRecorder()
	home.ServeHTTP(rec, req)
	fmt.Println(rec.Header().Get("Cache-Control"), rec.Header().Get("Vary"), len(rec.Result().Cookies()), rec.Body)
	// Output:
	// private Welcome
	// public, max-age=0, s-maxage=60 Tailor-Variant 0 Welcome
}
