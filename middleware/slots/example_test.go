package slots_test

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/slots"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// A shop's home page shows its hero banner per segment.
func Example() {
	hero := new(slots.Engine)
	err := hero.Reload([]byte(`{"slots": [{
	  "name": "hero",
	  "variants": [
	    {"key": "thank-you", "segment": "customer", "priority": 30,
	     "fields": {"title": "Thank you for your order!"}},
	    {"key": "red-sox", "segment": "red-sox-fan", "priority": 20,
	     "fields": {"title": "Go Sox! <3"}},
	    {"key": "welcome-back", "segment": "returning", "priority": 10,
	     "fields": {"title": "Welcome back"}}
	  ],
	  "default": {"key": "welcome", "fields": {"title": "Welcome"}}
	}]}`), slots.Segments("customer", "red-sox-fan", "returning"))
	if err != nil {
		panic(err)
	}
	page := template.Must(template.New("home").Funcs(hero.FuncMap()).Parse(
		`{{with slot .Request "hero"}}<section {{.Attrs}}><h1>{{.Fields.title}}</h1></section>{{end}}`))

	engine, _ := rules.NewEngine(
		rules.Segment{Name: "red-sox-fan", Rule: rules.CategoryViews("red-sox", 2)},
	)
	p, _ := middleware.New(middleware.Config{
		Keys:   []middleware.KeyPair{middleware.GenerateKeyPair()},
		Store:  memory.New(store.Limits{}),
		Engine: engine,
	})
	defer p.Close(context.Background())
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		middleware.FromContext(r.Context()).Describe("red-sox", r.URL.Path)
		page.Execute(os.Stdout, map[string]any{"Request": r})
		fmt.Println()
	}))

	var cookie *http.Cookie
	for _, path := range []string{"/", "/cap", "/"} {
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
	// <section data-slot="hero" data-variant="welcome"><h1>Welcome</h1></section>
	// <section data-slot="hero" data-variant="welcome"><h1>Welcome</h1></section>
	// <section data-slot="hero" data-variant="red-sox"><h1>Go Sox! &lt;3</h1></section>
}

// Parse reports every problem of a file, at its place.
func ExampleParse_errors() {
	_, err := slots.Parse([]byte(`{"slots": [{
  "name": "hero",
  "variants": [{"key": "sox", "segment": "red-sox-fan", "priority": "high"}],
  "default": {"key": "welcome", "fields": ["Welcome"]}
}]}`), slots.Filename("slots.json"))
	fmt.Println(err)
	// Output:
	// 2 problems:
	// 	slots.json:3:69: /slots/0/variants/0/priority: the priority is an integer, not a string
	// 	slots.json:4:43: /slots/0/default/fields: the fields are an object, not a list
}

// Slots are declared in Go too; Pick picks for a visitor (nil here: a
// visitor outside a wrapped request is in no segment).
func ExampleEngine_Pick() {
	set, err := slots.NewEngine(slots.Slot{
		Name: "promo",
		Variants: []slots.Variant{
			{Key: "vip-sale", Segments: []string{"vip"}, Fields: map[string]any{"text": "20% off for you"}},
		},
		Default: slots.Variant{Fields: map[string]any{"text": "Free shipping over $50"}},
	})
	if err != nil {
		panic(err)
	}
	c := set.Pick(nil, "promo")
	fmt.Println(c.Variant, c.Fields["text"])
	fmt.Println(c.Attrs())
	// Output:
	// default Free shipping over $50
	// data-slot="promo" data-variant="default"
}

// A variant may name a template: renderSlot renders it, given the template
// set with Templates.
func ExampleTemplates() {
	set := new(slots.Engine)
	set.Reload([]byte(`[{"name": "hero",
	  "variants": [],
	  "default": {"key": "welcome", "template": "hero-card", "fields": {"title": "Tom & Jerry's"}}}]`))
	t := template.New("page")
	t.Funcs(set.FuncMap(slots.Templates(t)))
	template.Must(t.Parse(`<main>{{renderSlot .Request "hero"}}</main>`))
	template.Must(t.New("hero-card").Parse(`<div {{.Attrs}}>{{.Fields.title}}</div>`))
	var b strings.Builder
	t.ExecuteTemplate(&b, "page", map[string]any{"Request": httptest.NewRequest("GET", "/", nil)})
	fmt.Println(b.String())
	// Output:
	// <main><div data-slot="hero" data-variant="welcome">Tom &amp; Jerry&#39;s</div></main>
}

// An engine reloads its file while the site runs: a valid file replaces
// the slots, a bad one is refused and the engine keeps what it has. A site
// calls go engine.Watch(ctx, "slots.json", 2*time.Second) to reload on
// every edit.
func ExampleEngine_Reload() {
	file := func(title string) []byte {
		return fmt.Appendf(nil, `{"slots": [{"name": "hero", "variants": [],
		  "default": {"key": "welcome", "fields": {"title": %q}}}]}`, title)
	}
	engine := new(slots.Engine)
	if err := engine.Reload(file("Welcome"), slots.Filename("slots.json")); err != nil {
		panic(err)
	}
	title := func() any { sl, _ := engine.Set().Slot("hero"); return sl.Default.Fields["title"] }

	fmt.Println(engine.Reload(file("Welcome to the winter sale"), slots.Filename("slots.json")), title())
	fmt.Println(engine.Reload([]byte(`{"slots": [{"name": "hero", "variants": [], "default": {"key": 3}}]}`), slots.Filename("slots.json")))
	fmt.Println(title())
	// Output:
	// <nil> Welcome to the winter sale
	// slots.json:1:64: /slots/0/default/key: the key is a string, not a number
	// Welcome to the winter sale
}
