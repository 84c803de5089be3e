package middleware

import (
	"io"
	"net/http"
	"strings"

	"github.com/tailorhq/tailor/store"
)

// responseWriter sets the visitor cookie and the caching headers before the
// first byte of the response.
type responseWriter struct {
	http.ResponseWriter
	v      *Visitor
	r      *http.Request
	wrote  bool
	status int
}

func (w *responseWriter) writeHeaders(status int) {
	if w.wrote {
		return
	}
	w.wrote, w.status = true, status
	h := w.ResponseWriter.Header()
	v := w.v
	switch {
	case v.v.ExpireCookie:
		h.Add("Set-Cookie", v.p.cookies.ExpiredHeader(w.r))
	case v.v.SetCookie && v.v.Tracked:
		var first *store.Event
		if v.v.New && !v.skipPage && status < 400 && v.p.cfg.PageView(w.r) {
			pv := v.pageView()
			pv.Time = v.v.Now
			first = &pv
		}
		if c, err := v.p.cookies.SetCookie(v.v.CookieID(), first, w.r, v.v.Now); err == nil {
			if len(h["Set-Cookie"]) == 0 {
				v.headers[2] = c
				h["Set-Cookie"] = v.headers[2:3:3]
			} else {
				h.Add("Set-Cookie", c)
			}
		} else {
			v.p.cfg.Logger.Error("tailor: encoding the visitor cookie failed", "err", err)
		}
	}
	if v.previewCookie != nil {
		h.Add("Set-Cookie", v.previewCookie.String())
	}
	if e := v.p.edge.Load(); e != nil {
		e.refresh(h, w.r, v)
	}
	// The values set here are backed by the visitor's own array, each
	// clipped to its length, so that a handler appending to one copies it.
	var cc string // h.Get without canonicalizing a canonical key
	if vs := h["Cache-Control"]; len(vs) > 0 {
		cc = vs[0]
	}
	v.headers[0] = privateCacheControl(cc)
	h["Cache-Control"] = v.headers[0:1:1]
	switch vary := h["Vary"]; {
	case len(vary) == 0:
		v.headers[1] = "Cookie"
		h["Vary"] = v.headers[1:2:2]
	case !varyHasCookie(vary):
		h.Add("Vary", "Cookie")
	}
}

// privateCacheControl makes a Cache-Control value private, keeping a value
// that is already at least as strict.
func privateCacheControl(cc string) string {
	if cc == "" {
		return "private"
	}
	lower := strings.ToLower(cc)
	if strings.Contains(lower, "private") || strings.Contains(lower, "no-store") {
		return cc
	}
	var out []string
	for _, d := range strings.Split(cc, ",") {
		d = strings.TrimSpace(d)
		k := strings.ToLower(d)
		if k == "public" || k == "" || strings.HasPrefix(k, "s-maxage") {
			continue
		}
		out = append(out, d)
	}
	return strings.Join(append([]string{"private"}, out...), ", ")
}

func varyHasCookie(vs []string) bool {
	for _, v := range vs {
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if f == "*" || strings.EqualFold(f, "Cookie") {
				return true
			}
		}
	}
	return false
}

func (w *responseWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code) // informational: headers come later
		return
	}
	w.writeHeaders(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.writeHeaders(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// WriteString writes s without converting it to bytes when the
// underlying writer can (net/http's does), as io.WriteString expects.
func (w *responseWriter) WriteString(s string) (int, error) {
	if !w.wrote {
		w.writeHeaders(http.StatusOK)
	}
	return io.WriteString(w.ResponseWriter, s)
}

// Flush sends buffered data, for handlers that stream without
// http.ResponseController.
func (w *responseWriter) Flush() {
	if !w.wrote {
		w.writeHeaders(http.StatusOK)
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
