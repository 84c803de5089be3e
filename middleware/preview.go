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

	"github.com/tailorhq/tailor/middleware/internal/reqfacts"
	"github.com/tailorhq/tailor/store"
)

// The preview link's query parameter and cookie (see Preview).
const (
	previewParam  = "tailor_preview"
	previewCookie = "tailor_preview"
	previewExit   = "exit"
	// MaxPreviewTTL is the longest a preview link may live.
	MaxPreviewTTL = 7 * 24 * time.Hour
)

// A Preview is what a preview link asks for.
//
// Preview links let an editor see the site as the visitors of chosen
// segments (or with chosen slot variants) see it. A link is signed and
// encrypted with the cookie keys and expires; opening it sets a cookie
// that expires with the link, so the next requests of that browser
// act as if the visitor were in the chosen segments (Visitor.Segments, In)
// and, for middleware/slots, shown the chosen variants. An unsigned,
// tampered or expired link or cookie is ignored. A link made by one
// Personalizer works on any other with the same Config.Keys (another
// instance, or the same site after a restart) until it expires; under
// rotated keys, for as long as its key is among them.
//
// A preview shows the site as a representative visitor: Visitor.Profile,
// and so slot conditions, recommendations and templates, read the stored
// profile the link names (PreviewLinkAs; the dashboard picks a member of
// the segment), or an empty profile. Anyone holding such a link sees pages
// made from that visitor's profile while it lasts: hand links out as the
// dashboard's data.
//
// Nothing the previewing browser does is recorded: its requests are not
// identified by the visitor cookie (which is neither read nor written), so
// there is no page view, no classification and no first visit; the
// Visitor is not tracked (Tracked is false, ID is empty, Consent is
// ConsentContextual), so Track, Page, Purchase, Record and Identify do
// nothing, slot experiments neither assign nor expose it, and the
// collection endpoint ignores the browser's calls. Server-side calls about
// a user (TrackUser, IdentifyUser, calls with a write key) are not the
// browser's and are recorded as always.
//
// A preview ends when it expires, or when the browser requests any page
// through Handler with the query parameter tailor_preview=exit (see
// Preview.ExitURL): the response is a redirect to the same page without
// it, which deletes the preview cookie. Templates show a banner with
// Visitor.Preview.
type Preview struct {
	// Segments replace the visitor's segments.
	Segments []string
	// Variants choose a variant per slot name (middleware/slots).
	Variants map[string]string
	// Profile is the id of the stored profile that the site is shown with
	// (Visitor.Profile), or "" for an empty profile.
	Profile string
	// Expires is when the preview ends.
	Expires time.Time

	exit string // ExitURL
}

// previewWire is the token's JSON form.
type previewWire struct {
	Segments []string          `json:"s,omitempty"`
	Variants map[string]string `json:"v,omitempty"`
	Profile  string            `json:"p,omitempty"`
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

// ExitURL returns a link, relative to the site, to the page being shown
// without the preview: following it ends the preview (deletes its cookie)
// and comes back to the page. Empty on nil.
func (pv *Preview) ExitURL() string {
	if pv == nil {
		return ""
	}
	return pv.exit
}

// PreviewLink returns target (a path or URL of the site) with a preview
// token that expires after ttl (at most MaxPreviewTTL). The site is shown
// with an empty profile in segments; see PreviewLinkAs.
func (p *Personalizer) PreviewLink(target string, segments []string, variants map[string]string, ttl time.Duration) (string, error) {
	return p.PreviewLinkAs(target, "", segments, variants, ttl)
}

// PreviewLinkAs is PreviewLink as a representative visitor: while the
// preview lasts, the browser is shown the site with the stored profile
// profileID (a visitor id, or a user's profile id as store.UserProfileID
// makes), read-only, as well as in segments. The profile is read when
// the preview's pages are made, through the profile cache (so at most
// Config.Cache.Freshness old), and they follow it as it changes; once it
// is gone (erased, expired), the preview shows an empty profile. An empty
// profileID is an empty profile.
func (p *Personalizer) PreviewLinkAs(target, profileID string, segments []string, variants map[string]string, ttl time.Duration) (string, error) {
	if ttl <= 0 || ttl > MaxPreviewTTL {
		return "", fmt.Errorf("tailor: preview ttl %v: want more than 0 and at most %v", ttl, MaxPreviewTTL)
	}
	if profileID != "" {
		if err := store.ValidateID(profileID); err != nil {
			return "", fmt.Errorf("tailor: preview profile %q: %w", profileID, err)
		}
	}
	u, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("tailor: preview target %q: %w", target, err)
	}
	tok, err := p.previewToken(previewWire{Segments: segments, Variants: variants, Profile: profileID, Exp: p.cfg.Now().Add(ttl).Unix()})
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
	return p.cookies.Encode(previewCookie, b)
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
	return &Preview{Segments: w.Segments, Variants: w.Variants, Profile: w.Profile, Expires: time.Unix(w.Exp, 0).UTC()}, nil
}

// hasPreview reports whether r may carry a preview link or cookie,
// cheaply.
func hasPreview(r *http.Request) bool {
	return strings.Contains(r.URL.RawQuery, previewParam) || strings.Contains(reqfacts.Header(r.Header, "Cookie"), previewCookie+"=")
}

// beginPreview begins v as a preview when r carries a valid preview link
// or cookie, and reports whether it did; else v is untouched, except that
// an invalid preview cookie is deleted with the response. It costs nothing
// to requests without either.
func (p *Personalizer) beginPreview(r *http.Request, v *Visitor) bool {
	if !hasPreview(r) {
		return false
	}
	var tok string
	fromLink := false
	if strings.Contains(r.URL.RawQuery, previewParam) {
		tok = r.URL.Query().Get(previewParam)
		fromLink = tok != ""
	}
	if tok == "" {
		if c, err := r.Cookie(previewCookie); err == nil {
			tok = c.Value
		}
	}
	if tok == "" {
		return false
	}
	pv, err := p.readPreview(tok, p.cfg.Now())
	if err != nil {
		if !fromLink {
			v.previewCookie = p.previewCookieFor(r, "", time.Time{})
		}
		return false
	}
	pv.exit = requestPath(r, previewExit)
	v.preview = pv
	p.core.BeginPreview(r, &v.v, slices.Clone(pv.Segments), p.previewProfile(r, pv.Profile))
	if fromLink {
		v.previewCookie = p.previewCookieFor(r, tok, pv.Expires)
	}
	return true
}

// previewProfile returns a copy of the stored profile id as this instance
// has it (cached for Config.Cache.Freshness, with the events still
// pending), following merges, or an empty profile if id is empty or
// there is no such profile.
func (p *Personalizer) previewProfile(r *http.Request, id string) *store.Profile {
	for range 4 { // a visitor merged into a user, the user aliased to another
		if id == "" {
			break
		}
		prof, err := p.core.ProfileOf(r.Context(), id)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				p.cfg.Logger.Warn("tailor: reading a preview's profile failed", "profile", id, "err", err)
			}
			break
		}
		if prof.MergedInto == "" {
			return prof
		}
		id = prof.MergedInto
	}
	return store.New("")
}

// previewCookieFor returns the preview cookie of tok, which expires at
// expires (the link's expiry), or, for an empty tok, its deletion.
func (p *Personalizer) previewCookieFor(r *http.Request, tok string, expires time.Time) *http.Cookie {
	c := &http.Cookie{Name: previewCookie, Value: tok, Path: "/", HttpOnly: true,
		Secure: p.cfg.Cookie.Secure || r.TLS != nil, SameSite: http.SameSiteLaxMode}
	if tok == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires
	}
	return c
}

// exitPreview answers a request that ends a preview (tailor_preview=exit)
// with a redirect to the same page without the parameter, deleting the
// preview cookie, and reports whether it did.
func (p *Personalizer) exitPreview(w http.ResponseWriter, r *http.Request) bool {
	if !strings.Contains(r.URL.RawQuery, previewParam) || r.URL.Query().Get(previewParam) != previewExit {
		return false
	}
	h := w.Header()
	h.Add("Set-Cookie", p.previewCookieFor(r, "", time.Time{}).String())
	h.Set("Cache-Control", "no-store")
	h.Set("Location", requestPath(r, ""))
	w.WriteHeader(http.StatusSeeOther)
	return true
}

// requestPath returns the path and query of r as the client sent it
// (before any http.StripPrefix), with the preview parameter set to param,
// or removed if param is empty: a link to the page relative to the site.
func requestPath(r *http.Request, param string) string {
	u := r.URL
	if r.RequestURI != "" {
		if ru, err := url.ParseRequestURI(r.RequestURI); err == nil {
			u = ru
		}
	}
	q := u.Query()
	if param != "" {
		q.Set(previewParam, param)
	} else {
		q.Del(previewParam)
	}
	path := u.EscapedPath()
	// Never a link to another site: "//host" and "/\host" are taken by
	// browsers as such.
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") || strings.HasPrefix(path, "/\\") {
		path = "/"
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return path
}

// Preview returns the preview the visitor's browser is in, or nil.
func (v *Visitor) Preview() *Preview {
	if v == nil {
		return nil
	}
	return v.preview
}
