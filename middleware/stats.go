package middleware

import (
	"sync/atomic"
	"time"
)

// Stats are counters of a Personalizer since New.
type Stats struct {
	Requests        uint64 // requests seen
	Bots            uint64 // requests from crawlers, not tracked
	NewVisitors     uint64 // cookies issued to new visitors
	RejectedCookies uint64 // tampered, truncated, expired or foreign cookies
	RenewedCookies  uint64 // cookies re-issued (older key, or a day or half CookieMaxAge old, whichever is less)
	Events          uint64 // events recorded
	Flushed         uint64 // events the store acknowledged
	Flushes         uint64 // flushes that wrote something
	FlushErrors     uint64 // failed store writes (retried)
	FlushTime       time.Duration
	LoadErrors      uint64 // failed store reads
	Dropped         uint64 // pending events dropped at MaxPending
	Pending         int    // events waiting for the store now
	Returned        uint64 // new visitors who came back with their cookie (and so are kept)
	CacheHits       uint64
	CacheMisses     uint64
	// ClassifyCached counts requests whose segments were the cached
	// classification of an unchanged profile.
	ClassifyCached uint64
	RuleErrors     uint64 // rule evaluations that failed (counted as no match)

	Collected      uint64 // events accepted by the collection endpoint
	CollectRefused uint64 // calls and events the collection endpoint refused (400, 401, 403, 413)
	RateLimited    uint64 // collection requests refused with 429
	Merges         uint64 // visitor profiles merged into a user's
	Forwarded      uint64 // events forwarded from a merged profile to its user's
	Forgotten      uint64 // profiles erased (Forget, consent withdrawn)
	Expired        uint64 // profiles deleted by retention
}

type counters struct {
	Requests, Bots, NewVisitors, RejectedCookies, RenewedCookies atomic.Uint64
	Returned                                                     atomic.Uint64
	Events, Flushed, Flushes, FlushErrors, LoadErrors, Dropped   atomic.Uint64
	CacheHits, CacheMisses, flushNanos                           atomic.Uint64
	ClassifyCached                                               atomic.Uint64
	Collected, CollectRefused, RateLimited                       atomic.Uint64
	Merges, Forwarded, Forgotten, Expired                        atomic.Uint64
}

// Stats returns the current counters.
func (p *Personalizer) Stats() Stats {
	c := &p.stats
	return Stats{
		Requests: c.Requests.Load(), Bots: c.Bots.Load(), NewVisitors: c.NewVisitors.Load(),
		RejectedCookies: c.RejectedCookies.Load(), RenewedCookies: c.RenewedCookies.Load(),
		Events: c.Events.Load(), Flushed: c.Flushed.Load(), Flushes: c.Flushes.Load(),
		FlushErrors: c.FlushErrors.Load(), FlushTime: time.Duration(c.flushNanos.Load()), ClassifyCached: c.ClassifyCached.Load(),
		LoadErrors: c.LoadErrors.Load(), Dropped: c.Dropped.Load(),
		Pending: p.queue.len(), Returned: c.Returned.Load(),
		CacheHits: c.CacheHits.Load(), CacheMisses: c.CacheMisses.Load(),
		RuleErrors: p.cfg.Engine.Errors(),
		Collected:  c.Collected.Load(), CollectRefused: c.CollectRefused.Load(), RateLimited: c.RateLimited.Load(),
		Merges: c.Merges.Load(), Forwarded: c.Forwarded.Load(), Forgotten: c.Forgotten.Load(), Expired: c.Expired.Load(),
	}
}
