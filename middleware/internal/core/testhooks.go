package core

import (
	"context"
	"time"

	"github.com/tailorhq/tailor/store"
)

// The hooks below are for tests: package middleware's export_test.go
// exposes them to its tests, which drive the Core through the public API
// and check its state with them.

// Cached reports whether the profile id is in the cache.
func (p *Core) Cached(id string) bool {
	p.cache.Wait()
	_, ok := p.cache.Get(id)
	return ok
}

// PendingFor returns the number of events pending for the profile id.
func (p *Core) PendingFor(id string) int { return len(p.queue.Get(id)) }

// Expire runs retention now.
func (p *Core) Expire(ctx context.Context) (int, error) { return p.expire(ctx) }

// Retain runs retention as the hourly job does: on the lease holder only.
// It reports whether it ran.
func (p *Core) Retain(ctx context.Context) (bool, int, error) { return p.retain(ctx) }

// WaitBackground waits for the erasures running in the background.
func (p *Core) WaitBackground() { p.bg.Wait() }

// Evict drops the profile id from the cache, as ristretto may at any time.
func (p *Core) Evict(id string) {
	p.cache.Wait()
	p.cache.Del(id)
}

// Cost is the cache cost of a profile.
func Cost(prof *store.Profile) int64 { return cost(prof) }

// Unacked returns the number of events the store has not acknowledged.
func (p *Core) Unacked() int { return p.queue.Unacked() }

// Listen caches an empty state for the profile id and returns a function
// that reports whether the Core has since heard the store announce a
// change of id. As a store announces changes in order, hearing a change
// written after others means having heard those too.
func (p *Core) Listen(id string) (heard func() bool, ok bool) {
	st := &state{prof: store.New(id)}
	for range 100 {
		p.cache.SetWithTTL(id, st, 1, time.Hour)
		p.cache.Wait()
		if got, found := p.cache.Get(id); found && got == st {
			return st.stale.Load, true
		}
	}
	return nil, false
}

// Queue queues events for the profile id as a recording does, without
// waking the flusher.
func (p *Core) Queue(id string, evs ...store.Event) { p.queue.Add(id, evs...) }
