package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// A KeyPair holds the keys of the visitor cookie: Hash signs it with
// HMAC-SHA256, Block encrypts it with AES-256.
type KeyPair struct {
	Hash  []byte // 32 or 64 random bytes
	Block []byte // 32 random bytes
}

// Config configures a Personalizer. Only Keys and Store are required; every
// other field documents its zero value.
type Config struct {
	// Keys sign and encrypt the visitor cookie, newest first. Cookies are
	// issued under Keys[0]; a cookie under an older pair is accepted and
	// re-issued under Keys[0], so keys rotate without losing visitors.
	// Required. Make keys with GenerateKeyPair.
	Keys []KeyPair

	// Store keeps profiles. Required. Close does not close it: close it
	// after the Personalizer.
	Store store.Store

	// Engine classifies visitors into segments. Nil means no segments.
	Engine *rules.Engine

	// CookieName is the name of the visitor cookie. Default "tailor".
	CookieName string
	// CookieMaxAge is the lifetime of the visitor cookie, to the second:
	// an older cookie is refused. It is renewed at most once a day (once
	// half its lifetime has passed, if that is shorter) while the visitor
	// comes back. Default 400 days.
	CookieMaxAge time.Duration
	// CookieDomain is the cookie's Domain attribute. Default: none (the
	// request's host only).
	CookieDomain string
	// Secure forces the cookie's Secure attribute. Without it the attribute
	// is set when the request came over TLS.
	Secure bool

	// VisitTimeout ends a visit after this long without a request.
	// Default 30 minutes.
	VisitTimeout time.Duration

	// FlushInterval is how often pending events are written to the Store.
	// Default 1 second.
	FlushInterval time.Duration
	// FlushBatch is the most profiles written in one store call.
	// Default 500.
	FlushBatch int
	// MaxPending bounds the events waiting to be written (while the store
	// is slow or down). Past it the oldest are dropped, counted in
	// Stats.Dropped and logged once per FlushInterval. Default 100,000.
	MaxPending int
	// StoreTimeout bounds each store call. Default 5 seconds.
	StoreTimeout time.Duration
	// LoadTimeout bounds how long a request waits for its visitor's
	// profile to load from the Store (on a cache miss), even with a store
	// or client that ignores the context's deadline. Past it the request
	// is served from the events pending here, and loads are skipped for a
	// FlushInterval. Writes (flushes) keep StoreTimeout. Default 250 ms.
	LoadTimeout time.Duration
	// Freshness bounds how long a cached profile may miss a change written
	// by another instance. With a store that announces changes
	// (store.Invalidator: redis, postgres) an announcement marks the cached
	// profile stale at once, and cached profiles expire after 60 ×
	// Freshness in case one is lost; with any other store they expire after
	// Freshness. Actions other than page views are written at once (not at
	// the next FlushInterval) so that other instances see them quickly.
	// Default 1 second.
	Freshness time.Duration

	// CacheBytes bounds the profile cache, in approximate bytes.
	// Default 64 MiB.
	CacheBytes int64

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
	// from the store, if it implements store.Expirer. Default 13 months
	// (395 days); negative keeps profiles forever.
	Retention time.Duration

	// CollectPath is the path under which Collector serves the Segment
	// tracking API (CollectPath + "v1/track", ...) and the browser snippet
	// (CollectPath + "t.js"). It must begin and end with "/". Default
	// "/_tailor/".
	CollectPath string
	// WriteKeys authenticate server-to-server calls to the collection
	// endpoint (HTTP Basic with the key as user name, or "writeKey" in the
	// body). Keys are added and revoked at run time with AddWriteKey and
	// RevokeWriteKey. Default: none (only same-origin browser calls).
	WriteKeys []string
	// ServerEvents names track events that only calls with a write key
	// (servers) may record, compared ignoring case: the events your
	// segments trust as the server's word ("Signed Up", "Trial
	// Started"). Orders are always reserved, whatever this lists: see
	// Collector. Default: none beyond orders (browser calls may track
	// any other event).
	ServerEvents []string
	// KeyRate bounds the events that each write key may send to the
	// collection endpoint, per second, with bursts of two seconds' worth.
	// A call is admitted only if all its events fit in what is left of
	// the burst; past it calls get 429 Too Many Requests with Retry-After
	// (at most two seconds), and a batch larger than the burst gets 413.
	// Default 10,000; negative means no bound.
	KeyRate float64
	// BrowserRate bounds the events per second that each client address
	// may send without a write key (the browser snippet), with bursts of
	// two seconds' worth, as KeyRate does. At most 100,000 addresses are
	// remembered; a new one always gets a full burst, in place of the
	// least recently seen. Default 20; negative means no bound.
	BrowserRate float64
	// ClientIP returns the address that BrowserRate counts a request
	// under. Default: the host of r.RemoteAddr (set it to read a header
	// such as X-Forwarded-For only behind a proxy you trust).
	ClientIP func(r *http.Request) string

	// Logger receives operational logs. Visitor ids and cookie values are
	// logged only at debug level. Default slog.Default().
	Logger *slog.Logger
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	var errs []error
	if len(c.Keys) == 0 {
		errs = append(errs, errors.New("Config.Keys: at least one key pair is required (see GenerateKeyPair)"))
	}
	for i, k := range c.Keys {
		if n := len(k.Hash); n != 32 && n != 64 {
			errs = append(errs, fmt.Errorf("Config.Keys[%d].Hash: %d bytes, want 32 or 64", i, n))
		}
		if n := len(k.Block); n != 32 {
			errs = append(errs, fmt.Errorf("Config.Keys[%d].Block: %d bytes, want 32 (AES-256)", i, n))
		}
	}
	if c.Store == nil {
		errs = append(errs, errors.New("Config.Store: required (store/memory for tests, store/bolt for one machine)"))
	}
	nonNeg := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("Config.%s: %d is negative", name, v))
		}
	}
	nonNeg("CookieMaxAge", int64(c.CookieMaxAge))
	nonNeg("VisitTimeout", int64(c.VisitTimeout))
	nonNeg("FlushInterval", int64(c.FlushInterval))
	nonNeg("FlushBatch", int64(c.FlushBatch))
	nonNeg("MaxPending", int64(c.MaxPending))
	nonNeg("StoreTimeout", int64(c.StoreTimeout))
	nonNeg("LoadTimeout", int64(c.LoadTimeout))
	nonNeg("Freshness", int64(c.Freshness))
	nonNeg("CacheBytes", c.CacheBytes)
	if c.CollectPath != "" && (!strings.HasPrefix(c.CollectPath, "/") || !strings.HasSuffix(c.CollectPath, "/")) {
		errs = append(errs, fmt.Errorf("Config.CollectPath: %q must begin and end with /", c.CollectPath))
	}
	for i, k := range c.WriteKeys {
		if err := checkWriteKey(k); err != nil {
			errs = append(errs, fmt.Errorf("Config.WriteKeys[%d]: %w", i, err))
		}
	}
	for i, name := range c.ServerEvents {
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("Config.ServerEvents[%d]: empty event name", i))
		case len(name) > maxName:
			errs = append(errs, fmt.Errorf("Config.ServerEvents[%d]: %d bytes; the limit is %d", i, len(name), maxName))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("tailor: invalid config: %w", errors.Join(errs...))
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.CookieName == "" {
		c.CookieName = "tailor"
	}
	def(&c.CookieMaxAge, 400*24*time.Hour)
	def(&c.VisitTimeout, 30*time.Minute)
	def(&c.FlushInterval, time.Second)
	def(&c.StoreTimeout, 5*time.Second)
	def(&c.LoadTimeout, 250*time.Millisecond)
	def(&c.Freshness, time.Second)
	defInt(&c.FlushBatch, 500)
	defInt(&c.MaxPending, 100_000)
	if c.CacheBytes == 0 {
		c.CacheBytes = 64 << 20
	}
	def(&c.Retention, 395*24*time.Hour)
	if c.CollectPath == "" {
		c.CollectPath = "/_tailor/"
	}
	if c.KeyRate == 0 {
		c.KeyRate = 10_000
	}
	if c.BrowserRate == 0 {
		c.BrowserRate = 20
	}
	// A copy: the caller may reuse its slice.
	c.ServerEvents = slices.Clone(c.ServerEvents)
	if c.ClientIP == nil {
		c.ClientIP = remoteHost
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

// remoteHost returns the host of r.RemoteAddr.
func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}
