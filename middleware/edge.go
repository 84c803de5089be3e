package middleware

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/middleware/internal/edgehook"
	"github.com/tailorhq/tailor/middleware/internal/reqfacts"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// VariantHeader is the request header that the cache in front of the
// site (the edge) fills from the variant-key cookie before it looks a page
// up, and the response header in which a cacheable page names the key it
// was made for. Cacheable pages answer Vary: Tailor-Variant.
const VariantHeader = "Tailor-Variant"

// Bounds of EdgeConfig: the variant key must stay low-cardinality, as the
// edge keeps one copy of each page per key.
const (
	MaxEdgeSegments = 8 // at most 2^8 combinations
	MaxEdgeSlots    = 4
)

// maxVariantKey bounds the variant key read from a request.
const maxVariantKey = 512

// A VariantPicker chooses the variant of a slot for a visitor, as the page
// would show it. middleware/slots' *Engine is one.
type VariantPicker interface {
	// PickVariant returns the key of the variant of slot shown to v, ""
	// for an unknown slot.
	PickVariant(v *Visitor, slot string) string
}

// EdgeConfig declares what the pages that a cache at the edge may keep
// vary on: the variant key of a visitor is made of these and of nothing
// else. Keep it small: the edge keeps one copy of a page per key, and the
// keys are all the combinations of the segments' memberships and the
// slots' variants.
type EdgeConfig struct {
	// Segments are the segments the pages vary on, highest priority first
	// (the order Visitor.Segments gives them in on a cacheable page). The
	// key holds which of them the visitor is in. A name that the Engine
	// does not define is never matched. At most MaxEdgeSegments.
	Segments []string
	// Slots are the slots (middleware/slots) the pages vary on: the key
	// holds the variant of each that Picker chooses for the visitor, and a
	// cacheable page shows those variants. A slot with an experiment
	// exposes the visitor when their key is made (on a request that
	// reaches the origin), since the cached pages show that variant. At
	// most MaxEdgeSlots.
	Slots []string
	// Picker chooses the slots' variants; required with Slots. Give the
	// site's *slots.Engine.
	Picker VariantPicker
	// MaxAge is how long browsers may keep a cacheable page
	// (Cache-Control max-age). Default 0: they ask again each time, and
	// the edge answers.
	MaxAge time.Duration
	// SMaxAge is how long the edge keeps a cacheable page
	// (Cache-Control s-maxage): a change of the page's content (a new
	// slots file, a deploy) shows once its copies expire, unless the edge
	// is purged. Default 60 seconds.
	SMaxAge time.Duration
}

// An Edge makes pages that a shared cache in front of the site (Varnish, a
// CDN) may keep and serve to every visitor of the same variant: see
// Personalizer.Edge.
type Edge struct {
	p            *Personalizer
	segments     []string
	slots        []string
	picker       VariantPicker
	cookie       string
	cacheControl string
	macKeys      [][]byte // one per Config.Keys pair, newest first
	declared     [32]byte // digest of the declaration: keys of another one never verify

	inside, setCookie sync.Once // log each misuse once
	refused           atomic.Uint64

	// keys memoizes encode under the newest keys, by payload: there are
	// few variants, and an HMAC per response is not free. At most
	// maxMemoKeys are kept (a Picker returning unbounded variants would
	// not fill memory); memoized counts them.
	keys     sync.Map // string → string
	memoized atomic.Int64
}

const maxMemoKeys = 4096

// Edge turns on variant keys for p and returns the Edge whose Cacheable
// wraps the pages that a cache at the edge may keep. A Personalizer has at
// most one Edge; call it before serving.
//
// # How it works
//
// From then on every response of p.Handler (and of the collection
// endpoint, middleware/collect, to the browser snippet) carries, when it
// changed, a second cookie, named Config.Cookie.Name + "_v" (default
// "tailor_v"): the visitor's variant key, which holds only what cfg
// declares (which of cfg.Segments the visitor is in, and the variant of
// each of cfg.Slots), signed with an HMAC-SHA256 under a key derived from
// Config.Keys. The key has no visitor id, no time and no randomness: every
// visitor of one variant gets the same value, so there are few keys.
//
// The edge copies that cookie's value into the request header
// Tailor-Variant (VariantHeader), drops the request's cookies, and looks
// the page up under its URL and that header. On a miss the origin, whose
// handler is wrapped by Cacheable, makes the page for the key alone, as
// for a visitor in exactly the key's segments, shown the key's variants,
// with an empty profile, untracked. The response carries
// Cache-Control: public, max-age=MaxAge, s-maxage=SMaxAge, Vary:
// Tailor-Variant, Tailor-Variant: the key, and no Set-Cookie (Cacheable
// removes any the handler sets). A request without the header, or with
// it empty (the edge let it through with its cookies: the visitor's first
// request, one without a key cookie, or a site without an edge) is served
// as p.Handler serves it: personalised, private, with both cookies; so is a
// request with a preview link (see Preview). A visitor who declined
// tracking (ConsentNone) gets no key cookie, and loses the one they had;
// one classified from the request alone (ConsentContextual) gets the key
// of their contextual segments.
//
// # Signed, and checked by the origin
//
// The origin checks every key it is sent: a key that does not verify
// (forged, made under keys no longer in Config.Keys, or for another
// declaration of EdgeConfig) gets the page of no segment and default
// variants, with Cache-Control: no-store, so that the edge keeps nothing
// under it, and a Set-Cookie that deletes the key cookie, so that the next
// request reaches the origin with the visitor's cookie and gets a valid
// key. So the edge only ever keeps pages under keys that tailor issued:
// nobody can fill it with arbitrary keys, and a visitor cannot choose a
// variant they were never given. (Keys are not tied to visitors: anyone
// may copy another's key cookie and see that variant's pages, which carry
// nothing of that visitor.) The check is the origin's, as the signing
// key never leaves it: the edge checks only a key's form (see the VCL in
// the README), and keeps nothing the origin answers with no-store.
//
// # What a cacheable page may not do
//
// The handler must not read the request's cookies or anything else of
// the visitor, nor set a cookie: the page is shared by every visitor of
// the key. The Visitor it gets is not tracked (ID is empty; Track, Page,
// Purchase and Describe record nothing) and has an empty profile:
// per-visitor content such as recommendations comes another way, from a
// fragment the page fetches from a handler wrapped by p.Handler (private,
// not cached), or is left out. Page views are recorded by the browser
// snippet (middleware/collect's t.js, loaded with data-page), since the
// origin does not see the requests the edge answers; also when the page is
// served personalised, so that each load of the page counts once.
//
// # When segments change
//
// A visitor's key is refreshed by every response of the origin to them:
// p.Handler's, from the segments the request was classified into (before
// its own page view is recorded), and the collection endpoint's to the
// snippet, after recording the call's events. So a change of segments
// reaches the key with the first response of the origin made after the
// change was recorded, and the pages from the next request on. A change
// made by the snippet's page view of a cached page shows from the next
// page on; one made by a page of p.Handler (its page view) reaches the
// key with the next response of the origin: if the next page is cached,
// its snippet's call, so that page still shows the old variant and the
// one after it the new. A visitor who loads no snippet keeps their key
// until a page of p.Handler. A cached copy lives at most SMaxAge (and
// the edge's grace).
func (p *Personalizer) Edge(cfg EdgeConfig) (*Edge, error) {
	var errs []error
	seen := map[string]bool{}
	if len(cfg.Segments) == 0 && len(cfg.Slots) == 0 {
		errs = append(errs, errors.New("EdgeConfig: name at least one of Segments and Slots"))
	}
	if len(cfg.Segments) > MaxEdgeSegments {
		errs = append(errs, fmt.Errorf("EdgeConfig.Segments: %d segments, at most %d", len(cfg.Segments), MaxEdgeSegments))
	}
	for i, s := range cfg.Segments {
		if s == "" || seen["s:"+s] {
			errs = append(errs, fmt.Errorf("EdgeConfig.Segments[%d]: %q is empty or named twice", i, s))
		}
		seen["s:"+s] = true
	}
	if len(cfg.Slots) > MaxEdgeSlots {
		errs = append(errs, fmt.Errorf("EdgeConfig.Slots: %d slots, at most %d", len(cfg.Slots), MaxEdgeSlots))
	}
	for i, s := range cfg.Slots {
		if s == "" || seen["l:"+s] {
			errs = append(errs, fmt.Errorf("EdgeConfig.Slots[%d]: %q is empty or named twice", i, s))
		}
		seen["l:"+s] = true
	}
	if len(cfg.Slots) > 0 && cfg.Picker == nil {
		errs = append(errs, errors.New("EdgeConfig.Picker: required with Slots (give the site's *slots.Engine)"))
	}
	if cfg.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("EdgeConfig.MaxAge: %v is negative", cfg.MaxAge))
	}
	if cfg.SMaxAge < 0 {
		errs = append(errs, fmt.Errorf("EdgeConfig.SMaxAge: %v is negative", cfg.SMaxAge))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("tailor: invalid edge config: %w", errors.Join(errs...))
	}
	if cfg.SMaxAge == 0 {
		cfg.SMaxAge = time.Minute
	}
	e := &Edge{
		p: p, segments: append([]string(nil), cfg.Segments...), slots: append([]string(nil), cfg.Slots...),
		picker: cfg.Picker, cookie: p.cfg.Cookie.Name + "_v",
		cacheControl: fmt.Sprintf("public, max-age=%d, s-maxage=%d", int(cfg.MaxAge/time.Second), int(cfg.SMaxAge/time.Second)),
	}
	d := sha256.New()
	for _, s := range e.segments {
		fmt.Fprintf(d, "s%d:%s\x00", len(s), s)
	}
	for _, s := range e.slots {
		fmt.Fprintf(d, "l%d:%s\x00", len(s), s)
	}
	d.Sum(e.declared[:0])
	for _, k := range p.cfg.Keys {
		m := hmac.New(sha256.New, k.Hash)
		m.Write([]byte("tailor edge variant key v1"))
		e.macKeys = append(e.macKeys, m.Sum(nil))
	}
	if !p.edge.CompareAndSwap(nil, e) {
		return nil, errors.New("tailor: this Personalizer already has an Edge")
	}
	return e, nil
}

// CookieName returns the name of the variant-key cookie, which the edge
// copies into the Tailor-Variant request header.
func (e *Edge) CookieName() string { return e.cookie }

// Refused returns how many requests came with a Tailor-Variant header that
// did not verify.
func (e *Edge) Refused() uint64 { return e.refused.Load() }

// Cacheable returns next wrapped for a cache at the edge: a request with
// the Tailor-Variant header gets the page made for that variant key,
// public, the same for every visitor of the key; one without it is served
// as Personalizer.Handler serves it (see Personalizer.Edge). Mount it
// beside Handler, not inside it: inside, it serves every request as
// Handler did, privately, and logs that once.
func (e *Edge) Cacheable(next http.Handler) http.Handler {
	// Served personalised, the page's view is the snippet's all the same,
	// so that each load counts once, whichever way it was served.
	personal := e.p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).SkipPageView()
		next.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if FromContext(r.Context()) != nil {
			e.inside.Do(func() {
				e.p.cfg.Logger.Warn("tailor: an Edge's Cacheable handler is mounted inside Personalizer.Handler; " +
					"mount it beside it, or its pages are never cacheable")
			})
			next.ServeHTTP(w, r)
			return
		}
		hv := r.Header.Values(VariantHeader)
		// Without a key (or with an empty one: an edge that filled it
		// from a missing cookie), or with a preview link, the page is
		// the visitor's own.
		if len(hv) == 0 || len(hv) == 1 && hv[0] == "" || strings.Contains(r.URL.RawQuery, previewParam) {
			personal.ServeHTTP(w, r)
			return
		}
		ew := &edgeWriter{ResponseWriter: w, e: e, r: r}
		var va variant
		if len(hv) == 1 {
			va, ew.key = e.decode(hv[0])
		}
		if ew.key == "" {
			e.refused.Add(1)
			va = variant{}
		}
		v := &Visitor{p: e.p, pinned: e.pins(va)}
		e.p.core.BeginPreview(r, &v.v, e.members(va), store.New(""))
		next.ServeHTTP(ew, r.WithContext(context.WithValue(r.Context(), visitorKey, v)))
		if !ew.wrote {
			ew.writeHeaders()
		}
	})
}

// A variant is what a key holds: which of the Edge's segments the visitor
// is in (bit i for segments[i]), and the variant of each of its slots.
type variant struct {
	mask  uint8
	slots []string // aligned with Edge.slots; "" unknown
}

// variantOf returns v's variant, from v's segments and the Picker.
func (e *Edge) variantOf(v *Visitor) variant {
	var va variant
	for i, s := range e.segments {
		if v.In(s) {
			va.mask |= 1 << i
		}
	}
	if len(e.slots) > 0 {
		va.slots = make([]string, len(e.slots))
		for i, s := range e.slots {
			va.slots[i] = e.picker.PickVariant(v, s)
		}
	}
	return va
}

// members returns the segments of va, in the Edge's order.
func (e *Edge) members(va variant) []string {
	var segs []string
	for i, s := range e.segments {
		if va.mask&(1<<i) != 0 {
			segs = append(segs, s)
		}
	}
	return segs
}

// pins returns the slot variants of va, never nil, so that a cacheable
// page's visitor is told from others.
func (e *Edge) pins(va variant) map[string]string {
	m := make(map[string]string, len(va.slots))
	for i, s := range va.slots {
		if s != "" {
			m[e.slots[i]] = s
		}
	}
	return m
}

var b64 = base64.RawURLEncoding

// macBytes is the length of a key's signature: 128 bits.
const macBytes = 16

// encode returns the key of va under the newest keys: the payload (the
// mask, then each slot's variant as a length and bytes) and its signature,
// each in unpadded base64url, joined by a dot. A variant longer than 255
// bytes is left out (the page then picks the slot for the key's segments).
func (e *Edge) encode(va variant) string {
	var buf [64]byte
	pl := append(buf[:0], va.mask)
	for _, s := range va.slots {
		if len(s) > 255 {
			s = ""
		}
		pl = append(pl, byte(len(s)))
		pl = append(pl, s...)
	}
	if k, ok := e.keys.Load(string(pl)); ok {
		return k.(string)
	}
	k := b64.EncodeToString(pl) + "." + b64.EncodeToString(e.mac(e.macKeys[0], pl))
	if e.memoized.Add(1) <= maxMemoKeys {
		e.keys.Store(string(pl), k)
	}
	return k
}

func (e *Edge) mac(key, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(e.declared[:])
	m.Write(payload)
	return m.Sum(nil)[:macBytes]
}

// decode returns the variant of key s and s itself, or "" if s does not
// verify under any of the keys or does not fit the declaration.
func (e *Edge) decode(s string) (variant, string) {
	if len(s) > maxVariantKey {
		return variant{}, ""
	}
	p64, m64, ok := strings.Cut(s, ".")
	if !ok {
		return variant{}, ""
	}
	pl, err1 := b64.DecodeString(p64)
	sig, err2 := b64.DecodeString(m64)
	if err1 != nil || err2 != nil || len(sig) != macBytes || len(pl) == 0 {
		return variant{}, ""
	}
	verified := false
	for _, k := range e.macKeys {
		if hmac.Equal(sig, e.mac(k, pl)) {
			verified = true
			break
		}
	}
	if !verified {
		return variant{}, ""
	}
	va := variant{mask: pl[0]}
	if len(e.segments) < 8 && va.mask>>len(e.segments) != 0 {
		return variant{}, ""
	}
	rest := pl[1:]
	for range e.slots {
		if len(rest) == 0 || len(rest) < 1+int(rest[0]) {
			return variant{}, ""
		}
		va.slots = append(va.slots, string(rest[1:1+int(rest[0])]))
		rest = rest[1+int(rest[0]):]
	}
	if len(rest) != 0 {
		return variant{}, ""
	}
	return va, s
}

// refresh adds to h the cookie of v's current key when r's differs, or
// the deletion of r's key cookie when v is being forgotten or declined
// tracking. Previews and cacheable pages leave it alone.
func (e *Edge) refresh(h http.Header, r *http.Request, v *Visitor) {
	if v.preview != nil || v.pinned != nil {
		return
	}
	old := ""
	if c, err := r.Cookie(e.cookie); err == nil {
		old = c.Value
	}
	if v.v.ExpireCookie || v.Consent() == ConsentNone {
		if old != "" {
			h.Add("Set-Cookie", e.cookieOf(r, "").String())
		}
		return
	}
	if key := e.encode(e.variantOf(v)); key != old {
		h.Add("Set-Cookie", e.cookieOf(r, key).String())
	}
}

// cookieOf returns the key cookie holding key, or its deletion for "". It
// lives as long as the visitor cookie. JavaScript has no use for it.
func (e *Edge) cookieOf(r *http.Request, key string) *http.Cookie {
	cc := e.p.cfg.Cookie
	c := &http.Cookie{Name: e.cookie, Value: key, Path: "/", Domain: cc.Domain, HttpOnly: true,
		Secure: cc.Secure || r.TLS != nil, SameSite: http.SameSiteLaxMode, MaxAge: int(cc.MaxAge / time.Second)}
	if key == "" {
		c.MaxAge = -1
	}
	return c
}

// edgeWriter writes the headers of a cacheable page before its first
// byte: the caching headers, the key, and no cookie.
type edgeWriter struct {
	http.ResponseWriter
	e     *Edge
	r     *http.Request
	key   string // "" for a key that did not verify
	wrote bool
}

func (w *edgeWriter) writeHeaders() {
	if w.wrote {
		return
	}
	w.wrote = true
	h := w.ResponseWriter.Header()
	if len(h.Values("Set-Cookie")) > 0 {
		h.Del("Set-Cookie")
		w.e.setCookie.Do(func() {
			w.e.p.cfg.Logger.Warn("tailor: a cacheable page's handler set a cookie, which was removed: a page the edge keeps is shared by every visitor of its variant",
				"path", w.r.URL.Path)
		})
	}
	if w.key == "" {
		h.Set("Cache-Control", "no-store")
		h.Add("Set-Cookie", w.e.cookieOf(w.r, "").String())
	} else {
		if cc := strings.ToLower(h.Get("Cache-Control")); !strings.Contains(cc, "no-store") && !strings.Contains(cc, "private") && !strings.Contains(cc, "no-cache") {
			h.Set("Cache-Control", w.e.cacheControl)
		}
		h.Set(VariantHeader, w.key)
	}
	if !varyHas(h.Values("Vary"), VariantHeader) {
		h.Add("Vary", VariantHeader)
	}
}

// varyHas reports whether the Vary values vs name field (or *).
func varyHas(vs []string, field string) bool {
	for _, v := range vs {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, field) {
				return true
			}
		}
	}
	return false
}

func (w *edgeWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.writeHeaders()
	w.ResponseWriter.WriteHeader(code)
}

func (w *edgeWriter) Write(b []byte) (int, error) {
	w.writeHeaders()
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data, for handlers that stream without
// http.ResponseController.
func (w *edgeWriter) Flush() {
	w.writeHeaders()
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *edgeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// refreshFor is edgehook.Refresh: the collection endpoint's refresh of
// the key of its visitor v (found outside Handler, not classified), from
// their profile as it is now (after the call's events) and r's facts.
func (v *Visitor) refreshFor(h http.Header, r *http.Request) {
	if v == nil || v.rw.v != nil || v.preview != nil || !v.v.Tracked { // Handler's visitor: Handler refreshes
		return
	}
	p := v.p
	e := p.edge.Load()
	if e == nil {
		return
	}
	if eng := p.cfg.Engine; eng != nil {
		facts := reqfacts.Of(r, false, len(r.URL.Path), p.cfg.CountryHeader)
		facts.Path = v.v.Facts.Path
		var segs []string
		p.core.ReadProfile(&v.v, func(prof *store.Profile) {
			segs = eng.Classify(&rules.Input{Profile: prof, Request: facts, Now: v.v.Now})
		})
		// v was not classified (VisitorOf), and its caller is done with it.
		v.v.Segments = segs
	}
	e.refresh(h, r, v)
}

func init() {
	edgehook.Refresh = func(x any, h http.Header, r *http.Request) {
		v, _ := x.(*Visitor)
		v.refreshFor(h, r)
	}
	edgehook.Pinned = func(x any, slot string) (string, bool) {
		v, _ := x.(*Visitor)
		if v == nil || v.pinned == nil {
			return "", false
		}
		s, ok := v.pinned[slot]
		return s, ok
	}
}
