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
//
// # Journal
//
// The journal of store.Journal is a slice of purchases, appended to by
// the write that applies them, under the same lock. Delete and Expire
// remove the purchases of the profiles they remove under that lock too,
// walking the whole slice: a store for tests keeps few.
package memory

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
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
	counts   map[string]int64     // the aggregates (store.Counter)
	recheck  map[string]time.Time // id → its profile's Recheck, if set
	docs     map[string][]byte
	journal  []journaled // oldest first
	jseq     uint64      // of the last purchase journaled
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
	_ store.Counter     = (*Store)(nil)
	_ store.Rechecker   = (*Store)(nil)
	_ store.Scanner     = (*Store)(nil)
	_ store.Documents   = (*Store)(nil)
	_ store.Journal     = (*Store)(nil)
	_ store.Leaser      = (*Store)(nil)
)

// New returns an empty store folding profiles with lim (zero fields mean
// defaults).
func New(lim store.Limits, opts ...Option) *Store {
	s := &Store{
		lim:        lim.WithDefaults(),
		tombstoned: store.DefaultTombstoneTTL,
		profiles:   make(map[string]*store.Profile),
		tombs:      make(map[string]time.Time),
		counts:     make(map[string]int64),
		recheck:    make(map[string]time.Time),
		docs:       make(map[string][]byte),
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
	var was []string
	if !ok {
		p = store.New(id)
		s.profiles[id] = p
	} else {
		was = store.CountKeys(nil, p)
	}
	p.Apply(s.lim, events...)
	p.Version++
	p.Counted = true
	store.AddDeltas(s.counts, store.KeyDelta(was, store.CountKeys(nil, p)))
	now := time.Now()
	for _, pu := range p.TakePurchases() {
		s.jseq++
		s.journal = append(s.journal, journaled{s.jseq, now, pu})
	}
	s.index(p)
	return p.Clone(), nil
}

// index sets the recheck index entry of p; s.mu must be held for writing.
func (s *Store) index(p *store.Profile) {
	if p.Recheck.IsZero() {
		delete(s.recheck, p.ID)
	} else {
		s.recheck[p.ID] = p.Recheck
	}
}

// remove removes the profile of id and what it counts for; s.mu must be
// held for writing.
func (s *Store) remove(id string) {
	p, ok := s.profiles[id]
	if !ok {
		return
	}
	store.AddDeltas(s.counts, store.CountDelta(p, nil))
	delete(s.profiles, id)
	delete(s.recheck, id)
}

// unjournal removes from the journal the purchases of the profiles whose
// ids gone reports; s.mu must be held for writing.
func (s *Store) unjournal(gone func(id string) bool) {
	s.journal = slices.DeleteFunc(s.journal, func(j journaled) bool { return gone(j.p.ID) })
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
	s.remove(id)
	s.unjournal(func(pid string) bool { return pid == id })
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
			s.remove(id)
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		set := make(map[string]bool, len(gone))
		for _, id := range gone {
			set[id] = true
		}
		s.unjournal(func(id string) bool { return set[id] })
	}
	subs := s.subscribers()
	s.mu.Unlock()
	for _, id := range gone {
		notify(subs, store.Change{ID: id})
	}
	return len(gone), nil
}

// Subscribe calls fn for every profile changed and every document put in
// this store until ctx is done. fn is called in the goroutine that made
// the change, after the store's lock is released, so it may call the
// store.
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
	s.counts, s.recheck, s.docs, s.journal = nil, nil, nil, nil
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

// Counts implements store.Counter.
func (s *Store) Counts(ctx context.Context) (map[string]int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	return maps.Clone(s.counts), ctx.Err()
}

// Due implements store.Rechecker. It visits every indexed profile: this
// store is for tests and demos.
func (s *Store) Due(ctx context.Context, t time.Time, max int) ([]string, error) {
	s.mu.RLock()
	if err := store.CheckScan(ctx, s.closed, max); err != nil {
		s.mu.RUnlock()
		return nil, err
	}
	type due struct {
		id string
		at time.Time
	}
	var ds []due
	for id, at := range s.recheck {
		if !at.After(t) {
			ds = append(ds, due{id, at})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(ds, func(a, b due) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	ids := make([]string, 0, min(max, len(ds)))
	for _, d := range ds[:min(max, len(ds))] {
		ids = append(ids, d.id)
	}
	return ids, nil
}

// Scan implements store.Scanner: pages in order of id, the cursor being
// the last id of the page.
func (s *Store) Scan(ctx context.Context, cursor string, max int) ([]*store.Profile, string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := store.CheckScan(ctx, s.closed, max); err != nil {
		return nil, "", err
	}
	var ids []string
	for id := range s.profiles {
		if id > cursor {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	next := ""
	if len(ids) > max {
		ids, next = ids[:max], ids[max-1]
	}
	out := make([]*store.Profile, len(ids))
	for i, id := range ids {
		out[i] = s.profiles[id].Clone()
	}
	return out, next, nil
}

// Document implements store.Documents.
func (s *Store) Document(ctx context.Context, name string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := store.CheckDocument(ctx, s.closed, name, 0); err != nil {
		return nil, err
	}
	d, ok := s.docs[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(d), nil
}

// PutDocument implements store.Documents, and announces the document to
// the subscribers (store.Invalidator) once it is stored.
func (s *Store) PutDocument(ctx context.Context, name string, data []byte) error {
	s.mu.Lock()
	if err := store.CheckDocument(ctx, s.closed, name, len(data)); err != nil {
		s.mu.Unlock()
		return err
	}
	s.docs[name] = bytes.Clone(data)
	subs := s.subscribers()
	s.mu.Unlock()
	notify(subs, store.Change{Document: name})
	return nil
}

// journaled is a purchase of the journal, with its sequence number and
// when it was journaled.
type journaled struct {
	seq uint64
	at  time.Time
	p   store.Purchase
}

// Purchases implements store.Journal: the cursor is the sequence number
// of the last purchase returned.
func (s *Store) Purchases(ctx context.Context, cursor string, max int) ([]store.Purchase, string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := store.CheckScan(ctx, s.closed, max); err != nil {
		return nil, "", err
	}
	var after uint64
	if cursor != "" {
		n, err := strconv.ParseUint(cursor, 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("tailor/store/memory: journal cursor %q: %w", cursor, err)
		}
		after = n
	}
	i, _ := slices.BinarySearchFunc(s.journal, after+1, func(j journaled, seq uint64) int { return cmp.Compare(j.seq, seq) })
	var out []store.Purchase
	for ; i < len(s.journal) && len(out) < max; i++ {
		out = append(out, clonePurchase(s.journal[i].p))
		cursor = strconv.FormatUint(s.journal[i].seq, 10)
	}
	return out, cursor, nil
}

func clonePurchase(p store.Purchase) store.Purchase {
	p.Items, p.Prior = slices.Clone(p.Items), slices.Clone(p.Prior)
	return p
}

// TrimPurchases implements store.Journal.
func (s *Store) TrimPurchases(ctx context.Context, before time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := store.CheckScan(ctx, s.closed, 1); err != nil {
		return err
	}
	i := 0
	for i < len(s.journal) && s.journal[i].at.Before(before) {
		i++
	}
	s.journal = slices.Delete(s.journal, 0, i)
	return nil
}
