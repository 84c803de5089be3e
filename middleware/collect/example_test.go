package collect_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/collect"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// exampleSite returns a Personalizer with a CRM segment, and a site with
// the collection endpoint mounted beside it.
func exampleSite() (*middleware.Personalizer, http.Handler) {
	engine, _ := rules.NewEngine(
		rules.Segment{Name: "crm-opportunity", Rule: rules.Trait("crm_stage", "opportunity")},
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
	site := http.NewServeMux()
	site.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := p.Identify(w, r, r.FormValue("email"), nil); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	site.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, middleware.FromContext(r.Context()).Segments())
	})
	c, err := collect.New(p, collect.Config{WriteKeys: []string{"wk_example"}})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/_tailor/", c) // beside the site, not inside Handler
	mux.Handle("/", p.Handler(site))
	return p, mux
}

// browser is a minimal browser: it keeps the cookie.
type browser struct {
	h      http.Handler
	cookie []*http.Cookie
}

func (b *browser) do(method, target, form string) string {
	r := httptest.NewRequest(method, target, strings.NewReader(form))
	r.Header.Set("User-Agent", "Mozilla/5.0 (Example) Chrome/150.0")
	if form != "" {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range b.cookie {
		r.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, r)
	if c := rec.Result().Cookies(); len(c) > 0 {
		b.cookie = c
	}
	return rec.Body.String()
}

// A server sends a batch of Segment events with its write key.
func Example() {
	p, h := exampleSite()
	defer p.Close(context.Background())

	r := httptest.NewRequest("POST", "/_tailor/v1/batch", strings.NewReader(`{"batch":[
		{"type":"identify","userId":"ana@example.com","traits":{"crm_stage":"opportunity"}},
		{"type":"track","userId":"ana@example.com","event":"email_clicked","properties":{"campaign":"spring"}},
		{"type":"track","userId":"ana@example.com"}]}`))
	r.SetBasicAuth("wk_example", "")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	fmt.Print(rec.Code, " ", rec.Body.String())

	prof, _ := p.Profile(context.Background(), "user:ana@example.com")
	fmt.Println(string(prof.Traits), prof.Counts["email_clicked"])
	// Output:
	// 200 {"success":true,"accepted":2,"errors":[{"error":"invalid","field":"batch[2].event","message":"required for track"}]}
	// {"crm_stage":"opportunity"} 1
}

// The snippet's calls (no write key) may track what the visitor does, but
// not orders: anyone could send them. The server records the order.
func Example_browser() {
	p, err := middleware.New(middleware.Config{
		Keys:  []middleware.KeyPair{middleware.GenerateKeyPair()},
		Store: memory.New(store.Limits{}),
	})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())
	c, err := collect.New(p, collect.Config{WriteKeys: []string{"wk_example"}})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/_tailor/", c)
	mux.Handle("/", p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, middleware.FromContext(r.Context()).ID())
	})))
	h := mux

	b := &browser{h: h}
	b.do("GET", "/", "")
	id := b.do("GET", "/", "") // a returning visitor: kept
	send := func(r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	r := httptest.NewRequest("POST", "/_tailor/v1/batch", strings.NewReader(`{"batch":[
		{"type":"track","event":"add_to_cart"},
		{"type":"track","event":"Order Completed","properties":{"revenue":5000}}]}`))
	r.Header.Set("Sec-Fetch-Site", "same-origin") // from a page of the site
	r.Header.Set("User-Agent", "Mozilla/5.0 (Example) Chrome/150.0")
	for _, c := range b.cookie {
		r.AddCookie(c)
	}
	send(r)
	prof, _ := p.Profile(context.Background(), id)
	fmt.Println(prof.Counts["add_to_cart"], prof.Purchases.Count)

	r = httptest.NewRequest("POST", "/_tailor/v1/track", strings.NewReader(
		`{"anonymousId":"`+id+`","event":"Order Completed","properties":{"revenue":50}}`))
	r.SetBasicAuth("wk_example", "")
	send(r)
	prof, _ = p.Profile(context.Background(), id)
	fmt.Println(prof.Purchases.Count, prof.Purchases.Revenue)
	// Output:
	// 200 {"success":true,"accepted":1,"errors":[{"error":"forbidden","field":"batch[1].event","message":"track \"Order Completed\" needs a write key: it records a purchase (send orders from your server)"}]}
	// 1 0
	// 200 {"success":true,"accepted":1}
	// 1 50
}
