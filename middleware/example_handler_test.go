package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// A handler wrapped by tailor greets returning visitors.
func Example() {
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

	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		v.Describe("red-sox", r.URL.Path) // what this page is about
		if v.In("red-sox-fan") {
			fmt.Println("Go Sox!")
		} else {
			fmt.Println("Welcome")
		}
	}))

	// A browser: it sends back the cookie it was given.
	var cookie *http.Cookie
	for _, path := range []string{"/banner", "/cap", "/"} {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("User-Agent", "Mozilla/5.0")
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if cs := rec.Result().Cookies(); len(cs) > 0 {
			cookie = cs[0]
		}
	}
	// Output:
	// Welcome
	// Welcome
	// Go Sox!
}

// Templates branch on segments with FuncMap.
func ExampleFuncMap() {
	fmt.Println(len(middleware.FuncMap()))
	// Output: 3
}

// Ready tells when a Personalizer hears the store's change announcements
// (at once for a store, like this one, that delivers them in process).
func ExamplePersonalizer_Ready() {
	p, err := middleware.New(middleware.Config{Keys: []middleware.KeyPair{middleware.GenerateKeyPair()}, Store: memory.New(store.Limits{})})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(context.Background())
	select {
	case <-p.Ready():
		fmt.Println("hearing the store")
	case <-time.After(10 * time.Second):
		fmt.Println("not yet")
	}
	// Output: hearing the store
}
