package middleware

import (
	"context"

	"github.com/tailorhq/tailor/middleware/internal/core"
	"github.com/tailorhq/tailor/store"
)

// Internals for the tests of package middleware_test: see core's hooks.

// Cached reports whether the profile id is in p's cache.
func Cached(p *Personalizer, id string) bool { return p.core.Cached(id) }

// PendingFor returns the number of events pending for the profile id.
func PendingFor(p *Personalizer, id string) int { return p.core.PendingFor(id) }

// Expire runs retention now.
func Expire(p *Personalizer, ctx context.Context) (int, error) { return p.core.Expire(ctx) }

// Retain runs retention as the hourly job does: on the holder of the
// retention lease only. It reports whether it ran.
func Retain(p *Personalizer, ctx context.Context) (bool, int, error) { return p.core.Retain(ctx) }

// WaitBackground waits for the erasures running in the background.
func WaitBackground(p *Personalizer) { p.core.WaitBackground() }

// Evict drops the profile id from p's cache, as ristretto may at any time.
func Evict(p *Personalizer, id string) { p.core.Evict(id) }

// Cost is the cache cost of a profile.
func Cost(p *store.Profile) int64 { return core.Cost(p) }

// Pending returns the number of events p holds that the store has not
// acknowledged: pending, and taken by a write still under way.
func Pending(p *Personalizer) int { return p.core.Unacked() }

// Listen caches an empty state for the profile id in p and returns a
// function that reports whether p has since heard the store announce a
// change of id.
func Listen(p *Personalizer, id string) (heard func() bool, ok bool) { return p.core.Listen(id) }

// Queue queues events for the profile id as a recording does, without
// waking the flusher.
func Queue(p *Personalizer, id string, evs ...store.Event) { p.core.Queue(id, evs...) }
