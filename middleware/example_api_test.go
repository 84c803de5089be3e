package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// The first start creates the key file; later starts read the same keys.
func ExampleLoadOrCreateKeys() {
	dir, _ := os.MkdirTemp("", "tailor")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "tailor.keys")
	first, err := middleware.LoadOrCreateKeys(path)
	if err != nil {
		panic(err)
	}
	again, _ := middleware.LoadOrCreateKeys(path)
	fi, _ := os.Stat(path)
	fmt.Println(len(first), string(first[0].Hash) == string(again[0].Hash), fi.Mode().Perm())
	// Output: 1 true -rw-------
}

// An observer hears every entry into and exit from a segment, once across
// the instances that share the store, shortly after the request that
// caused it.
func ExamplePersonalizer_Observe() {
	engine, _ := rules.NewEngine(rules.Segment{Name: "customer", Rule: rules.Purchased(1)})
	p, err := middleware.New(middleware.Config{
		Keys:   []middleware.KeyPair{middleware.GenerateKeyPair()},
		Store:  memory.New(store.Limits{}),
		Engine: engine,
	})
	if err != nil {
		panic(err)
	}
	var mu sync.Mutex
	var heard []string
	p.Observe(middleware.Observer{SegmentChange: func(c middleware.SegmentChange) {
		mu.Lock()
		defer mu.Unlock()
		heard = append(heard, fmt.Sprint("entered ", c.Entered, " exited ", c.Exited))
	}})
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/buy" {
			middleware.FromContext(r.Context()).Purchase(store.Item{ID: "moneyball", Price: 20})
		}
	}))
	b := &browser{h: h}
	b.do("GET", "/", "")
	b.do("GET", "/", "")    // back with the cookie: kept, in no segment
	b.do("GET", "/buy", "") // buys: a customer from the next request on
	b.do("GET", "/", "")
	p.Close(context.Background()) // writes what is pending, and reports
	mu.Lock()
	defer mu.Unlock()
	for _, s := range heard {
		fmt.Println(s)
	}
	// Output: entered [customer] exited []
}

// A handler that Handler does not wrap (an API) records for the visitor
// of the request's cookie.
func ExamplePersonalizer_VisitorOf() {
	p, err := middleware.New(middleware.Config{
		Keys:  []middleware.KeyPair{middleware.GenerateKeyPair()},
		Store: memory.New(store.Limits{}),
	})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())
	site := &browser{h: p.Handler(http.NotFoundHandler())}
	site.do("GET", "/", "")
	site.do("GET", "/", "") // a returning visitor: kept

	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := p.VisitorOf(r)
		if err := v.Track("video_played", map[string]any{"seconds": 30}); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, v.ID())
	})
	r := httptest.NewRequest("POST", "/api/played", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (Example) Chrome/150.0")
	for _, c := range site.cookie {
		r.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, r)
	prof, _ := p.Profile(context.Background(), rec.Body.String())
	fmt.Println(prof.Counts["video_played"])
	// Output: 1
}

// A page that reads a little of the profile on every request reads it in
// place, without the copy that Profile makes.
func ExampleVisitor_ReadProfile() {
	p, err := middleware.New(middleware.Config{
		Keys:  []middleware.KeyPair{middleware.GenerateKeyPair()},
		Store: memory.New(store.Limits{}),
	})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		views := 0
		middleware.FromContext(r.Context()).ReadProfile(func(prof *store.Profile) {
			if prof != nil {
				views = prof.Counts["page"]
			}
		})
		fmt.Println("page views before this one:", views)
	}))
	b := &browser{h: h}
	b.do("GET", "/", "") // new: its first page view travels in the cookie
	b.do("GET", "/", "") // back: the first view is recorded
	b.do("GET", "/", "")
	// Output:
	// page views before this one: 0
	// page views before this one: 1
	// page views before this one: 2
}

func ExampleVisitor_ReadProfileParts() {
	p, err := middleware.New(middleware.Config{
		Keys:  []middleware.KeyPair{middleware.GenerateKeyPair()},
		Store: memory.New(store.Limits{}),
	})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		if r.URL.Path == "/buy" {
			v.Purchase(store.Item{ID: "moneyball", Price: 25, Quantity: 1})
			return
		}
		// Reads the purchases only: the page views are left aside.
		spent := 0.0
		v.ReadProfileParts(store.TouchPurchases, func(prof *store.Profile) {
			if prof != nil {
				spent = prof.Purchases.Revenue
			}
		})
		fmt.Println("spent:", spent)
	}))
	b := &browser{h: h}
	b.do("GET", "/", "")
	b.do("GET", "/", "")
	b.do("GET", "/buy", "")
	b.do("GET", "/", "")
	// Output:
	// spent: 0
	// spent: 0
	// spent: 25
}
