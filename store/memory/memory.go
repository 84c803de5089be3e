// Package memory is a Store that keeps profiles in this process's memory.
// It is for tests and single-process demos: everything is lost when the
// process exits.
//
// # Tombstones
//
// Delete leaves a tombstone in a map of id to expiry, checked and written
// under the same lock as the profiles, so an Apply racing a Delete lands
// before it or is refused with store.ErrErased. A tombstone lives for
// store.DefaultTombstoneTTL unless New is given TombstoneTTL; an expired
// one is removed by the next Apply of its id, or by Expire.
package memory

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tailorhq/tailor/internal/lease"
	"github.com/tailorhq/tailor/store"
)

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	lim        store.Limits
	tombstoned time.Duration // how long a tombstone lives

	// mu guards everything below.
	mu       sync.RWMutex
	closed   bool
	profiles map[string]*store.Profile
	tombs    map[string]time.Time // id → when its tombstone expires
	subs     map[int]sub
	nextSub  int

	leases lease.Table // locks itself
}

// An Option configures a Store.
type Option func(*Store)

// TombstoneTTL sets how long the tombstone that Delete leaves lives; d <= 0
// means store.DefaultTombstoneTTL, the default.
func TombstoneTTL(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.tombstoned = d
		}
	}
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.Ranger      = (*Store)(nil)
	_ store.Expirer     = (*Store)(nil)
	_ store.Invalidator = (*Store)(nil)
)

// New returns an empty store folding profiles with lim (zero fields mean
// defaults).
func New(lim store.Limits, opts ...Option) *Store {
	s := &Store{
		lim:        lim.WithDefaults(),
		tombstoned: store.DefaultTombstoneTTL,
		profiles:   make(map[string]*store.Profile),
		tombs:      make(map[string]time.Time),
		subs:       make(map[int]sub),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Limits returns the limits profiles are folded with.
func (s *Store) Limits() store.Limits { return s.lim }

// Load returns a copy of the stored profile.
func (s *Store) Load(ctx context.Context, id string) (*store.Profile, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := store.Check(ctx, s.closed, id); err != nil {
		return nil, err
	}
	p, ok := s.profiles[id]
	if !ok {
		if until, ok := s.tombs[id]; ok && time.Now().Before(until) {
			return nil, store.ErrErased
		}
		return nil, store.ErrNotFound
	}
	return p.Clone(), nil
}

// Apply folds events into the profile under the store's lock.
func (s *Store) Apply(ctx context.Context, id string, events []store.Event) (*store.Profile, error) {
	s.mu.Lock()
	p, err := s.apply(ctx, id, events)
	subs := s.subscribers()
	s.mu.Unlock()
	if err == nil {
		notify(subs, store.Change{ID: id})
	}
	return p, err
}

// apply folds events into id's profile; s.mu must be held for writing.
func (s *Store) apply(ctx context.Context, id string, events []store.Event) (*store.Profile, error) {
	if err := store.Check(ctx, s.closed, id); err != nil {
		return nil, err
	}
	if until, ok := s.tombs[id]; ok {
		if time.Now().Before(until) {
			return nil, store.ErrErased
		}
		delete(s.tombs, id)
	}
	// The stored profile is never handed out (callers get copies), so it
	// is folded in place.
	p, ok := s.profiles[id]
	if !ok {
		p = store.New(id)
		s.profiles[id] = p
	}
	p.Apply(s.lim, events...)
	p.Version++
	return p.Clone(), nil
}

// ApplyBatch applies every batch under one lock. The profile of a batch
// whose id has a live tombstone is nil.
func (s *Store) ApplyBatch(ctx context.Context, batches []store.Batch) ([]*store.Profile, error) {
	out := make([]*store.Profile, len(batches))
	s.mu.Lock()
	var err error
	for i, b := range batches {
		if out[i], err = s.apply(ctx, b.ID, b.Events); errors.Is(err, store.ErrErased) {
			err = nil
		} else if err != nil {
			break
		}
	}
	subs := s.subscribers()
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	for i, b := range batches {
		if out[i] != nil {
			notify(subs, store.Change{ID: b.ID})
		}
	}
	return out, nil
}

// Delete removes the profile and leaves (or renews) its tombstone.
func (s *Store) Delete(ctx context.Context, id string) error {
	s.mu.Lock()
	if err := store.Check(ctx, s.closed, id); err != nil {
		s.mu.Unlock()
		return err
	}
	delete(s.profiles, id)
	s.tombs[id] = time.Now().Add(s.tombstoned)
	subs := s.subscribers()
	s.mu.Unlock()
	notify(subs, store.Change{ID: id, Deleted: true})
	return nil
}

// Range calls fn with a copy of every profile, in no particular order.
func (s *Store) Range(ctx context.Context, fn func(*store.Profile) bool) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	ps := make([]*store.Profile, 0, len(s.profiles))
	for _, p := range s.profiles {
		ps = append(ps, p.Clone())
	}
	s.mu.RUnlock()
	for _, p := range ps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !fn(p) {
			break
		}
	}
	return nil
}

// Expire deletes profiles last seen before before, and the tombstones
// whose TTL has passed.
func (s *Store) Expire(ctx context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	now := time.Now()
	for id, until := range s.tombs {
		if !now.Before(until) {
			delete(s.tombs, id)
		}
	}
	var gone []string
	for id, p := range s.profiles {
		if p.LastSeen.Before(before) {
			delete(s.profiles, id)
			gone = append(gone, id)
		}
	}
	subs := s.subscribers()
	s.mu.Unlock()
	for _, id := range gone {
		notify(subs, store.Change{ID: id})
	}
	return len(gone), nil
}

// Subscribe calls fn for every profile changed in this store until ctx is
// done.
func (s *Store) Subscribe(ctx context.Context, fn func(store.Change)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	n := s.nextSub
	s.nextSub++
	s.subs[n] = sub{ctx, fn}
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		delete(s.subs, n)
		s.mu.Unlock()
	})
	return nil
}

// A sub is a subscription: fn is called until ctx is done.
type sub struct {
	ctx context.Context
	fn  func(store.Change)
}

func (s *Store) subscribers() []sub {
	if len(s.subs) == 0 {
		return nil
	}
	subs := make([]sub, 0, len(s.subs))
	for _, sb := range s.subs {
		subs = append(subs, sb)
	}
	return subs
}

func notify(subs []sub, c store.Change) {
	for _, sb := range subs {
		if sb.ctx.Err() == nil {
			sb.fn(c)
		}
	}
}

// Close releases the store; later calls return store.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.profiles = nil
	s.tombs = nil
	clear(s.subs)
	return nil
}

// Lease implements store.Leaser, for the Personalizers of one process.
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	return s.leases.Lease(ctx, s.isClosed(), name, holder, ttl)
}

// Release implements store.Leaser.
func (s *Store) Release(ctx context.Context, name, holder string) error {
	return s.leases.Release(ctx, s.isClosed(), name, holder)
}

// isClosed reports whether Close was called.
func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}
