package middleware

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Preview links let an editor see the site as the visitors of chosen
// segments (or with chosen slot variants) see it. A link is signed and
// encrypted with the cookie keys and expires; opening it sets a session
// cookie, so the next requests of that browser act as if the visitor were in
// the chosen segments (Visitor.Segments, In) and, for middleware/slots,
// shown the chosen variants. An unsigned, tampered or expired link or cookie
// is ignored. Templates show a banner with Visitor.Preview.
const (
	previewParam  = "tailor_preview"
	previewCookie = "tailor_preview"
	// MaxPreviewTTL is the longest a preview link may live.
	MaxPreviewTTL = 7 * 24 * time.Hour
)

// A Preview is what a preview link asks for.
type Preview struct {
	// Segments replace the visitor's segments.
	Segments []string
	// Variants choose a variant per slot name (middleware/slots).
	Variants map[string]string
	// Expires is when the preview ends.
	Expires time.Time
}

// previewWire is the token's JSON form.
type previewWire struct {
	Segments []string          `json:"s,omitempty"`
	Variants map[string]string `json:"v,omitempty"`
	Exp      int64             `json:"e"` // Unix seconds
}

// Variant returns the variant the preview chooses for slot, if any.
func (pv *Preview) Variant(slot string) (string, bool) {
	if pv == nil {
		return "", false
	}
	v, ok := pv.Variants[slot]
	return v, ok
}

// PreviewLink returns target (a path or URL of the site) with a preview
// token that expires after ttl (at most MaxPreviewTTL).
func (p *Personalizer) PreviewLink(target string, segments []string, variants map[string]string, ttl time.Duration) (string, error) {
	if ttl <= 0 || ttl > MaxPreviewTTL {
		return "", fmt.Errorf("tailor: preview ttl %v: want more than 0 and at most %v", ttl, MaxPreviewTTL)
	}
	u, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("tailor: preview target %q: %w", target, err)
	}
	tok, err := p.previewToken(previewWire{Segments: segments, Variants: variants, Exp: p.cfg.Now().Add(ttl).Unix()})
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set(previewParam, tok)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func (p *Personalizer) previewToken(pv previewWire) (string, error) {
	b, err := json.Marshal(pv)
	if err != nil {
		return "", err
	}
	return p.cookies.Encode(previewCookie, b) // b is fresh: encrypted in place
}

var errPreview = errors.New("tailor: invalid or expired preview")

func (p *Personalizer) readPreview(tok string, now time.Time) (*Preview, error) {
	b, ok := p.cookies.Decode(previewCookie, tok)
	if !ok {
		return nil, errPreview
	}
	var w previewWire
	if json.Unmarshal(b, &w) != nil || w.Exp <= now.Unix() {
		return nil, errPreview
	}
	return &Preview{Segments: w.Segments, Variants: w.Variants, Expires: time.Unix(w.Exp, 0).UTC()}, nil
}

// preview applies a preview link or cookie to v. It costs nothing to
// requests without either.
func (p *Personalizer) preview(r *http.Request, v *Visitor) {
	var tok string
	fromLink := false
	if strings.Contains(r.URL.RawQuery, previewParam) {
		tok, fromLink = r.URL.Query().Get(previewParam), true
	}
	if tok == "" && strings.Contains(r.Header.Get("Cookie"), previewCookie+"=") {
		if c, err := r.Cookie(previewCookie); err == nil {
			tok = c.Value
		}
	}
	if tok == "" {
		return
	}
	pv, err := p.readPreview(tok, v.v.Now)
	if err != nil {
		if !fromLink {
			v.previewCookie = &http.Cookie{Name: previewCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode}
		}
		return
	}
	v.preview = pv
	v.v.Segments = slices.Clone(pv.Segments)
	if fromLink {
		v.previewCookie = &http.Cookie{Name: previewCookie, Value: tok, Path: "/", Expires: pv.Expires,
			HttpOnly: true, Secure: p.cfg.Cookie.Secure || r.TLS != nil, SameSite: http.SameSiteLaxMode}
	}
}

// Preview returns the preview the visitor's browser is in, or nil.
func (v *Visitor) Preview() *Preview {
	if v == nil {
		return nil
	}
	return v.preview
}
