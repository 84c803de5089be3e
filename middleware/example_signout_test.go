package middleware_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// A visitor who signs out comes back as a new anonymous visitor, without
// the user's segments; signing in again brings them back.
func ExamplePersonalizer_SignOut() {
	engine, _ := rules.NewEngine(rules.Segment{Name: "red-sox-fan", Rule: rules.CategoryViews("red-sox", 2)})
	p, err := middleware.New(middleware.Config{
		Keys:   []middleware.KeyPair{middleware.GenerateKeyPair()},
		Store:  memory.New(store.Limits{}),
		Engine: engine,
	})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		p.Identify(w, r, r.FormValue("email"), nil)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		p.SignOut(w, r)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		if cat := r.URL.Query().Get("cat"); cat != "" {
			v.Describe(cat, "")
		}
		fmt.Fprintf(w, "user %q %v", v.UserID(), v.Segments())
	})
	srv := httptest.NewServer(p.Handler(mux))
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	do := func(method, path, form string) string {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(form))
		req.Header.Set("User-Agent", "Mozilla/5.0 (Example) Chrome/150.0")
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	do("GET", "/?cat=red-sox", "")
	do("GET", "/?cat=red-sox", "")
	do("POST", "/login", url.Values{"email": {"ana@example.com"}}.Encode())
	fmt.Println("signed in: ", do("GET", "/", ""))
	do("POST", "/logout", "")
	fmt.Println("signed out:", do("GET", "/", ""))
	do("POST", "/login", url.Values{"email": {"ana@example.com"}}.Encode())
	fmt.Println("back:      ", do("GET", "/", ""))
	// Output:
	// signed in:  user "ana@example.com" [red-sox-fan]
	// signed out: user "" []
	// back:       user "ana@example.com" [red-sox-fan]
}
