package core

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tailorhq/tailor/rules"
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

// storedVisitor returns a Core over st and a visitor who came back: its
// cookie, its profile's id, and the Visit of the request that found the
// profile stored and cached.
func storedVisitor(t *testing.T, st store.Store) (*Core, *http.Cookie, string, *Visit) {
	t.Helper()
	c := newCore(t, st)
	v, ck := newVisitor(t, c)
	c.Record(v, track("hello"))
	flushAll(t, c)
	w := returning(t, c, ck)
	return c, ck, w.bind().pid, w
}

// TestRefreshKeepsCachedProfile checks that a flush of a visitor's own
// events keeps the cached profile (with its decoded events and its memo)
// rather than replacing it with the stored one, and that the two are the
// same: the cache folded the events as the store did.
func TestRefreshKeepsCachedProfile(t *testing.T) {
	t.Parallel()
	st := newFlaky(0, false) // a memory store without segment jobs, whose writes would race the test's
	c, _, id, w := storedVisitor(t, st)
	// The first flush may replace the profile: it was loaded while events
	// of the requests that made it were being written.
	c.Record(w, track("warm"))
	flushAll(t, c)
	kept := cachedProfile(t, c, id)
	for i := range 20 {
		c.Record(w, track(fmt.Sprintf("t%d", i%3)))
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

// TestRefreshTakesPageViewsKeptAside checks that page views kept aside
// (not folded into the cached profile) are in it once the flush that
// writes them refreshes it, and in every read before.
func TestRefreshTakesPageViewsKeptAside(t *testing.T) {
	t.Parallel()
	st := newFlaky(0, false) // a memory store without segment jobs, whose writes would race the test's
	c, _, id, w := storedVisitor(t, st)
	for i := range 12 {
		c.Record(w, store.Event{Type: store.TypePage, Path: fmt.Sprintf("/p%d", i%3), Category: "books"})
		if i%5 == 0 {
			c.Record(w, track("add_to_cart")) // folds the page views kept aside first
		}
		if i%3 == 0 {
			if p := c.Profile(w); p.Pages[fmt.Sprintf("/p%d", i%3)] == 0 {
				t.Fatalf("view %d: Profile misses the page view just recorded: %v", i, p.Pages)
			}
		}
		if i%2 == 0 {
			flushAll(t, c)
			got := cachedProfile(t, c, id)
			sameProfile(t, got, load(t, st, id))
		}
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
	c, _, id, w := storedVisitor(t, noAnnouncements{mem})
	if _, err := mem.Apply(context.Background(), id, []store.Event{{ID: "other:1", Type: store.TypeTrack, Name: "email_open", Time: c.Now()}}); err != nil {
		t.Fatal(err)
	}
	c.Record(w, track("add_to_cart"))
	flushAll(t, c)
	cachedAsStored(t, c, mem, id, "email_open", "add_to_cart")
}

// cachedAsStored fails unless the cached profile id counts each of
// events once and is the stored one.
func cachedAsStored(t *testing.T, c *Core, st store.Store, id string, events ...string) {
	t.Helper()
	got := cachedProfile(t, c, id)
	for _, e := range events {
		if got.Counts[e] != 1 {
			t.Fatalf("cached counts %v, want %v once each", got.Counts, events)
		}
	}
	sameProfile(t, got, load(t, st, id))
}

// TestRefreshTakesEventsOfAnotherState checks that a flush does not keep
// a cached profile that misses an event recorded on another state of the
// same profile (a request that loaded it while it was not cached): the
// write is the only one since the cached version, but the folds differ.
func TestRefreshTakesEventsOfAnotherState(t *testing.T) {
	t.Parallel()
	st := newFlaky(0, false) // without segment jobs
	c, ck, id, old := storedVisitor(t, st)
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
	cachedAsStored(t, c, st, id, "email_open", "add_to_cart")
}

// TestLaterPageViewsClassifyAsApplied checks that a returning visitor's
// segments, with page views kept aside and classifications recalled,
// are always those of a fresh classification of the profile as the
// store and the queue have it.
func TestLaterPageViewsClassifyAsApplied(t *testing.T) {
	t.Parallel()
	set, err := rules.NewSet(
		rules.Segment{Name: "customer", Priority: 9, Rule: rules.Purchased(1)},
		rules.Segment{Name: "reader", Priority: 8, Rule: rules.CategoryViews("books", 3)},
		rules.Segment{Name: "pricing", Priority: 7, Rule: rules.PageVisited(rules.PageVisits{Path: "/pricing", Min: 2})},
		rules.Segment{Name: "carted", Priority: 6, Rule: rules.And(rules.EventCount("add_to_cart", 1), rules.Not(rules.Purchased(1)))},
		rules.Segment{Name: "busy", Priority: 5, Rule: rules.CountEvents(rules.Events{Name: "page", Min: 6, Within: time.Hour})},
		rules.Segment{Name: "returning", Priority: 4, Rule: rules.Visits(2)},
	)
	if err != nil {
		t.Fatal(err)
	}
	checked, recalled := 0, uint64(0)
	for seed := range 25 {
		mem := memory.New(store.Limits{})
		c, ck, id, _ := storedVisitor(t, mem)
		c.cfg.Engine.Load(set)
		r := rand.New(rand.NewPCG(uint64(seed), 3))
		for step := range 80 {
			if r.IntN(6) == 0 {
				flushAll(t, c)
			}
			// A request: classified as it begins, then what it records.
			x := new(Visit)
			c.Begin(request("/again", ck), x)
			// The profile as the store and the queue have it, read without
			// touching the cached state.
			want, err := mem.Load(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			want.Apply(store.Limits{}, c.queue.Get(id)...)
			exp := c.cfg.Engine.Classify(&rules.Input{Profile: want, Request: x.Facts, Now: x.Now})
			if !slices.Equal(x.Segments, exp) {
				t.Fatalf("seed %d step %d: Begin classified %v; the profile is in %v (counts %v, pages %v)", seed, step, x.Segments, exp, want.Counts, want.Pages)
			}
			checked++
			switch r.IntN(8) {
			case 0, 1, 2, 3, 4:
				c.Record(x, store.Event{Type: store.TypePage, Path: []string{"/", "/pricing", "/books/a"}[r.IntN(3)],
					Category: []string{"", "books"}[r.IntN(2)]})
			case 5:
				c.Record(x, track([]string{"add_to_cart", "email_open"}[r.IntN(2)]))
			case 6:
				if r.IntN(4) == 0 {
					c.Record(x, store.Event{Type: store.TypeTrack, Name: store.EventPurchase})
				}
			}
		}
		recalled += c.Counters().ClassifyCached.Load()
	}
	if checked < 300 {
		t.Fatalf("only %d classifications checked", checked)
	}
	if recalled == 0 {
		t.Error("no classification was recalled: the test does not exercise the memo")
	}
}

// TestPageViewTime checks that a request's page view is timed when the
// request began, unless the visitor has a later event already: then when
// it is recorded, so that the recent events stay in time order.
func TestPageViewTime(t *testing.T) {
	t.Parallel()
	c, ck, id, _ := storedVisitor(t, memory.New(store.Limits{}))
	last := func() store.Event {
		evs := c.queue.Get(id)
		return evs[len(evs)-1]
	}

	x := new(Visit)
	c.Begin(request("/a", ck), x)
	c.RecordPageView(x, store.Event{Type: store.TypePage, Path: "/a"})
	if got := last(); got.Path != "/a" || !got.Time.Equal(x.Now) {
		t.Errorf("page view at %v, want the request's start %v", got.Time, x.Now)
	}

	y := new(Visit)
	c.Begin(request("/b", ck), y)
	time.Sleep(2 * time.Millisecond)
	c.Record(y, track("add_to_cart")) // while the request is served
	tracked := last().Time
	c.RecordPageView(y, store.Event{Type: store.TypePage, Path: "/b"})
	if got := last(); got.Path != "/b" || got.Time.Before(tracked) {
		t.Errorf("page view at %v, before the request's own event at %v", got.Time, tracked)
	}
}

// TestPageViewsKeptAsideBounded checks that a visitor's page views kept
// aside are folded into the profile past maxLater, also while the store
// does not answer (no flush comes to take them), and are all counted.
func TestPageViewsKeptAsideBounded(t *testing.T) {
	t.Parallel()
	st := newFlaky(0, false)
	c, _, id, w := storedVisitor(t, st)
	st.fails.Store(1 << 20) // every write fails from now on
	for i := range 5 * maxLater {
		c.RecordPageView(w, store.Event{Type: store.TypePage, Path: fmt.Sprintf("/p%d", i)})
		if n := len(w.bind().st.later); n > maxLater {
			t.Fatalf("after %d page views, %d kept aside", i+1, n)
		}
	}
	if got := c.Profile(w).Counts["page"]; got < 5*maxLater {
		t.Fatalf("the profile counts %d page views, want at least %d", got, 5*maxLater)
	}
	st.fails.Store(0)
	flushAll(t, c)
	if got := load(t, st, id).Counts["page"]; got < 5*maxLater {
		t.Fatalf("stored %d page views, want at least %d", got, 5*maxLater)
	}
}

// TestReadProfilePartsLeavesPageViewsAside checks that a read of parts
// the page views kept aside do not touch leaves them aside, and that a
// read of a part they touch folds them in first.
func TestReadProfilePartsLeavesPageViewsAside(t *testing.T) {
	c, _, pid, w := storedVisitor(t, newFlaky(0, false))
	c.lockFlush() // no refresh meanwhile
	defer c.unlockFlush()
	c.RecordPageView(w, store.Event{Type: store.TypePage, Path: "/aside"})
	st := w.bind().st
	var pages int
	c.ReadProfileParts(w, store.TouchTraits|store.TouchPurchases, func(p *store.Profile) { pages = p.Pages["/aside"] })
	if pages != 0 || len(st.later) != 1 {
		t.Fatalf("a read of the traits and purchases: the page view counted %d times, %d kept aside; want 0 and 1", pages, len(st.later))
	}
	c.ReadProfileParts(w, store.TouchPage("/aside"), func(p *store.Profile) { pages = p.Pages["/aside"] })
	if pages != 1 || len(st.later) != 0 {
		t.Fatalf("a read of the page's count: the page view counted %d times, %d kept aside; want 1 and 0", pages, len(st.later))
	}
	if p := cachedProfile(t, c, pid); p.Pages["/aside"] != 1 {
		t.Fatalf("cached pages %v", p.Pages)
	}
}
