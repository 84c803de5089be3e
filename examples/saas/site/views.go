package site

import (
	"fmt"

	"github.com/a-h/templ"

	"github.com/tailorhq/tailor/middleware/slots"
)

// page is what the layout shows around every page.
type page struct {
	Title     string
	Path      string       // of the request, to mark the current link
	Community slots.Choice // the community banner, variant "none" for most
}

// slotAttrs are the data-slot and data-variant attributes of a slot's
// element (as slots.Choice.Attrs gives html/template), which tests and
// the snippet read.
func slotAttrs(c slots.Choice) templ.Attributes {
	return templ.Attributes{"data-slot": c.Slot, "data-variant": c.Variant}
}

// field returns a text field of a slot's variant, "" if it has none.
// Fields are the site owner's content, edited in the dashboard: templ
// escapes them like any other value.
func field(c slots.Choice, name string) string {
	switch v := c.Fields[name].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// link returns a slot's link field as a URL, sanitised by templ (a
// "javascript:" link becomes harmless).
func link(c slots.Choice) templ.SafeURL {
	return templ.URL(field(c, "link"))
}

// navClass marks the link of the current page.
func navClass(pg page, path string) string {
	if pg.Path == path {
		return "current"
	}
	return ""
}
