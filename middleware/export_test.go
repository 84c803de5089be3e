package middleware

import (
	"context"

	"time"

	"github.com/tailorhq/tailor/store"
)

// Internals for the tests of package middleware_test.

// Cached reports whether the profile id is in p's cache.
func Cached(p *Personalizer, id string) bool {
	p.cache.Wait()
	_, ok := p.cache.Get(id)
	return ok
}

// PendingFor returns the number of events pending for the profile id.
func PendingFor(p *Personalizer, id string) int { return len(p.queue.get(id)) }

// Expire runs retention now.
func Expire(p *Personalizer, ctx context.Context) (int, error) { return p.expire(ctx) }

// WaitBackground waits for the erasures running in the background.
func WaitBackground(p *Personalizer) { p.bg.Wait() }

// Evict drops the profile id from p's cache, as ristretto may at any time.
func Evict(p *Personalizer, id string) {
	p.cache.Wait()
	p.cache.Del(id)
}

// Cost is the cache cost of a profile.
func Cost(p *store.Profile) int64 { return cost(p) }

// Pending returns the number of events p holds that the store has not
// acknowledged: pending, and taken by a write still under way.
func Pending(p *Personalizer) int {
	p.queue.mu.Lock()
	defer p.queue.mu.Unlock()
	n := p.queue.n
	for _, evs := range p.queue.inflight {
		n += len(evs)
	}
	return n
}

// Listen caches an empty state for the profile id in p and returns a
// function that reports whether p has since heard the store announce a
// change of id. As a store announces changes in order, hearing a change
// written after others means having heard those too.
func Listen(p *Personalizer, id string) (heard func() bool, ok bool) {
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
func Queue(p *Personalizer, id string, evs ...store.Event) { p.queue.add(id, evs...) }
