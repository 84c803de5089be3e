package core

import (
	"net/http"

	"github.com/tailorhq/tailor/middleware/internal/reqfacts"
	"github.com/tailorhq/tailor/store"
)

// BeginPreview fills v, which is zero, for a request made in a preview:
// from the request alone, as for a crawler. The visitor's cookie is not
// read, nothing is recorded (no page view, no classification, no first
// visit carried by the cookie), and v is not tracked, so that whatever the
// previewing browser does reaches no profile. v is in segs, and its
// profile is shown (see Visit.Shown), which the caller must no longer
// change.
func (p *Core) BeginPreview(r *http.Request, v *Visit, segs []string, shown *store.Profile) {
	p.stats.Requests.Add(1)
	v.Now = p.cfg.Now()
	v.Facts = reqfacts.Of(r, p.cfg.IsBot(r), p.lim.PathBytes, p.cfg.CountryHeader)
	v.Consent = ConsentContextual
	v.Segments = segs
	v.Shown = shown
}
