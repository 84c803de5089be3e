package middleware

import (
	"context"

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
