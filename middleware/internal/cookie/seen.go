package cookie

import (
	"hash/maphash"
	"sync/atomic"
)

// seenCache remembers the cookie values that decoded: a returning
// visitor's request then costs a hash, a few loads and a comparison,
// instead of an HMAC and a decryption. It is a memo, not a store: an
// entry may be pushed out at any time, and then the value is decoded
// again. It is 4-way set-associative: a value's hash picks a set of
// four entries, and a new value takes its own entry's place, an empty
// one or, in turn, another. Two goroutines setting the same value at
// once may leave it twice in its set: harmless, as either entry says the
// same. Its memory is bounded by its number of entries (seenWays ×
// len(sets)), each a decoded value of at most the cookie's length.
//
// It is not a general cache such as the profiles' (ristretto): an
// admission policy, and the buffers that feed it, would cost more per
// request than it protects, as a lost entry costs one decoding.
type seenCache struct {
	seed maphash.Seed
	sets []seenSet
	mask uint64
}

const seenWays = 4

type seenSet struct {
	ways [seenWays]atomic.Pointer[seenCookie]
	next atomic.Uint32 // the way the next new value takes, when none is empty
}

// newSeenCache returns a cache of at least n entries.
func newSeenCache(n int) *seenCache {
	sets := 1
	for sets*seenWays < n {
		sets *= 2
	}
	return &seenCache{seed: maphash.MakeSeed(), sets: make([]seenSet, sets), mask: uint64(sets - 1)}
}

func (c *seenCache) set(h uint64) *seenSet { return &c.sets[h&c.mask] }

// Get returns the entry of value, if it is remembered.
func (c *seenCache) Get(value string) (*seenCookie, bool) {
	h := maphash.String(c.seed, value)
	s := c.set(h)
	for i := range s.ways {
		if e := s.ways[i].Load(); e != nil && e.hash == h && e.value == value {
			return e, true
		}
	}
	return nil, false
}

// Set remembers e, the entry of value.
func (c *seenCache) Set(value string, e *seenCookie) {
	e.hash = maphash.String(c.seed, value)
	s := c.set(e.hash)
	for i := range s.ways { // the value's own entry, if any
		if old := s.ways[i].Load(); old != nil && old.hash == e.hash && old.value == value {
			if s.ways[i].CompareAndSwap(old, e) {
				return
			}
		}
	}
	for i := range s.ways {
		if s.ways[i].CompareAndSwap(nil, e) {
			return
		}
	}
	s.ways[s.next.Add(1)%seenWays].Store(e)
}

// Del forgets value.
func (c *seenCache) Del(value string) {
	h := maphash.String(c.seed, value)
	s := c.set(h)
	for i := range s.ways {
		if e := s.ways[i].Load(); e != nil && e.hash == h && e.value == value {
			s.ways[i].CompareAndSwap(e, nil)
		}
	}
}

// Close forgets every entry.
func (c *seenCache) Close() {
	for i := range c.sets {
		for j := range c.sets[i].ways {
			c.sets[i].ways[j].Store(nil)
		}
	}
}
