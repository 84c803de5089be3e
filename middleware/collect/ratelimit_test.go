package collect

import (
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// A batch larger than the burst is refused without touching the bucket,
// so the key is not locked out afterwards.
func TestLimiterBatchLargerThanBurst(t *testing.T) {
	t.Parallel()
	l := newLimiter(20) // burst 40
	if ok, _ := l.take("10.0.0.1", 2500, t0); ok {
		t.Fatal("a 2,500-event batch passed a burst of 40")
	}
	if l.maxCost() != 40 {
		t.Fatalf("maxCost = %d, want 40", l.maxCost())
	}
	for i := range 40 {
		if ok, wait := l.take("10.0.0.1", 1, t0); !ok {
			t.Fatalf("event %d after the refused batch: refused for %v", i, wait)
		}
	}
	if ok, wait := l.take("10.0.0.1", 1, t0); ok || wait != 50*time.Millisecond {
		t.Fatalf("past the burst: %v, wait %v; want refused for 50ms", ok, wait)
	}
}

// A batch as large as the burst empties the bucket and leaves no debt:
// one token later the key sends again.
func TestLimiterNoDebt(t *testing.T) {
	t.Parallel()
	l := newLimiter(1250) // burst 2,500
	if ok, _ := l.take("k", 2500, t0); !ok {
		t.Fatal("a batch of the burst's size was refused on a full bucket")
	}
	ok, wait := l.take("k", 1, t0)
	if ok || wait <= 0 || wait > time.Millisecond {
		t.Fatalf("right after: %v, wait %v; want refused for at most 1ms", ok, wait)
	}
	if ok, wait := l.take("k", 1, t0.Add(wait)); !ok {
		t.Fatalf("after the announced wait: refused for %v more", wait)
	}
	// A request that does not fit takes nothing, and is told exactly when
	// it will.
	l = newLimiter(5) // burst 10
	if ok, _ := l.take("k", 8, t0); !ok {
		t.Fatal("first 8 refused")
	}
	ok, wait = l.take("k", 8, t0)
	if ok || wait != 1200*time.Millisecond {
		t.Fatalf("second 8: %v, wait %v; want refused for 1.2s", ok, wait)
	}
	if ok, _ := l.take("k", 2, t0); !ok {
		t.Fatal("the refused request took tokens")
	}
	if ok, wait := l.take("k", 8, t0.Add(1600*time.Millisecond)); !ok {
		t.Fatalf("8 after 1.6s: refused for %v", wait)
	}
}

// New keys are never refused for being new, and the table stays bounded.
func TestLimiterManyKeys(t *testing.T) {
	t.Parallel()
	l := newLimiter(20)
	const keys = 200_000
	for i := range keys {
		k := "10." + strconv.Itoa(i>>16) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
		// Every bucket is drained, so none is full again: the worst case
		// for a table that made room only by forgetting full buckets.
		if ok, wait := l.take(k, 40, t0); !ok {
			t.Fatalf("address %d (%s), new: refused for %v", i, k, wait)
		}
	}
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		if len(s.buckets) > shardBuckets {
			t.Errorf("shard %d holds %d buckets, bound %d", i, len(s.buckets), shardBuckets)
		}
		listed := 0
		for b := s.lru.next; b != &s.lru; b = b.next {
			if s.buckets[b.key] != b {
				t.Fatalf("shard %d: listed bucket %q is not in the map", i, b.key)
			}
			listed++
		}
		if listed != len(s.buckets) {
			t.Fatalf("shard %d: %d buckets listed, %d in the map", i, listed, len(s.buckets))
		}
		n += len(s.buckets)
	}
	if n > maxBuckets || n < maxBuckets*9/10 {
		t.Errorf("the limiter remembers %d keys; want at most %d, and most of them", n, maxBuckets)
	}
	// The most recent keys are remembered, drained.
	if ok, _ := l.take("10.3.13.63", 1, t0); ok { // key 199,999
		t.Error("a recently drained key was forgotten")
	}
}

// The least recently used bucket is the one forgotten.
func TestLimiterEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	l := newLimiter(1) // burst 2
	// Keys that land in one shard.
	shard := maphash64(l, "a") % limiterShards
	var keys []string
	for i := 0; len(keys) < shardBuckets+1; i++ {
		if k := strconv.Itoa(i); maphash64(l, k)%limiterShards == shard {
			keys = append(keys, k)
		}
	}
	for _, k := range keys[:shardBuckets] {
		l.take(k, 2, t0) // drained
	}
	l.take(keys[0], 0, t0) // used again: keys[1] is now the oldest
	l.take(keys[shardBuckets], 1, t0)
	if ok, _ := l.take(keys[0], 1, t0); ok {
		t.Error("the recently used key was forgotten")
	}
	if ok, _ := l.take(keys[1], 1, t0); !ok {
		t.Error("the least recently used key was not the one forgotten")
	}
}

// Concurrent requests on one key never take more than the bucket holds.
func TestLimiterConcurrent(t *testing.T) {
	t.Parallel()
	l := newLimiter(500) // burst 1,000
	var passed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				if ok, _ := l.take("shared", 1, t0); ok {
					passed.Add(1)
				}
				l.take("own"+strconv.Itoa(g)+"-"+strconv.Itoa(i), 1, t0)
			}
		}()
	}
	wg.Wait()
	if got := passed.Load(); got != 1000 {
		t.Errorf("%d events passed on one key, want the burst: 1000", got)
	}
}

// A clock that goes back does not lock a key out until it catches up.
func TestLimiterClockBack(t *testing.T) {
	t.Parallel()
	l := newLimiter(1)
	l.take("k", 2, t0)
	back := t0.Add(-time.Hour)
	l.take("k", 1, back)
	if ok, wait := l.take("k", 1, back.Add(time.Second)); !ok {
		t.Errorf("a second after the clock went back an hour: refused for %v", wait)
	}
}

func maphash64(l *limiter, k string) uint64 { return maphash.String(l.seed, k) }

// BenchmarkLimiterNewKeys measures take for keys never seen before, on a
// full table: each call forgets a bucket. The cost per call must not grow
// with the table.
func BenchmarkLimiterNewKeys(b *testing.B) {
	l := newLimiter(20)
	keys := make([]string, 4*maxBuckets)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	for i := range maxBuckets { // fill the table with drained buckets
		l.take(keys[i], 40, t0)
	}
	b.ResetTimer()
	i := maxBuckets
	for b.Loop() {
		if ok, _ := l.take(keys[i%len(keys)], 1, t0); !ok {
			b.Fatal("a new key was refused")
		}
		i++
	}
}

// BenchmarkLimiterParallel measures take from many goroutines over a few
// thousand keys.
func BenchmarkLimiterParallel(b *testing.B) {
	l := newLimiter(1e9)
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(997))
		for pb.Next() {
			l.take(keys[i%len(keys)], 1, t0)
			i++
		}
	})
}
