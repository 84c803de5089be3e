package middleware

import (
	"net/http"
	"strconv"

	"github.com/tailorhq/tailor/middleware/internal/reqfacts"
)

// Consent is what a visitor agreed to, as Config.Consent decides per
// request.
type Consent uint8

const (
	// ConsentDefault leaves the decision to tailor: ConsentFull, or
	// ConsentContextual when the request carries Sec-GPC: 1 (Global
	// Privacy Control) or DNT: 1 (Do Not Track).
	ConsentDefault Consent = iota
	// ConsentNone: no personalisation at all. No cookie, nothing stored,
	// no segments.
	ConsentNone
	// ConsentContextual: segments from the request alone (path, referrer,
	// UTM parameters, device, country), as for crawlers. No cookie,
	// nothing stored.
	ConsentContextual
	// ConsentFull: the visitor is recognised by the cookie and what they
	// do is recorded.
	ConsentFull
)

// String returns "default", "none", "contextual" or "full".
func (c Consent) String() string {
	switch c {
	case ConsentDefault:
		return "default"
	case ConsentNone:
		return "none"
	case ConsentContextual:
		return "contextual"
	case ConsentFull:
		return "full"
	}
	return "Consent(" + strconv.Itoa(int(c)) + ")"
}

// consent returns the consent of r, never ConsentDefault.
//
// A visitor who comes with a cookie but without full consent withdrew it:
// the caller erases them (see withdraw).
func (p *Personalizer) consent(r *http.Request) Consent {
	if p.cfg.Consent != nil {
		if c := p.cfg.Consent(r); c >= ConsentNone && c <= ConsentFull {
			return c
		}
	}
	if reqfacts.Header(r.Header, "Sec-Gpc") == "1" || reqfacts.Header(r.Header, "Dnt") == "1" {
		return ConsentContextual
	}
	return ConsentFull
}
