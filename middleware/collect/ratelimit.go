package collect

import (
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// A limiter is a token bucket per key (a write key, a client address):
// rate tokens a second, at most burst (two seconds' worth, at least one).
// A request of n events passes only if its bucket holds n tokens, and
// takes them: a bucket never goes into debt, so a refused key waits at
// most burst/rate (two seconds) before a request of its size fits again.
// A request of more events than the burst never fits; callers refuse it
// as too large (see maxCost). A nil limiter lets everything through.
//
// The buckets live in limiterShards shards, each under its own mutex and
// holding at most maxBuckets/limiterShards buckets in least-recently-used
// order. A new key always gets a bucket: when its shard is full, the
// least recently used bucket is forgotten (O(1)). That bucket is full
// again, and forgetting it loses nothing, unless more than
// maxBuckets/limiterShards keys of its shard were used within the last
// burst/rate; then its key gets at most one burst more than its rate.
type limiter struct {
	rate, burst float64
	seed        maphash.Seed
	shards      [limiterShards]limiterShard
}

// limiterShard is one shard of a limiter's buckets. mu guards buckets and
// the list, and the buckets in them.
type limiterShard struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	// lru is the sentinel of a circular list of the buckets: lru.next is
	// the most recently used, lru.prev the least.
	lru bucket
}

type bucket struct {
	key        string
	tokens     float64
	last       time.Time // of the last refill
	prev, next *bucket
}

const (
	// maxBuckets bounds the keys a limiter remembers.
	maxBuckets = 100_000
	// limiterShards is the number of independently locked shards.
	limiterShards = 64
	// shardBuckets is the number of keys a shard remembers.
	shardBuckets = maxBuckets / limiterShards
)

// newLimiter returns a limiter of rate events a second, or nil for a
// negative rate (no bound).
func newLimiter(rate float64) *limiter {
	if rate < 0 {
		return nil
	}
	l := &limiter{rate: rate, burst: max(2*rate, 1), seed: maphash.MakeSeed()}
	for i := range l.shards {
		s := &l.shards[i]
		s.buckets = make(map[string]*bucket)
		s.lru.next, s.lru.prev = &s.lru, &s.lru
	}
	return l
}

// maxCost returns the largest number of events that one request may
// cost: the burst. Larger requests are never admitted.
func (l *limiter) maxCost() int {
	if l == nil {
		return math.MaxInt
	}
	return int(l.burst)
}

// take takes n tokens from key's bucket at now if it holds them, and
// reports whether it did. If not, it takes nothing and returns how long
// until the bucket holds n tokens: at most burst/rate. A cost above
// maxCost never fits: take refuses it with a zero wait.
func (l *limiter) take(key string, n int, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	if n > l.maxCost() {
		return false, 0
	}
	s := &l.shards[maphash.String(l.seed, key)%limiterShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucket(key, l.burst, now)
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.rate)
	}
	b.last = now // also when the clock went back: refill from here
	if need := float64(n) - b.tokens; need > 0 {
		return false, time.Duration(math.Ceil(need / l.rate * float64(time.Second)))
	}
	b.tokens -= float64(n)
	return true, 0
}

// bucket returns key's bucket, most recently used from now on. A new key
// gets a full bucket, in place of the least recently used one when the
// shard is full. s.mu must be held.
func (s *limiterShard) bucket(key string, burst float64, now time.Time) *bucket {
	b := s.buckets[key]
	switch {
	case b != nil:
		if s.lru.next == b {
			return b
		}
		b.unlink()
	case len(s.buckets) < shardBuckets:
		b = &bucket{key: key, tokens: burst, last: now}
		s.buckets[key] = b
	default:
		b = s.lru.prev
		b.unlink()
		delete(s.buckets, b.key)
		*b = bucket{key: key, tokens: burst, last: now}
		s.buckets[key] = b
	}
	b.prev, b.next = &s.lru, s.lru.next
	b.next.prev, s.lru.next = b, b
	return b
}

func (b *bucket) unlink() {
	b.prev.next, b.next.prev = b.next, b.prev
	b.prev, b.next = nil, nil
}
