package slots_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/slots"
)

// A page that a cache at the edge keeps shows the slot variants its
// variant key holds, whatever the request it is made on says.
func TestEdgePinsVariants(t *testing.T) {
	t.Parallel()
	s := newTestSite(t)
	engine, err := slots.NewEngine(heroSlot(), slots.Slot{
		Name: "docs",
		Variants: []slots.Variant{
			{Key: "docs-fan", Priority: 5, Condition: mustCondition(t, `{"request.path": {"$regex": "^/docs"}}`)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	edge, err := s.p.Edge(middleware.EdgeConfig{Slots: []string{"hero", "docs"}, Picker: engine})
	if err != nil {
		t.Fatal(err)
	}
	page := edge.Cacheable(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		fmt.Fprintf(w, "hero:%s docs:%s segments:%v", engine.Pick(v, "hero").Variant, engine.Pick(v, "docs").Variant, v.Segments())
	}))
	// key returns the key cookie of a visitor's request to path, which
	// the edge lets through.
	key := func(path string) string {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0")
		page.ServeHTTP(rec, req)
		for _, c := range rec.Result().Cookies() {
			if c.Name == edge.CookieName() {
				return c.Value
			}
		}
		t.Fatalf("%s: no key cookie in %v", path, rec.Result().Cookies())
		return ""
	}
	for _, tc := range []struct{ path, want string }{
		{"/", "hero:welcome docs:default segments:[]"},
		{"/in/customer", "hero:thank-you docs:default segments:[]"},
		{"/in/vip", "hero:red-sox docs:default segments:[]"},
		{"/docs/edge", "hero:welcome docs:docs-fan segments:[]"},
	} {
		k := key(tc.path)
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set(middleware.VariantHeader, k)
		page.ServeHTTP(rec, req)
		if got := rec.Body.String(); got != tc.want || rec.Header().Get("Cache-Control") == "no-store" {
			t.Errorf("key of %s: page %q (%s), want %q", tc.path, got, rec.Header().Get("Cache-Control"), tc.want)
		}
	}
	if key("/in/customer") == key("/in/vip") || key("/in/customer") != key("/in/customer,returning") {
		t.Error("keys do not follow the variants alone")
	}
}
