package core

import (
	"context"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// TestHintFindsTheCachedState checks that the state a request finds
// through its cookie's hint is always the one the cache holds for the
// visitor: after evictions, after the cache set it again (a flush's
// refresh), after it went stale (another writer) and after it expired.
func TestHintFindsTheCachedState(t *testing.T) {
	st := memory.New(store.Limits{})
	c, ck, pid, _ := storedVisitor(t, st)
	begin := func(step string) *state {
		t.Helper()
		v := new(Visit)
		c.Begin(request("/hint", ck), v)
		got := v.bind().st
		c.cache.Wait()
		if cached, ok := c.cache.Get(pid); !ok || cached != got {
			t.Fatalf("%s: the request found state %p, the cache holds %p (found %v)", step, got, cached, ok)
		}
		return got
	}
	// Each request checks that it found the cached state; the state may
	// change between them only for a reason (an announcement of the
	// store making it stale).
	requests := func(step string, n int) *state {
		t.Helper()
		var last *state
		for range n {
			last = begin(step)
		}
		return last
	}
	old := requests("returning", 3*lookupEvery)
	// The hints are used: once the cookie's decoded value is cached
	// (ristretto takes a moment), most requests of a visitor find the
	// state without a lookup.
	for deadline := time.Now().Add(wait); ; {
		u := old.uses.Load()
		if now := requests("hinted", 2*lookupEvery); now != old {
			old = now
		} else if old.uses.Load()-u >= lookupEvery {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the requests never used the hint")
		}
	}

	c.Evict(pid)
	if now := requests("after an eviction", 3*lookupEvery); now == old {
		t.Fatal("after an eviction: the request found the evicted state")
	} else {
		old = now
	}

	// A flush refreshes the cached profile and sets the state again.
	c.Record(c.beginVisit(t, ck), track("refreshed"))
	flushAll(t, c)
	requests("after a refresh", 3*lookupEvery)

	// Another writer: the store announces the change, the state is stale.
	if _, err := st.Apply(context.Background(), pid, []store.Event{{ID: "elsewhere:1", Type: store.TypeTrack, Name: "buy", Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for {
		if got := begin("after another writer"); got != old {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("another writer's change never reached the request")
		}
		time.Sleep(5 * time.Millisecond)
	}
	old = requests("after another writer", 3*lookupEvery)

	// Expiry: a hint does not find a state past the expiry of its cache
	// entry (as the state records it), and the lookup it falls back to
	// finds what the cache holds.
	old = requests("before expiry", 3*lookupEvery)
	old.expires.Store(time.Now().Add(-time.Second).UnixNano())
	uses := old.uses.Load()
	begin("expired")
	if old.uses.Load() != uses {
		t.Fatal("the hint found a state past its expiry")
	}
}

// beginVisit returns the Visit of a request of the visitor of ck.
func (p *Core) beginVisit(t *testing.T, ck *http.Cookie) *Visit {
	t.Helper()
	v := new(Visit)
	p.Begin(request("/visit", ck), v)
	if !v.Tracked || v.New {
		t.Fatalf("the visitor of the cookie was not recognised: tracked %v, new %v", v.Tracked, v.New)
	}
	return v
}

// TestHintKeepsNoStateAlive checks that the hint kept with a cookie does
// not keep a state that the cache dropped in memory: the cache's bound
// on memory holds.
func TestHintKeepsNoStateAlive(t *testing.T) {
	c, ck, pid, _ := storedVisitor(t, memory.New(store.Limits{}))
	var w weak.Pointer[state]
	func() {
		var st *state
		for range 3 {
			v := c.beginVisit(t, ck)
			st = v.bind().st
		}
		w = weak.Make(st)
	}()
	c.Evict(pid)
	for range 3 {
		runtime.GC()
	}
	if w.Value() != nil {
		t.Fatal("an evicted state is still in memory, kept by its hint")
	}
	// And the next request finds the visitor's profile again.
	c.beginVisit(t, ck)
}

// TestHintFromSharedLoad forces the order in which a hint could be made
// from a lookup older than the exits it records: a request joins
// another's load of the state, whose lookup found it before it left the
// cache. The hint made then must not find the state that left.
func TestHintFromSharedLoad(t *testing.T) {
	c, _, pid, _ := storedVisitor(t, memory.New(store.Limits{}))
	ctx := context.Background()
	var h atomic.Value
	c.hinted(ctx, pid, &h)
	st1 := c.hinted(ctx, pid, &h)
	if got, ok := c.cache.Get(pid); !ok || got != st1 {
		t.Fatal("setup: the state is not cached")
	}
	// A load in flight (R0), whose lookup returned st1.
	gate, started := make(chan struct{}), make(chan struct{})
	go c.loads.Do(pid, func() (any, error) {
		close(started)
		<-gate
		return st1, nil
	})
	<-started
	c.cache.Del(pid) // st1 leaves the cache, as in an eviction
	c.cache.Wait()
	misses := c.stats.CacheMisses.Load()
	done := make(chan *state)
	go func() { done <- c.hinted(ctx, pid, &h) }() // R1 joins R0's load
	for deadline := time.Now().Add(wait); c.stats.CacheMisses.Load() == misses; {
		if time.Now().After(deadline) {
			t.Fatal("R1 never looked the state up")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // R1 waits in the load
	close(gate)
	if got := <-done; got != st1 {
		t.Skip("R1 did not share R0's load")
	}
	for i := range lookupEvery {
		got := c.hinted(ctx, pid, &h)
		c.cache.Wait()
		if cached, ok := c.cache.Get(pid); !ok || got != cached {
			t.Fatalf("request %d after: the hint returned state %p, the cache holds %p (found %v)", i, got, cached, ok)
		}
	}
}
