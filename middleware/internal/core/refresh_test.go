package core

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// cachedProfile returns the profile of the cached state of id.
func cachedProfile(t *testing.T, c *Core, id string) *store.Profile {
	t.Helper()
	c.cache.Wait()
	st, ok := c.cache.Get(id)
	if !ok {
		t.Fatalf("%s not cached", id)
	}
	mu := c.lock(id)
	mu.Lock()
	defer mu.Unlock()
	return st.prof
}

// sameProfile fails unless the cached profile has exactly the stored
// one's content.
func sameProfile(t *testing.T, cached, stored *store.Profile) {
	t.Helper()
	a, _ := json.Marshal(cached)
	b, _ := json.Marshal(stored)
	if string(a) != string(b) || !slices.Equal(cached.Segments, stored.Segments) || !cached.Recheck.Equal(stored.Recheck) {
		t.Fatalf("cached profile differs from the stored one:\ncached %s %v\nstored %s %v", a, cached.Segments, b, stored.Segments)
	}
}

// TestRefreshKeepsCachedProfile checks that a flush of a visitor's own
// events keeps the cached profile (with its decoded events and its memo)
// rather than replacing it with the stored one, and that the two are the
// same: the cache folded the events as the store did.
func TestRefreshKeepsCachedProfile(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	c := newCore(t, st)
	v, ck := newVisitor(t, c)
	c.Record(v, track("buy"))
	flushAll(t, c)
	w := returning(t, c, ck)
	id := w.bind().pid
	// The first flush may replace the profile: it was loaded while events
	// of the requests that made it were being written.
	c.Record(w, track("warm"))
	flushAll(t, c)
	kept := cachedProfile(t, c, id)
	for i := range 20 {
		c.Record(w, store.Event{Type: store.TypePage, Path: fmt.Sprintf("/p%d", i%3), Category: "books"})
		if i%4 == 0 {
			c.Record(w, track("add_to_cart"))
		}
		flushAll(t, c)
		got := cachedProfile(t, c, id)
		if got != kept {
			t.Fatalf("flush %d replaced the cached profile", i)
		}
		sameProfile(t, got, load(t, st, id))
	}
}

// noAnnouncements hides the store's change announcements, as when they
// are lost.
type noAnnouncements struct{ store.Store }

// TestRefreshTakesAnotherWriter checks that a flush after another
// writer's write, whose announcement was lost, gives the cache the stored
// profile: the version tells that the cached one misses a write.
func TestRefreshTakesAnotherWriter(t *testing.T) {
	t.Parallel()
	mem := memory.New(store.Limits{})
	st := noAnnouncements{mem}
	c := newCore(t, st)
	v, ck := newVisitor(t, c)
	c.Record(v, track("buy"))
	flushAll(t, c)
	w := returning(t, c, ck)
	id := w.bind().pid
	if _, err := mem.Apply(context.Background(), id, []store.Event{{ID: "other:1", Type: store.TypeTrack, Name: "email_open", Time: c.Now()}}); err != nil {
		t.Fatal(err)
	}
	c.Record(w, track("add_to_cart"))
	flushAll(t, c)
	got := cachedProfile(t, c, id)
	if got.Counts["email_open"] != 1 || got.Counts["add_to_cart"] != 1 {
		t.Fatalf("cached counts %v, want the other writer's email_open and our add_to_cart", got.Counts)
	}
	sameProfile(t, got, load(t, mem, id))
}

// TestRefreshTakesEventsOfAnotherState checks that a flush does not keep
// a cached profile that misses an event recorded on another state of the
// same profile (a request that loaded it while it was not cached): the
// write is the only one since the cached version, but the folds differ.
func TestRefreshTakesEventsOfAnotherState(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	c := newCore(t, st)
	v, ck := newVisitor(t, c)
	c.Record(v, track("buy"))
	flushAll(t, c)
	old := returning(t, c, ck)
	id := old.bind().pid
	c.Record(old, track("warm"))
	flushAll(t, c)
	c.Evict(id)
	w := returning(t, c, ck) // a state of its own, cached
	if w.bind().st == old.bind().st {
		t.Fatal("the evicted state came back")
	}
	c.Record(old, track("email_open")) // on the state no longer cached
	c.Record(w, track("add_to_cart"))
	flushAll(t, c)
	got := cachedProfile(t, c, id)
	if got.Counts["email_open"] != 1 || got.Counts["add_to_cart"] != 1 {
		t.Fatalf("cached counts %v, want email_open and add_to_cart", got.Counts)
	}
	sameProfile(t, got, load(t, st, id))
}
