package middleware

import "time"

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
