package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// TestSignOut: inside Handler, SignOut replaces the renewal of the cookie
// with its deletion; outside it, it deletes a valid cookie; for a request
// without a cookie it sets nothing.
func TestSignOut(t *testing.T) {
	t.Parallel()
	p, err := middleware.New(middleware.Config{Keys: []middleware.KeyPair{middleware.GenerateKeyPair()}, Store: memory.New(store.Limits{})})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	var ids []string
	wrapped := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids = append(ids, middleware.FromContext(r.Context()).ID())
		if r.URL.Path == "/logout" {
			p.SignOut(w, r)
		}
	}))
	plain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.SignOut(w, r) })
	get := func(h http.Handler, path string, cookie *http.Cookie) *http.Response {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("User-Agent", "Mozilla/5.0 (Test) Chrome/150.0")
		if cookie != nil {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Result()
	}
	first := get(wrapped, "/", nil).Cookies()
	if len(first) != 1 || first[0].MaxAge <= 0 {
		t.Fatalf("first visit: cookies %v", first)
	}
	c := first[0]
	for name, resp := range map[string]*http.Response{"in Handler": get(wrapped, "/logout", c), "outside": get(plain, "/logout", c)} {
		got := resp.Cookies()
		if len(got) != 1 || got[0].Name != c.Name || got[0].MaxAge >= 0 || got[0].Value != "" {
			t.Errorf("%s: cookies %v, want the visitor cookie deleted", name, got)
		}
	}
	if len(ids) != 2 || ids[0] != ids[1] || ids[0] == "" {
		t.Errorf("the request that signs out is not the visitor's: %q", ids)
	}
	if got := get(plain, "/logout", nil).Header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("no cookie: Set-Cookie %v", got)
	}
	// The next request, without the cookie, is a new visitor.
	next := get(wrapped, "/", nil)
	if len(ids) != 3 || ids[2] == ids[0] || !strings.Contains(strings.Join(next.Header.Values("Set-Cookie"), ""), c.Name+"=") {
		t.Errorf("after signing out: ids %q", ids)
	}
}
