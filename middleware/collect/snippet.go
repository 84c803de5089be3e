package collect

import (
	_ "embed"
	"net/http"
	"strconv"

	"github.com/tailorhq/tailor/middleware/internal/tracking"
)

// snippet is the browser snippet, t.js: it sends clicks on elements with a
// data-track attribute, and the calls of tailor.track(name, props), to the
// collection endpoint with navigator.sendBeacon (fetch with keepalive where
// there is none). It is written small by hand: under 2 KB, no dependency.
//
//go:embed t.js
var snippet []byte

// serveSnippet answers GET and HEAD of t.js.
func (p *Collector) serveSnippet(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, &tracking.FieldError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: r.Method + " t.js: only GET and HEAD"})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(snippet)))
	h.Set("Cache-Control", "max-age=3600")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(snippet)
	}
}
