package core

import "sync/atomic"

// Counters count what a Core did since New; package middleware's Stats
// reads them. The collection endpoint counts its own in Collected,
// CollectRefused and RateLimited.
type Counters struct {
	Requests, Bots, NewVisitors, RejectedCookies, RenewedCookies atomic.Uint64
	Returned                                                     atomic.Uint64
	Events, Flushed, Flushes, FlushErrors, LoadErrors, Dropped   atomic.Uint64
	CacheHits, CacheMisses, FlushNanos                           atomic.Uint64
	ClassifyCached                                               atomic.Uint64
	Collected, CollectRefused, RateLimited                       atomic.Uint64
	Merges, Forwarded, Forgotten, Expired                        atomic.Uint64
	Rechecked                                                    atomic.Uint64
}

// Counters returns the Core's counters.
func (p *Core) Counters() *Counters { return &p.stats }

// Pending returns the number of events waiting for the store.
func (p *Core) Pending() int { return p.queue.Len() }
