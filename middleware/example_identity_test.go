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
// a sign-in.
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
	mux := http.NewServeMux()
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
