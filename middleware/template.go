package middleware

import "html/template"

// FuncMap returns template functions that read the visitor of a request.
// Each takes as its first argument the request (*http.Request), its context,
// or the *Visitor, so one parsed template serves every request:
//
//	{{if inSegment .Request "red-sox-fan"}} ... {{end}}
//	{{range segments .Request}}{{.}} {{end}}
//	{{with visitor .Request}}{{.ID}}{{end}}
//
// inSegment returns a bool, segments a []string and visitor a *Visitor
// (nil outside a wrapped request; its methods are safe on nil).
func FuncMap() template.FuncMap {
	return template.FuncMap{
		"inSegment": func(x any, name string) bool { return visitorOf(x).In(name) },
		"segments":  func(x any) []string { return visitorOf(x).Segments() },
		"visitor":   func(x any) *Visitor { return visitorOf(x) },
	}
}
