package slots

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/tailorhq/tailor/middleware"
)

// A FuncOption configures FuncMap.
type FuncOption func(*funcConfig)

type funcConfig struct {
	tmpl *template.Template
}

// Templates gives renderSlot the template set that holds the variants'
// templates: pass the template that you then parse the site's templates
// into, since templates are looked up when they are rendered:
//
//	t := template.New("site").Funcs(middleware.FuncMap())
//	t.Funcs(engine.FuncMap(slots.Templates(t)))
//	template.Must(t.ParseFS(files, "templates/*.html"))
func Templates(t *template.Template) FuncOption {
	return func(c *funcConfig) { c.tmpl = t }
}

// FuncMap returns template functions that show the engine's current slots. Each takes
// as its first argument the request (*http.Request), its context or the
// *middleware.Visitor, so one parsed template serves every request:
//
//	{{with slot .Request "hero"}}
//	  <section {{.Attrs}}>
//	    <h1>{{.Fields.title}}</h1>
//	    <a href="{{.Fields.link}}">{{.Fields.text}}</a>
//	  </section>
//	{{end}}
//
//	<aside {{slotAttrs .Request "promo"}}>...</aside>
//
//	{{renderSlot .Request "hero"}}
//
// slot returns the Choice (see Engine.Pick), whose Fields are escaped by
// html/template like any other value, and whose Attrs method gives the
// data-slot and data-variant attributes. slotAttrs returns those
// attributes alone. renderSlot executes the template that the chosen
// variant names, with the Choice as its data, and returns its output (the
// template set comes from the Templates option); a variant without a
// template renders nothing. Each call picks, and records an exposure to the
// slot's experiment, if any (once per variant: see Engine.Pick): call slot
// once per slot and page, and use its Attrs.
//
// An unknown slot name, or a template that does not exist, fails the
// template's execution: they are mistakes of the site, found by its
// tests.
func (e *Engine) FuncMap(opts ...FuncOption) template.FuncMap {
	var cfg funcConfig
	for _, o := range opts {
		o(&cfg)
	}
	pick := func(x any, name string) (Choice, error) {
		s := e.Set()
		if s.slot(name) == nil {
			return Choice{}, fmt.Errorf("slots: no slot %q", name)
		}
		return s.pick(visitorOf(x), name), nil
	}
	return template.FuncMap{
		"slot": pick,
		"slotAttrs": func(x any, name string) (template.HTMLAttr, error) {
			c, err := pick(x, name)
			if err != nil {
				return "", err
			}
			return c.Attrs(), nil
		},
		"renderSlot": func(x any, name string) (template.HTML, error) {
			c, err := pick(x, name)
			if err != nil || c.Template == "" {
				return "", err
			}
			if cfg.tmpl == nil {
				return "", fmt.Errorf("slots: variant %q of slot %q names template %q, but FuncMap was not given the templates (see Templates)",
					c.Variant, name, c.Template)
			}
			t := cfg.tmpl.Lookup(c.Template)
			if t == nil {
				return "", fmt.Errorf("slots: variant %q of slot %q: no template %q", c.Variant, name, c.Template)
			}
			var b strings.Builder
			if err := t.Execute(&b, c); err != nil {
				return "", err
			}
			// The output of an html/template, escaped by it.
			return template.HTML(b.String()), nil
		},
	}
}

// visitorOf returns the visitor of a template argument: a
// *middleware.Visitor, an *http.Request or a context.Context.
func visitorOf(x any) *middleware.Visitor {
	switch x := x.(type) {
	case *middleware.Visitor:
		return x
	case *http.Request:
		return middleware.FromContext(x.Context())
	case context.Context:
		return middleware.FromContext(x)
	}
	return nil
}
