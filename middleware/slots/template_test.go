package slots_test

import (
	"html/template"
	"net/http"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/slots"
)

const hostile = `"><script>alert(1)</script>`

func hostileSet(t *testing.T) *slots.Engine {
	t.Helper()
	set, err := parseEngine([]byte(`{"slots": [{
	  "name": "hero",
	  "variants": [
	    {"key": "red-sox", "segment": "red-sox-fan",
	     "fields": {"title": "Go \"Sox\" <b>", "link": "javascript:alert(1)"}},
	    {"key": "x\"><script>", "segment": "vip", "fields": {"title": "odd key"}},
	    {"key": "card", "segment": "customer", "template": "hero-card",
	     "fields": {"title": "<img src=x onerror=alert(1)>", "price": 12.5}}
	  ],
	  "default": {"key": "welcome", "fields": {"title": "Welcome", "link": "/start"}}
	}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func render(t *testing.T, s *site, set *slots.Engine, path, src string) string {
	t.Helper()
	tmpl := template.New("page").Funcs(middleware.FuncMap())
	tmpl.Funcs(set.FuncMap(slots.Templates(tmpl)))
	template.Must(tmpl.Parse(src))
	template.Must(tmpl.New("hero-card").Parse(`<div class="card" {{.Attrs}}>{{.Fields.title}} at {{.Fields.price}}</div>`))
	var out string
	s.visit(nil, path, func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		if err := tmpl.ExecuteTemplate(&b, "page", map[string]any{"Request": r}); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = b.String()
	})
	return out
}

func TestTemplateEscapesFields(t *testing.T) {
	t.Parallel()
	set := hostileSet(t)
	s := newTestSite(t)
	const page = `{{with slot .Request "hero"}}<a {{.Attrs}} href="{{.Fields.link}}" title="{{.Fields.title}}">{{.Fields.title}}</a>{{end}}`

	got := render(t, s, set, "/in/red-sox-fan", page)
	want := `<a data-slot="hero" data-variant="red-sox" href="#ZgotmplZ" title="Go &#34;Sox&#34; &lt;b&gt;">Go &#34;Sox&#34; &lt;b&gt;</a>`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}

	got = render(t, s, set, "/", page)
	want = `<a data-slot="hero" data-variant="welcome" href="/start" title="Welcome">Welcome</a>`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestAttrsEscapeKeys(t *testing.T) {
	t.Parallel()
	set := hostileSet(t)
	s := newTestSite(t)
	got := render(t, s, set, "/in/vip", `<section {{slotAttrs .Request "hero"}}></section>`)
	want := `<section data-slot="hero" data-variant="x&#34;&gt;&lt;script&gt;"></section>`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	c := slots.Choice{Slot: "a&b", Variant: hostile}
	if got, want := string(c.Attrs()), `data-slot="a&amp;b" data-variant="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`; got != want {
		t.Errorf("Attrs = %s, want %s", got, want)
	}
}

func TestRenderSlot(t *testing.T) {
	t.Parallel()
	set := hostileSet(t)
	s := newTestSite(t)
	const page = `<main>{{renderSlot .Request "hero"}}</main>`
	got := render(t, s, set, "/in/customer", page)
	want := `<main><div class="card" data-slot="hero" data-variant="card">&lt;img src=x onerror=alert(1)&gt; at 12.5</div></main>`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// A variant without a template renders nothing.
	if got := render(t, s, set, "/", page); got != "<main></main>" {
		t.Errorf("got %s", got)
	}
}

func TestTemplateMistakes(t *testing.T) {
	t.Parallel()
	set := hostileSet(t)
	s := newTestSite(t)
	for _, src := range []string{
		`{{slot .Request "nope"}}`,
		`{{slotAttrs .Request "nope"}}`,
		`{{renderSlot .Request "nope"}}`,
	} {
		tmpl := template.Must(template.New("page").Funcs(set.FuncMap()).Parse(src))
		s.visit(nil, "/", func(w http.ResponseWriter, r *http.Request) {
			if err := tmpl.Execute(new(strings.Builder), map[string]any{"Request": r}); err == nil ||
				!strings.Contains(err.Error(), `no slot "nope"`) {
				t.Errorf("%s: err = %v", src, err)
			}
		})
	}
	// renderSlot without Templates.
	tmpl := template.Must(template.New("page").Funcs(set.FuncMap()).Parse(`{{renderSlot .Request "hero"}}`))
	s.visit(nil, "/in/customer", func(w http.ResponseWriter, r *http.Request) {
		if err := tmpl.Execute(new(strings.Builder), map[string]any{"Request": r}); err == nil ||
			!strings.Contains(err.Error(), "see Templates") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestFuncMapArguments(t *testing.T) {
	t.Parallel()
	set := hostileSet(t)
	s := newTestSite(t)
	tmpl := template.Must(template.New("page").Funcs(set.FuncMap()).Parse(
		`{{(slot .R "hero").Variant}} {{(slot .C "hero").Variant}} {{(slot .V "hero").Variant}} {{(slot .N "hero").Variant}}`))
	s.visit(nil, "/in/red-sox-fan", func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		err := tmpl.Execute(&b, map[string]any{"R": r, "C": r.Context(), "V": middleware.FromContext(r.Context()), "N": nil})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := b.String(), "red-sox red-sox red-sox welcome"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}
