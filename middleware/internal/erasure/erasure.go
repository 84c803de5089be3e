// Package erasure keeps what a Personalizer must remember of erasures
// (Forget, consent withdrawn): which profiles and visitors were erased, so
// that nothing more is recorded for them and their cookies are deleted,
// and which merges it wrote lately, so that an erasure heard from another
// instance reaches the profiles merged meanwhile.
package erasure

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/middleware/internal/cookie"
	"github.com/tailorhq/tailor/store"
)

// A Set remembers what was erased, as hashes: profile ids for a
// short while (nothing is recorded for them), visitor ids for as long as a
// cookie lives (their cookies are deleted), at most maxForgotten.
type Set struct {
	seed     maphash.Seed
	n        atomic.Int64 // entries; none is the fast path
	mu       sync.Mutex
	profiles map[uint64]time.Time // until
	visitors map[uint64]time.Time
	order    []uint64 // visitors, oldest first
	long     time.Duration
}

const maxForgotten = 100_000

// NewSet returns an empty Set that remembers visitors for cookieMaxAge.
func NewSet(cookieMaxAge time.Duration) *Set {
	return &Set{seed: maphash.MakeSeed(), profiles: make(map[uint64]time.Time),
		visitors: make(map[uint64]time.Time), long: cookieMaxAge}
}

func (f *Set) hash(s string) uint64 { return maphash.String(f.seed, s) }

// Add remembers profile ids for ttl and visitor ids for a cookie's life.
func (f *Set) Add(profiles, visitors []string, ttl time.Duration) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range profiles {
		f.profiles[f.hash(id)] = now.Add(ttl)
	}
	for _, id := range visitors {
		h := f.hash(id)
		if _, ok := f.visitors[h]; !ok {
			f.order = append(f.order, h)
		}
		f.visitors[h] = now.Add(f.long)
	}
	for len(f.order) > maxForgotten {
		delete(f.visitors, f.order[0])
		f.order = f.order[1:]
	}
	for h, until := range f.profiles {
		if now.After(until) {
			delete(f.profiles, h)
		}
	}
	f.n.Store(int64(len(f.profiles) + len(f.visitors)))
}

func (f *Set) has(m map[uint64]time.Time, id string) bool {
	until, ok := m[f.hash(id)]
	return ok && time.Now().Before(until)
}

// Profile reports whether nothing may be recorded for the profile id.
func (f *Set) Profile(id string) bool {
	if f.n.Load() == 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.has(f.profiles, id)
}

// Visitor reports whether the cookie ci names an erased visitor or user.
func (f *Set) Visitor(ci cookie.ID) bool {
	if f.n.Load() == 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.has(f.visitors, ci.Visitor) || f.has(f.profiles, ci.Visitor) ||
		(ci.User != "" && f.has(f.profiles, store.UserPrefix+ci.User))
}

// A MergeLog remembers, for a while, the merge events this instance wrote
// into each profile: an erasure of that profile elsewhere may have read
// its aliases before such a merge landed and deleted it after, so the
// instance that wrote the merge, hearing of the deletion, erases the
// merged profiles too. Entries live as long as a local tombstone.
type MergeLog struct {
	mu   sync.Mutex
	by   map[string][]loggedMerge
	TTL  time.Duration // how long an entry lives
	size int
}

type loggedMerge struct {
	ev    store.Event
	until time.Time
}

// Add logs the merge events of b, written into the profile b.ID.
func (l *MergeLog) Add(b store.Batch) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range b.Events {
		if e.Type != store.TypeMerge || e.Merge == nil {
			continue
		}
		if l.by == nil {
			l.by = make(map[string][]loggedMerge)
		}
		l.by[b.ID] = append(l.by[b.ID], loggedMerge{e, now.Add(l.TTL)})
		l.size++
	}
	if l.size > 1024 {
		l.size = 0
		for id, ms := range l.by {
			ms = slices.DeleteFunc(ms, func(m loggedMerge) bool { return now.After(m.until) })
			if len(ms) == 0 {
				delete(l.by, id)
				continue
			}
			l.by[id] = ms
			l.size += len(ms)
		}
	}
}

// Take returns and forgets the merge events logged for id.
func (l *MergeLog) Take(id string) []store.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	ms := l.by[id]
	delete(l.by, id)
	l.size -= len(ms)
	out := make([]store.Event, 0, len(ms))
	now := time.Now()
	for _, m := range ms {
		if now.Before(m.until) {
			out = append(out, m.ev)
		}
	}
	return out
}
