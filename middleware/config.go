package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"time"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// Config configures a Personalizer. Only Keys and Store are required; every
// other field documents its zero value.
type Config struct {
	// Keys sign and encrypt the visitor cookie, newest first. Cookies are
	// issued under Keys[0]; a cookie under an older pair is accepted and
	// re-issued under Keys[0], so keys rotate without losing visitors.
	// Required. Make and keep keys with LoadOrCreateKeys, or make them with
	// GenerateKeyPair.
	Keys []KeyPair

	// Store keeps profiles. Required. Close does not close it: close it
	// after the Personalizer.
	Store store.Store

	// Engine classifies visitors into segments. Nil means no segments.
	Engine *rules.Engine

	// Cookie configures the visitor cookie.
	Cookie CookieConfig

	// WriteBehind configures how recorded events reach the Store.
	WriteBehind WriteBehindConfig

	// Cache configures the in-process profile cache.
	Cache CacheConfig

	// VisitTimeout ends a visit after this long without a request.
	// Default 30 minutes.
	VisitTimeout time.Duration
	// StoreTimeout bounds each store write (flushes, sign-ins, erasures).
	// Default 5 seconds.
	StoreTimeout time.Duration
	// LoadTimeout bounds how long a request waits for its visitor's
	// profile to load from the Store (on a cache miss), even with a store
	// or client that ignores the context's deadline. Past it the request
	// is served from the events pending here, and loads are skipped for a
	// WriteBehind.FlushInterval. Default 250 ms.
	LoadTimeout time.Duration

	// IsBot tells crawlers, which are served but not tracked: no cookie,
	// no profile, segments from request facts only. Default DefaultIsBot.
	IsBot func(r *http.Request) bool
	// PageView tells which requests are recorded as page views when the
	// handler answers with a status below 400. Default: GET requests.
	PageView func(r *http.Request) bool
	// CountryHeader names a request header holding the visitor's country
	// code, set by a CDN or proxy you trust (e.g. "CF-IPCountry"). Default:
	// none.
	CountryHeader string

	// Consent decides, per request, what the visitor agreed to: see
	// Consent. Nil, or a hook that returns ConsentDefault, means
	// ConsentFull, except that a request with the header Sec-GPC: 1 or
	// DNT: 1 gets ConsentContextual.
	Consent func(r *http.Request) Consent
	// Retention is how long a profile is kept after its last event: every
	// hour (and a minute after New) profiles unseen for longer are deleted
	// from the store, if it implements store.Expirer. Of the instances that
	// share a store with leases (store.Leaser: every tailor store), one
	// does it: the holder of the retention lease, which passes to another
	// when it stops (Close), or within three hours when it dies. Default
	// 13 months (395 days); negative keeps profiles forever.
	Retention time.Duration
	// JournalRetention is how long the store's journal of purchases
	// (store.Journal, which rules/assoc's Follower learns from) keeps a
	// purchase: the job of Retention, on the same instance and schedule,
	// also trims the purchases journaled longer ago, so that the journal
	// of a site that runs no Follower does not grow for ever. A running
	// Follower trims it much sooner, after each of its snapshots; a
	// profile's purchases also leave it when the profile expires or is
	// erased. Default 30 days; negative leaves the journal to the
	// Follower.
	JournalRetention time.Duration
	// RecheckInterval is how often the instance that holds the store's
	// lease "tailor/segments" looks for the stored profiles whose segments
	// may have changed without a request (a window of "the last 7 days"
	// moving past their events: see store.Rechecker) and classifies them
	// again, so that their exits are recorded, counted and reported.
	// Default 5 seconds.
	RecheckInterval time.Duration

	// Logger receives operational logs. Visitor ids and cookie values are
	// logged only at debug level. Default slog.Default().
	Logger *slog.Logger
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// CookieConfig configures the visitor cookie, as scs's SessionCookie does
// its session cookie.
type CookieConfig struct {
	// Name is the cookie's name. Default "tailor".
	Name string
	// MaxAge is the cookie's lifetime, to the second: an older cookie is
	// refused. It is renewed at most once a day (once half its lifetime
	// has passed, if that is shorter) while the visitor comes back.
	// Default 400 days.
	MaxAge time.Duration
	// Domain is the cookie's Domain attribute. Default: none (the
	// request's host only).
	Domain string
	// Secure forces the cookie's Secure attribute. Without it the
	// attribute is set when the request came over TLS.
	Secure bool
}

// WriteBehindConfig configures the write-behind queue: events are recorded
// in memory at once and written to the Store in batches.
type WriteBehindConfig struct {
	// FlushInterval is how often pending events are written to the Store.
	// Actions other than page views are written at once (within a few
	// milliseconds), so that other instances see them quickly.
	// Default 1 second.
	FlushInterval time.Duration
	// FlushBatch is the most profiles written in one store call.
	// Default 500.
	FlushBatch int
	// MaxPending bounds the events waiting to be written (while the store
	// is slow or down). Past it the oldest are dropped, counted in
	// Stats.Dropped and logged once per FlushInterval. Default 100,000.
	MaxPending int
}

// CacheConfig configures the profile cache.
type CacheConfig struct {
	// Bytes bounds the cache, in approximate bytes. Default 64 MiB.
	Bytes int64
	// Freshness bounds how long a cached profile may miss a change written
	// by another instance. With a store that announces changes
	// (store.Invalidator: redis, postgres) an announcement marks the
	// cached profile stale at once, and cached profiles expire after 60 ×
	// Freshness in case one is lost; with any other store they expire
	// after Freshness. Default 1 second.
	Freshness time.Duration
}

func (c *Config) setDefaults() error {
	var errs []error
	if len(c.Keys) == 0 {
		errs = append(errs, errors.New("Config.Keys: at least one key pair is required (see LoadOrCreateKeys)"))
	}
	for i, k := range c.Keys {
		if n := len(k.Hash); n != 32 && n != 64 {
			errs = append(errs, fmt.Errorf("Config.Keys[%d].Hash: %d bytes, want 32 or 64", i, n))
		}
		if n := len(k.Block); n != 32 {
			errs = append(errs, fmt.Errorf("Config.Keys[%d].Block: %d bytes, want 32 (AES-256)", i, n))
		}
	}
	if isNil(c.Store) {
		errs = append(errs, errors.New("Config.Store: required (store/memory for tests, store/bolt for one machine)"))
	}
	nonNeg := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("Config.%s: %d is negative", name, v))
		}
	}
	nonNeg("Cookie.MaxAge", int64(c.Cookie.MaxAge))
	nonNeg("VisitTimeout", int64(c.VisitTimeout))
	nonNeg("WriteBehind.FlushInterval", int64(c.WriteBehind.FlushInterval))
	nonNeg("WriteBehind.FlushBatch", int64(c.WriteBehind.FlushBatch))
	nonNeg("WriteBehind.MaxPending", int64(c.WriteBehind.MaxPending))
	nonNeg("StoreTimeout", int64(c.StoreTimeout))
	nonNeg("LoadTimeout", int64(c.LoadTimeout))
	nonNeg("Cache.Freshness", int64(c.Cache.Freshness))
	nonNeg("Cache.Bytes", c.Cache.Bytes)
	nonNeg("RecheckInterval", int64(c.RecheckInterval))
	if len(errs) > 0 {
		return fmt.Errorf("tailor: invalid config: %w", errors.Join(errs...))
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Cookie.Name == "" {
		c.Cookie.Name = "tailor"
	}
	def(&c.Cookie.MaxAge, 400*24*time.Hour)
	def(&c.VisitTimeout, 30*time.Minute)
	def(&c.WriteBehind.FlushInterval, time.Second)
	def(&c.StoreTimeout, 5*time.Second)
	def(&c.LoadTimeout, 250*time.Millisecond)
	def(&c.Cache.Freshness, time.Second)
	def(&c.Retention, 395*24*time.Hour)
	def(&c.JournalRetention, 30*24*time.Hour)
	def(&c.RecheckInterval, 5*time.Second)
	if c.WriteBehind.FlushBatch == 0 {
		c.WriteBehind.FlushBatch = 500
	}
	if c.WriteBehind.MaxPending == 0 {
		c.WriteBehind.MaxPending = 100_000
	}
	if c.Cache.Bytes == 0 {
		c.Cache.Bytes = 64 << 20
	}
	if c.IsBot == nil {
		c.IsBot = DefaultIsBot
	}
	if c.PageView == nil {
		c.PageView = func(r *http.Request) bool { return r.Method == http.MethodGet }
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// isNil reports whether s is nil, also when it is a nil pointer (or map,
// func...) in the interface: a var of a store's pointer type left unset.
func isNil(s store.Store) bool {
	if s == nil {
		return true
	}
	switch v := reflect.ValueOf(s); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return v.IsNil()
	}
	return false
}
