package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// exampleSite returns a Personalizer with a CRM segment, and a site with
// the collection endpoint and a sign-in.
func exampleSite() (*middleware.Personalizer, http.Handler) {
	engine, _ := rules.NewEngine(
		rules.Segment{Name: "crm-opportunity", Rule: rules.Trait("crm_stage", "opportunity")},
		rules.Segment{Name: "red-sox-fan", Rule: rules.CategoryViews("red-sox", 2)},
	)
	p, err := middleware.New(middleware.Config{
		Keys:      []middleware.KeyPair{middleware.GenerateKeyPair()},
		Store:     memory.New(store.Limits{}),
		Engine:    engine,
		WriteKeys: []string{"wk_example"},
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/_tailor/", p.Collector())
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := p.Identify(w, r, r.FormValue("email"), nil); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if cat := r.URL.Query().Get("cat"); cat != "" {
			middleware.FromContext(r.Context()).Describe(cat, "")
		}
		fmt.Fprint(w, middleware.FromContext(r.Context()).Segments())
	})
	return p, p.Handler(mux)
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
func ExamplePersonalizer_Collector() {
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
func ExamplePersonalizer_Collector_browser() {
	p, err := middleware.New(middleware.Config{
		Keys:      []middleware.KeyPair{middleware.GenerateKeyPair()},
		Store:     memory.New(store.Limits{}),
		WriteKeys: []string{"wk_example"},
	})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())
	mux := http.NewServeMux()
	mux.Handle("/_tailor/", p.Collector())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, middleware.FromContext(r.Context()).ID())
	})
	h := p.Handler(mux)

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

// A visitor browses anonymously, then signs in on a second browser too:
// the second browser gets the first one's history. A CRM's stage, sent by
// user id, reaches both.
func ExamplePersonalizer_Identify() {
	p, h := exampleSite()
	defer p.Close(context.Background())

	laptop, phone := &browser{h: h}, &browser{h: h}
	laptop.do("GET", "/?cat=red-sox", "")
	laptop.do("GET", "/?cat=red-sox", "")
	fmt.Println("laptop:", laptop.do("GET", "/", ""))
	phone.do("GET", "/", "")
	fmt.Println("phone:", phone.do("GET", "/", ""))

	laptop.do("POST", "/login", "email=ana@example.com")
	phone.do("POST", "/login", "email=ana@example.com")
	fmt.Println("phone, signed in:", phone.do("GET", "/", ""))

	p.IdentifyUser(context.Background(), "ana@example.com", map[string]any{"crm_stage": "opportunity"})
	fmt.Println("laptop, after the CRM:", laptop.do("GET", "/", ""))
	// Output:
	// laptop: [red-sox-fan]
	// phone: []
	// phone, signed in: [red-sox-fan]
	// laptop, after the CRM: [crm-opportunity red-sox-fan]
}

// Forget erases a user: their profile, and the profiles of the visitors
// who signed in as them.
func ExamplePersonalizer_Forget() {
	p, h := exampleSite()
	defer p.Close(context.Background())

	b := &browser{h: h}
	b.do("GET", "/", "")
	b.do("POST", "/login", "email=bo@example.com")
	if err := p.Forget(context.Background(), "bo@example.com"); err != nil {
		panic(err)
	}
	_, err := p.Profile(context.Background(), "user:bo@example.com")
	fmt.Println(err)
	// The browser's cookie is deleted on its next response.
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (Example) Chrome/150.0")
	r.AddCookie(b.cookie[0])
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	fmt.Println(rec.Result().Cookies()[0].MaxAge < 0)
	// Output:
	// tailor/store: profile not found
	// true
}

// Config.Consent decides what each request's visitor agreed to; by
// default a request with Sec-GPC: 1 gets segments from the request alone,
// and no cookie.
func ExampleConsent() {
	p, err := middleware.New(middleware.Config{
		Keys:  []middleware.KeyPair{middleware.GenerateKeyPair()},
		Store: memory.New(store.Limits{}),
		Consent: func(r *http.Request) middleware.Consent {
			if c, err := r.Cookie("consent"); err == nil && c.Value == "none" {
				return middleware.ConsentNone
			}
			return middleware.ConsentDefault // tailor decides: GPC and DNT mean contextual
		},
	})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		fmt.Println(v.Consent(), v.Tracked())
	}))
	for _, hdr := range [][2]string{{"", ""}, {"Sec-GPC", "1"}, {"Cookie", "consent=none"}} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("User-Agent", "Mozilla/5.0 (Example) Chrome/150.0")
		if hdr[0] != "" {
			r.Header.Set(hdr[0], hdr[1])
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	// Output:
	// full true
	// contextual false
	// none false
}
