// Package edgehook joins the edge-cacheable pages of package middleware
// (Personalizer.Edge) to the packages that take part in them without a
// public API between them: the collection endpoint refreshes the
// visitor's variant key, and slots show the variants a key pins. Package
// middleware sets the functions in its init; they are nil-safe to call
// only after it is imported, which every user of these hooks does.
package edgehook

import "net/http"

// Refresh, given the *middleware.Visitor of r that a handler outside
// Personalizer.Handler recorded events for, adds to h the visitor's
// variant-key cookie, classified now, when the Personalizer has an Edge
// and r's cookie holds another key (or none).
var Refresh func(v any, h http.Header, r *http.Request)

// Pinned, given a *middleware.Visitor, returns the variant of slot that
// the variant key the page is made for pins, if any.
var Pinned func(v any, slot string) (string, bool)
