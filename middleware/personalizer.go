package middleware

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/middleware/internal/cookie"
	"github.com/tailorhq/tailor/middleware/internal/core"
	"github.com/tailorhq/tailor/middleware/internal/reqfacts"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// A Personalizer recognises visitors, records what they do, classifies them
// into segments and puts a Visitor into each request's context. Make one
// with New, wrap handlers with Handler, and Close it on shutdown.
type Personalizer struct {
	cfg       Config
	cookies   *cookie.Codec
	core      *core.Core
	obs       observers
	closeOnce sync.Once // closes cookies

	edge atomic.Pointer[Edge] // set once by Edge; nil without
}

// New returns a Personalizer for cfg, or an error naming each invalid field.
// It starts the background flusher; call Close to stop it.
func New(cfg Config) (*Personalizer, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	p := &Personalizer{cfg: cfg}
	cc := cookie.Config{Name: cfg.Cookie.Name, MaxAge: cfg.Cookie.MaxAge, Domain: cfg.Cookie.Domain, Secure: cfg.Cookie.Secure}
	for _, k := range cfg.Keys {
		cc.Keys = append(cc.Keys, cookie.Key{Hash: k.Hash, Block: k.Block})
	}
	p.cookies = cookie.New(cc)
	c, err := core.New(core.Config{
		Store: cfg.Store, Engine: cfg.Engine, Cookies: p.cookies, CookieMaxAge: cfg.Cookie.MaxAge,
		VisitTimeout: cfg.VisitTimeout, FlushInterval: cfg.WriteBehind.FlushInterval,
		FlushBatch: cfg.WriteBehind.FlushBatch, MaxPending: cfg.WriteBehind.MaxPending,
		StoreTimeout: cfg.StoreTimeout, LoadTimeout: cfg.LoadTimeout, Freshness: cfg.Cache.Freshness,
		CacheBytes: cfg.Cache.Bytes, Retention: cfg.Retention, JournalRetention: cfg.JournalRetention,
		RecheckInterval: cfg.RecheckInterval, IsBot: cfg.IsBot,
		Consent:       func(r *http.Request) core.Consent { return core.Consent(p.consent(r)) },
		CountryHeader: cfg.CountryHeader, Logger: cfg.Logger, Now: cfg.Now,
		Hooks: core.Hooks{
			WantsSegments: p.obs.segments,
			SegmentChange: func(c core.SegmentChange) { p.obs.segmentChanged(SegmentChange(c)) },
			WantsTiming:   p.obs.classify,
			Classified:    p.obs.classified,
		},
	})
	if err != nil {
		p.cookies.Close()
		return nil, err
	}
	p.core = c
	return p, nil
}

// DefaultIsBot reports whether r comes from a known crawler, monitor or
// HTTP library, by its User-Agent, or has no User-Agent at all. Note that
// curl, wget and Go's own HTTP client count as crawlers: set a browser's
// User-Agent in tests and scripts that must be tracked.
func DefaultIsBot(r *http.Request) bool { return reqfacts.IsBot(r) }

// Handler returns next wrapped: each request gets a Visitor in its context
// (see FromContext), the visitor cookie, and Cache-Control: private and
// Vary: Cookie on the response. GET requests answered with a status below
// 400 are recorded as page views once next returns. A request in a preview
// (see PreviewLink) records nothing; one with the query parameter
// tailor_preview=exit is answered, without calling next, with a redirect
// that ends the preview.
func (p *Personalizer) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.exitPreview(w, r) {
			return
		}
		// One allocation holds the visitor, its response writer and its
		// context: they live as long as the request.
		v := &Visitor{p: p}
		if !p.beginPreview(r, v) {
			p.core.Begin(r, &v.v)
		}
		v.rw = responseWriter{ResponseWriter: w, v: v, r: r}
		rw := &v.rw
		v.ctx = visitorContext{Context: r.Context(), v: v}
		next.ServeHTTP(rw, r.WithContext(&v.ctx))
		if !rw.wrote {
			rw.writeHeaders(http.StatusOK)
		}
		if v.v.Tracked && !v.v.New && !v.skipPage && rw.status < 400 && p.cfg.PageView(r) {
			p.core.RecordPageView(&v.v, v.pageView())
		}
	})
}

// Ready returns a channel that is closed once the Personalizer hears the
// store's change announcements (store.Invalidator), at once for a store
// that makes none. New waits for it up to Config.StoreTimeout. Until then,
// another instance's changes reach this one only when its cached copies
// expire (CacheConfig.Freshness); an erasure holds all the same, as the
// store refuses writes of an erased profile for a while (store.ErrErased).
func (p *Personalizer) Ready() <-chan struct{} { return p.core.Ready() }

// Store returns the store profiles are kept in.
func (p *Personalizer) Store() store.Store { return p.cfg.Store }

// Engine returns the segment engine, or nil.
func (p *Personalizer) Engine() *rules.Engine { return p.cfg.Engine }

// Profile returns a copy of the visitor's profile as this instance sees it:
// the stored profile with the events still pending. It returns
// store.ErrNotFound for a visitor without profile.
func (p *Personalizer) Profile(ctx context.Context, visitorID string) (*store.Profile, error) {
	return p.core.ProfileOf(ctx, visitorID)
}

// Forget erases a visitor or a user: id is a visitor id (as Visitor.ID
// returns) or a user id (as given to Identify). It removes from this
// instance's cache and pending queue, and deletes from the store, the
// visitor's profile; or the user's profile, every profile merged into it
// (the visitors who identified as the user) and the profile it was merged
// into. Those visitors' cookies are deleted on their next response, and
// nothing more is recorded for them for a few minutes (requests in
// flight); later requests with a cookie that names an erased user start
// afresh.
//
// Other instances learn of the erasure when the store announces the
// deletion (store.Invalidator: every store of tailor does) and then do the
// same; an instance that missed the announcement learns of it from the
// store's tombstone (store.ErrErased), which refuses the writes of the
// erased profiles for store.DefaultTombstoneTTL (or the store's own
// setting). With a store that keeps no tombstones, run Forget on every
// instance.
func (p *Personalizer) Forget(ctx context.Context, id string) error {
	return p.core.Forget(ctx, id)
}

// Flush writes every pending event to the store now.
func (p *Personalizer) Flush(ctx context.Context) error { return p.core.Flush(ctx) }

// Close stops the flusher and writes every pending event to the store,
// retrying until ctx is done. Call it after the server has stopped serving
// (http.Server.Shutdown). It does not close Config.Store. The first page
// views of new visitors are not pending: they are in the visitors' cookies
// until they come back.
func (p *Personalizer) Close(ctx context.Context) error {
	err := p.core.Close(ctx)
	p.closeOnce.Do(p.cookies.Close)
	return err
}

// Stats returns the current counters.
func (p *Personalizer) Stats() Stats {
	c := p.core.Counters()
	return Stats{
		Requests: c.Requests.Load(), Bots: c.Bots.Load(), NewVisitors: c.NewVisitors.Load(),
		RejectedCookies: c.RejectedCookies.Load(), RenewedCookies: c.RenewedCookies.Load(),
		Events: c.Events.Load(), Flushed: c.Flushed.Load(), Flushes: c.Flushes.Load(),
		FlushErrors: c.FlushErrors.Load(), FlushTime: time.Duration(c.FlushNanos.Load()), ClassifyCached: c.ClassifyCached.Load(),
		LoadErrors: c.LoadErrors.Load(), Dropped: c.Dropped.Load(),
		Pending: p.core.Pending(), Returned: c.Returned.Load(),
		CacheHits: c.CacheHits.Load(), CacheMisses: c.CacheMisses.Load(),
		RuleErrors: p.cfg.Engine.Errors(),
		Collected:  c.Collected.Load(), CollectRefused: c.CollectRefused.Load(), RateLimited: c.RateLimited.Load(),
		Merges: c.Merges.Load(), Forwarded: c.Forwarded.Load(), Forgotten: c.Forgotten.Load(), Expired: c.Expired.Load(),
	}
}

func init() {
	core.Unwrap.Personalizer = func(x any) *core.Core { return x.(*Personalizer).core }
	core.Unwrap.Visitor = func(x any) (*core.Visit, bool) {
		if v := x.(*Visitor); v != nil {
			return &v.v, true
		}
		return nil, false
	}
	core.Unwrap.ReadProfile = func(x any, parts store.Touch, fn func(*store.Profile)) {
		if v := x.(*Visitor); v != nil {
			v.p.core.ReadProfileParts(&v.v, parts, fn)
			return
		}
		fn(nil)
	}
}
