package middleware

import (
	"sync"
	"time"
)

// A limiter is a token bucket per key (a write key, a client address):
// rate tokens a second, at most burst (two seconds' worth). A request
// passes while its bucket holds a token, and takes one token per event;
// the bucket may go into debt, so that a batch larger than the burst
// passes once and then waits its turn. A nil limiter lets everything
// through.
type limiter struct {
	rate, burst float64
	mu          sync.Mutex
	buckets     map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds the keys a limiter remembers. Full buckets are
// forgotten when it is reached; if none is full, new keys wait a second.
const maxBuckets = 100_000

// newLimiter returns a limiter of rate events a second, or nil for a
// negative rate (no bound).
func newLimiter(rate float64) *limiter {
	if rate < 0 {
		return nil
	}
	return &limiter{rate: rate, burst: max(2*rate, 1), buckets: make(map[string]*bucket)}
}

// take takes n tokens from key's bucket at now. When the bucket is empty
// it takes nothing and returns how long until the next token.
func (l *limiter) take(key string, n int, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets && !l.sweep(now) {
			return false, time.Second
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
		return false, max(wait, time.Second)
	}
	b.tokens -= float64(n)
	return true, 0
}

// sweep forgets the buckets that are full again, and reports whether it
// made room.
func (l *limiter) sweep(now time.Time) bool {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	return len(l.buckets) < maxBuckets
}
