// Package storetest is the conformance suite for store.Store
// implementations. Every store in tailor passes it; run it against your own:
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return mystore.New(...) })
//	}
//
// newStore must return an empty store that no other test uses (a fresh
// key prefix or database is enough). The suite closes every store it opens.
//
// The tests of tombstone expiry need a store whose tombstones live for a
// few seconds; give them one with RunWith, whose factory is passed the
// Options to open the store with:
//
//	storetest.RunWith(t, func(t *testing.T, o storetest.Options) store.Store {
//		return mystore.New(mystore.Config{TombstoneTTL: o.TombstoneTTL})
//	})
//
// Run skips those tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

// Options are the settings a test needs its store opened with. The zero
// value means the store's defaults.
type Options struct {
	// TombstoneTTL is how long the tombstones that Delete leaves live.
	// Zero means the store's default, store.DefaultTombstoneTTL.
	TombstoneTTL time.Duration
}

// Run runs the conformance suite. Subtests run in parallel with each other,
// each on its own store from newStore. The tests that need a store opened
// with Options other than the zero value are skipped: use RunWith to run
// them too.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	RunWith(t, func(t *testing.T, o Options) store.Store {
		if o != (Options{}) {
			t.Skipf("needs a store opened with %+v: run the suite with storetest.RunWith", o)
		}
		return newStore(t)
	})
}

// RunWith runs the conformance suite as Run does, with a newStore that
// opens the store with the Options it is given.
func RunWith(t *testing.T, newStore func(t *testing.T, o Options) store.Store) {
	t.Helper()
	open := func(t *testing.T) store.Store {
		s := newStore(t, Options{})
		t.Cleanup(func() { s.Close() })
		return s
	}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"LoadMissing", testLoadMissing},
		{"ApplyAndLoad", testApplyAndLoad},
		{"ExactlyOnce", testExactlyOnce},
		{"Version", testVersion},
		{"Delete", testDelete},
		{"Batch", testBatch},
		{"ConcurrentApply", testConcurrentApply},
		{"Bounds", testBounds},
		{"IDs", testIDs},
		{"Canceled", testCanceled},
		{"Owned", testOwned},
		{"Range", testRange},
		{"Expire", testExpire},
		{"Subscribe", testSubscribe},
		{"Erased", testErased},
		{"ErasedBatch", testErasedBatch},
		{"ErasedRace", testErasedRace},
		{"ErasedNotProfiles", testErasedNotProfiles},
		{"Lease", testLease},
		{"LeaseExpiry", testLeaseExpiry},
		{"LeaseContended", testLeaseContended},
		{"Counts", testCounts},
		{"CountsConcurrent", testCountsConcurrent},
		{"BatchCounts", testBatchCounts},
		{"Due", testDue},
		{"Scan", testScan},
		{"Documents", testDocuments},
		{"DocumentAnnounced", testDocumentAnnounced},
		{"ClassifiedVersion", testClassifiedVersion},
		{"Journal", testJournal},
		{"JournalConcurrent", testJournalConcurrent},
		{"JournalErased", testJournalErased},
		{"JournalErasedRace", testJournalErasedRace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
	t.Run("TombstoneExpiry", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, Options{TombstoneTTL: shortTTL})
		t.Cleanup(func() { s.Close() })
		testTombstoneExpiry(t, s)
	})
	t.Run("Closed", func(t *testing.T) {
		t.Parallel()
		testClosed(t, newStore(t, Options{}))
	})
}

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// Page returns a page-view event with a sequenced id.
func Page(producer string, seq int, path string) store.Event {
	return store.Event{
		ID:   store.EventID(producer, uint64(seq)),
		Type: store.TypePage, Path: path, Category: "books", Item: "moneyball",
		Time: t0.Add(time.Duration(seq) * time.Second),
	}
}

func purchase(id string, at time.Time) store.Event {
	return store.Event{
		ID: id, Type: store.TypeTrack, Name: store.EventPurchase, Time: at,
		Items: []store.Item{{ID: "moneyball", Category: "books", Price: 12.5, Quantity: 2}},
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

func testLoadMissing(t *testing.T, s store.Store) {
	_, err := s.Load(ctx(t), "nobody")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load(missing) error = %v, want ErrNotFound", err)
	}
}

func testApplyAndLoad(t *testing.T, s store.Store) {
	evs := []store.Event{
		Page("a", 1, "/"), Page("a", 2, "/products/moneyball"),
		purchase("msg-1", t0.Add(time.Hour)),
		{ID: "msg-2", Type: store.TypeIdentify, UserID: "u@example.com", Time: t0.Add(2 * time.Hour),
			Traits: []byte(`{"crm_stage":"lead","name":"Ana"}`)},
		{ID: "msg-3", Type: store.TypeIdentify, Time: t0.Add(3 * time.Hour), Traits: []byte(`{"crm_stage":"opportunity"}`)},
	}
	p, err := s.Apply(ctx(t), "v1", evs)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	check := func(where string, p *store.Profile) {
		t.Helper()
		if p.ID != "v1" || p.UserID != "u@example.com" {
			t.Errorf("%s: ID, UserID = %q, %q", where, p.ID, p.UserID)
		}
		if p.Counts["page"] != 2 || p.Counts["purchase"] != 1 || p.Counts["identify"] != 2 {
			t.Errorf("%s: Counts = %v", where, p.Counts)
		}
		if p.Pages["/products/moneyball"] != 1 || p.Categories["books"] != 2 {
			t.Errorf("%s: Pages = %v, Categories = %v", where, p.Pages, p.Categories)
		}
		if p.Purchases.Count != 1 || p.Purchases.Revenue != 25 || p.Purchases.Items["moneyball"] != 2 || p.Purchases.Months[2] != 1 {
			t.Errorf("%s: Purchases = %+v", where, p.Purchases)
		}
		if got := string(p.Traits); got != `{"crm_stage":"opportunity","name":"Ana"}` {
			t.Errorf("%s: Traits = %s", where, got)
		}
		if p.Recent.Len() != 5 || p.Recent.At(0).Path != "/" || p.Recent.At(4).ID != "msg-3" {
			t.Errorf("%s: Recent = %+v", where, p.Recent.Events())
		}
		if !p.FirstSeen.Equal(t0.Add(time.Second)) || !p.LastSeen.Equal(t0.Add(3*time.Hour)) {
			t.Errorf("%s: FirstSeen, LastSeen = %v, %v", where, p.FirstSeen, p.LastSeen)
		}
	}
	check("Apply", p)
	l, err := s.Load(ctx(t), "v1")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	check("Load", l)
}

func testExactlyOnce(t *testing.T, s store.Store) {
	evs := []store.Event{Page("a", 1, "/"), Page("a", 2, "/"), purchase("m1", t0)}
	for range 3 {
		if _, err := s.Apply(ctx(t), "v", evs); err != nil {
			t.Fatal(err)
		}
	}
	// Older sequence numbers of the same producer are skipped too, newer
	// ones and other producers' are not.
	p, err := s.Apply(ctx(t), "v", []store.Event{Page("a", 1, "/"), Page("b", 1, "/"), Page("a", 3, "/")})
	if err != nil {
		t.Fatal(err)
	}
	if p.Counts["page"] != 4 || p.Purchases.Count != 1 {
		t.Fatalf("after retries: Counts = %v, want page 4 purchase 1", p.Counts)
	}
}

func testVersion(t *testing.T, s store.Store) {
	var last uint64
	for i := 1; i <= 3; i++ {
		p, err := s.Apply(ctx(t), "v", []store.Event{Page("a", i, "/")})
		if err != nil {
			t.Fatal(err)
		}
		if p.Version != last+1 {
			t.Fatalf("Version %d after %d, want one more for each Apply", p.Version, last)
		}
		last = p.Version
	}
}

func testDelete(t *testing.T, s store.Store) {
	if _, err := s.Apply(ctx(t), "v", []store.Event{Page("a", 1, "/")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx(t), "v"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Load(ctx(t), "v"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx(t), "v"); err != nil {
		t.Fatalf("Delete of missing id: %v, want nil", err)
	}
	// The tombstone refuses what is still on its way to the profile.
	if p, err := s.Apply(ctx(t), "v", []store.Event{Page("z", 1, "/")}); !errors.Is(err, store.ErrErased) || p != nil {
		t.Fatalf("Apply after Delete = %v, %v; want nil, ErrErased", p, err)
	}
}

func testBatch(t *testing.T, s store.Store) {
	var batches []store.Batch
	for v := range 20 {
		var evs []store.Event
		for i := 1; i <= 5; i++ {
			evs = append(evs, Page("p", v*10+i, fmt.Sprintf("/p/%d", i)))
		}
		batches = append(batches, store.Batch{ID: fmt.Sprintf("v%d", v), Events: evs})
	}
	for range 2 { // the second time is a retry: nothing changes
		ps, err := store.ApplyBatch(ctx(t), s, batches)
		if err != nil {
			t.Fatalf("ApplyBatch: %v", err)
		}
		if len(ps) != len(batches) {
			t.Fatalf("ApplyBatch returned %d profiles for %d batches", len(ps), len(batches))
		}
		for i, p := range ps {
			if p.ID != batches[i].ID || p.Counts["page"] != 5 {
				t.Fatalf("profile %d: ID %q Counts %v", i, p.ID, p.Counts)
			}
		}
	}
	for _, b := range batches {
		p, err := s.Load(ctx(t), b.ID)
		if err != nil || p.Counts["page"] != 5 {
			t.Fatalf("Load(%s) = %v, %v", b.ID, p, err)
		}
	}
}

// testConcurrentApply has many goroutines apply to the same few profiles;
// the totals must be exact.
func testConcurrentApply(t *testing.T, s store.Store) {
	const workers, per, ids = 16, 50, 3
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prod := fmt.Sprintf("w%d", w)
			for i := 1; i <= per; i++ {
				id := fmt.Sprintf("hot%d", i%ids)
				if _, err := s.Apply(context.Background(), id, []store.Event{Page(prod, i, "/")}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for i := range ids {
		p, err := s.Load(ctx(t), fmt.Sprintf("hot%d", i))
		if err != nil {
			t.Fatal(err)
		}
		total += p.Counts["page"]
	}
	if total != workers*per {
		t.Fatalf("total page views %d, want %d: updates were lost or doubled", total, workers*per)
	}
}

func testBounds(t *testing.T, s store.Store) {
	lim := store.LimitsOf(s)
	n := lim.Recent + 50
	if m := lim.Pages + 10; m > n {
		n = m
	}
	var evs []store.Event
	for i := 1; i <= n; i++ {
		evs = append(evs, Page("b", i, fmt.Sprintf("/page/%d", i)))
	}
	big := `{"bio":"` + strings.Repeat("x", lim.TraitsBytes) + `"}`
	evs = append(evs, store.Event{ID: "big", Type: store.TypeIdentify, Time: t0, Traits: []byte(big)})
	if _, err := s.Apply(ctx(t), "big", evs); err != nil {
		t.Fatal(err)
	}
	p, err := s.Load(ctx(t), "big")
	if err != nil {
		t.Fatal(err)
	}
	if p.Recent.Len() != lim.Recent || p.Recent.At(lim.Recent-1).ID != "big" {
		t.Errorf("Recent holds %d events, want the newest %d", p.Recent.Len(), lim.Recent)
	}
	if len(p.Pages) != lim.Pages || p.Counts["page"] != n {
		t.Errorf("%d distinct pages kept, %d counted; want %d and %d", len(p.Pages), p.Counts["page"], lim.Pages, n)
	}
	if len(p.Traits) != 0 || p.Truncated == 0 {
		t.Errorf("an oversized trait update was kept (%d bytes) or not counted (%d)", len(p.Traits), p.Truncated)
	}
}

func testIDs(t *testing.T, s store.Store) {
	for _, id := range []string{"ünïcødé-访客-🎨", "../../etc/passwd", "a/b\\c", "with space", "'; DROP TABLE profiles; --", "{hash}tag", "*", strings.Repeat("x", store.MaxIDLength)} {
		p, err := s.Apply(ctx(t), id, []store.Event{Page("i", 1, "/")})
		if err != nil {
			t.Errorf("Apply(%q): %v", id, err)
			continue
		}
		l, err := s.Load(ctx(t), id)
		if err != nil || l.ID != id || p.ID != id {
			t.Errorf("Load(%q) = %v, %v", id, l, err)
		}
	}
	for _, id := range []string{"", "nul\x00byte", "new\nline", strings.Repeat("x", store.MaxIDLength+1), "\xff\xfe"} {
		if _, err := s.Apply(ctx(t), id, []store.Event{Page("i", 1, "/")}); !errors.Is(err, store.ErrInvalidID) {
			t.Errorf("Apply(%q) error = %v, want ErrInvalidID", id, err)
		}
		if _, err := s.Load(ctx(t), id); !errors.Is(err, store.ErrInvalidID) {
			t.Errorf("Load(%q) error = %v, want ErrInvalidID", id, err)
		}
		if err := s.Delete(ctx(t), id); !errors.Is(err, store.ErrInvalidID) {
			t.Errorf("Delete(%q) error = %v, want ErrInvalidID", id, err)
		}
	}
}

func testCanceled(t *testing.T, s store.Store) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Apply(c, "v", []store.Event{Page("c", 1, "/")}); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply with canceled context: %v, want context.Canceled", err)
	}
	if _, err := s.Load(c, "v"); !errors.Is(err, context.Canceled) {
		t.Errorf("Load with canceled context: %v, want context.Canceled", err)
	}
	if _, err := s.Load(ctx(t), "v"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a canceled Apply stored something: Load = %v", err)
	}
}

// testOwned checks that returned profiles are copies.
func testOwned(t *testing.T, s store.Store) {
	p, err := s.Apply(ctx(t), "v", []store.Event{Page("o", 1, "/")})
	if err != nil {
		t.Fatal(err)
	}
	p.Counts["page"] = 99
	l, _ := s.Load(ctx(t), "v")
	l.Pages["/"] = 99
	l2, _ := s.Load(ctx(t), "v")
	if l2.Counts["page"] != 1 || l2.Pages["/"] != 1 {
		t.Fatalf("changing a returned profile changed the store: %v %v", l2.Counts, l2.Pages)
	}
}

func testRange(t *testing.T, s store.Store) {
	r, ok := s.(store.Ranger)
	if !ok {
		t.Skip("store does not implement store.Ranger")
	}
	for i := range 7 {
		if _, err := s.Apply(ctx(t), fmt.Sprintf("r%d", i), []store.Event{Page("r", 1, "/")}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	if err := r.Range(ctx(t), func(p *store.Profile) bool { seen[p.ID] = true; return true }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 7 {
		t.Fatalf("Range visited %d profiles, want 7", len(seen))
	}
	n := 0
	if err := r.Range(ctx(t), func(*store.Profile) bool { n++; return n < 3 }); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("Range went on after fn returned false: %d calls", n)
	}
}

func testExpire(t *testing.T, s store.Store) {
	e, ok := s.(store.Expirer)
	if !ok {
		t.Skip("store does not implement store.Expirer")
	}
	old := []store.Event{{ID: "o", Type: store.TypePage, Path: "/", Time: t0.AddDate(-2, 0, 0)}}
	fresh := []store.Event{{ID: "f", Type: store.TypePage, Path: "/", Time: t0}}
	if _, err := s.Apply(ctx(t), "old", old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx(t), "fresh", fresh); err != nil {
		t.Fatal(err)
	}
	n, err := e.Expire(ctx(t), t0.AddDate(-1, 0, 0))
	if err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v; want 1, nil", n, err)
	}
	if _, err := s.Load(ctx(t), "old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired profile still there: %v", err)
	}
	if _, err := s.Load(ctx(t), "fresh"); err != nil {
		t.Errorf("fresh profile gone: %v", err)
	}
}

func testSubscribe(t *testing.T, s store.Store) {
	inv, ok := s.(store.Invalidator)
	if !ok {
		t.Skip("store does not implement store.Invalidator")
	}
	got := make(chan store.Change, 16)
	if err := inv.Subscribe(ctx(t), func(c store.Change) { got <- c }); err != nil {
		t.Fatal(err)
	}
	expect := func(after string, want store.Change) {
		t.Helper()
		select {
		case c := <-got:
			if c != want {
				t.Fatalf("after %s: %+v, want %+v", after, c, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no announcement within 5s of %s", after)
		}
	}
	if _, err := s.Apply(ctx(t), "sub", []store.Event{Page("s", 1, "/")}); err != nil {
		t.Fatal(err)
	}
	expect("Apply", store.Change{ID: "sub"})
	if err := s.Delete(ctx(t), "sub"); err != nil {
		t.Fatal(err)
	}
	expect("Delete", store.Change{ID: "sub", Deleted: true})
	// A deletion is announced even without a profile: other processes may
	// hold events for it that they have not written yet.
	if err := s.Delete(ctx(t), "never-written"); err != nil {
		t.Fatal(err)
	}
	expect("Delete of a missing profile", store.Change{ID: "never-written", Deleted: true})
	if ex, ok := s.(store.Expirer); ok {
		old := Page("s", 2, "/")
		old.Time = old.Time.Add(-1000 * time.Hour)
		if _, err := s.Apply(ctx(t), "stale", []store.Event{old}); err != nil {
			t.Fatal(err)
		}
		expect("Apply", store.Change{ID: "stale"})
		if _, err := ex.Expire(ctx(t), old.Time.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		expect("Expire", store.Change{ID: "stale"}) // expired, not erased
	}
}

func testClosed(t *testing.T, s store.Store) {
	if _, err := s.Apply(ctx(t), "v", []store.Event{Page("c", 1, "/")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Load(ctx(t), "v"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Load after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Apply(ctx(t), "v", nil); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Apply after Close: %v, want ErrClosed", err)
	}
	if err := s.Delete(ctx(t), "v"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Delete after Close: %v, want ErrClosed", err)
	}
	if _, err := store.ApplyBatch(ctx(t), s, []store.Batch{{ID: "v", Events: []store.Event{Page("c", 2, "/")}}}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("ApplyBatch after Close: %v, want ErrClosed", err)
	}
	if r, ok := s.(store.Ranger); ok {
		if err := r.Range(ctx(t), func(*store.Profile) bool { return true }); !errors.Is(err, store.ErrClosed) {
			t.Errorf("Range after Close: %v, want ErrClosed", err)
		}
	}
	if e, ok := s.(store.Expirer); ok {
		if _, err := e.Expire(ctx(t), time.Now()); !errors.Is(err, store.ErrClosed) {
			t.Errorf("Expire after Close: %v, want ErrClosed", err)
		}
	}
	if l, ok := s.(store.Leaser); ok {
		if _, err := l.Lease(ctx(t), "jobs", "a", time.Minute); !errors.Is(err, store.ErrClosed) {
			t.Errorf("Lease after Close: %v, want ErrClosed", err)
		}
		if err := l.Release(ctx(t), "jobs", "a"); !errors.Is(err, store.ErrClosed) {
			t.Errorf("Release after Close: %v, want ErrClosed", err)
		}
	}
	if c, ok := s.(store.Counter); ok {
		if _, err := c.Counts(ctx(t)); !errors.Is(err, store.ErrClosed) {
			t.Errorf("Counts after Close: %v, want ErrClosed", err)
		}
	}
	if rc, ok := s.(store.Rechecker); ok {
		if _, err := rc.Due(ctx(t), time.Now(), 10); !errors.Is(err, store.ErrClosed) {
			t.Errorf("Due after Close: %v, want ErrClosed", err)
		}
	}
	if sc, ok := s.(store.Scanner); ok {
		if _, _, err := sc.Scan(ctx(t), "", 10); !errors.Is(err, store.ErrClosed) {
			t.Errorf("Scan after Close: %v, want ErrClosed", err)
		}
	}
	if d, ok := s.(store.Documents); ok {
		if _, err := d.Document(ctx(t), "x"); !errors.Is(err, store.ErrClosed) {
			t.Errorf("Document after Close: %v, want ErrClosed", err)
		}
		if err := d.PutDocument(ctx(t), "x", nil); !errors.Is(err, store.ErrClosed) {
			t.Errorf("PutDocument after Close: %v, want ErrClosed", err)
		}
	}
	if j, ok := s.(store.Journal); ok {
		if _, _, err := j.Purchases(ctx(t), "", 10); !errors.Is(err, store.ErrClosed) {
			t.Errorf("Purchases after Close: %v, want ErrClosed", err)
		}
		if err := j.TrimPurchases(ctx(t), time.Now()); !errors.Is(err, store.ErrClosed) {
			t.Errorf("TrimPurchases after Close: %v, want ErrClosed", err)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("a second Close: %v, want nil", err)
	}
}

// shortTTL is the tombstone TTL of TombstoneExpiry: long enough that the
// checks made while the tombstone must live are rarely inconclusive on a
// busy machine (see alive), short enough to keep the test quick.
const shortTTL = 3 * time.Second

// erased checks that id has a live tombstone: Load is ErrErased and
// ErrNotFound, Apply is refused with ErrErased and stores nothing.
func erased(t *testing.T, s store.Store, id string) {
	t.Helper()
	_, err := s.Load(ctx(t), id)
	if !errors.Is(err, store.ErrErased) || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load(%q) after Delete: %v; want ErrErased that is also ErrNotFound", id, err)
	}
	p, err := s.Apply(ctx(t), id, []store.Event{Page("late", 1, "/late")})
	if !errors.Is(err, store.ErrErased) || p != nil {
		t.Fatalf("Apply(%q) after Delete = %v, %v; want nil, ErrErased", id, p, err)
	}
	if _, err := s.Load(ctx(t), id); !errors.Is(err, store.ErrErased) {
		t.Fatalf("Load(%q) after a refused Apply: %v; want ErrErased", id, err)
	}
}

func testErased(t *testing.T, s store.Store) {
	if _, err := s.Apply(ctx(t), "v", []store.Event{Page("a", 1, "/"), Page("a", 2, "/x")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx(t), "v"); err != nil {
		t.Fatal(err)
	}
	erased(t, s, "v")
	// Events the profile had before, retried, are refused too.
	if _, err := s.Apply(ctx(t), "v", []store.Event{Page("a", 2, "/x")}); !errors.Is(err, store.ErrErased) {
		t.Fatalf("Apply of old events after Delete: %v, want ErrErased", err)
	}
	// A Delete of an id that never had a profile leaves a tombstone too.
	if err := s.Delete(ctx(t), "never"); err != nil {
		t.Fatal(err)
	}
	erased(t, s, "never")
	// Deleting again is not an error and keeps the id erased.
	if err := s.Delete(ctx(t), "v"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	erased(t, s, "v")
	// Other ids are untouched.
	if p, err := s.Apply(ctx(t), "other", []store.Event{Page("a", 1, "/")}); err != nil || p.Counts["page"] != 1 {
		t.Fatalf("Apply of another id = %v, %v", p, err)
	}
}

func testErasedBatch(t *testing.T, s store.Store) {
	for _, id := range []string{"a", "gone"} {
		if _, err := s.Apply(ctx(t), id, []store.Event{Page("b", 1, "/")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx(t), "gone"); err != nil {
		t.Fatal(err)
	}
	batches := []store.Batch{
		{ID: "a", Events: []store.Event{Page("b", 2, "/")}},
		{ID: "gone", Events: []store.Event{Page("b", 2, "/")}},
		{ID: "new", Events: []store.Event{Page("b", 1, "/")}},
		{ID: "gone", Events: []store.Event{Page("b", 3, "/")}},
		{ID: "a", Events: []store.Event{Page("b", 3, "/")}},
	}
	check := func(how string, ps []*store.Profile, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s with a tombstoned batch: %v, want no error", how, err)
		}
		if len(ps) != len(batches) {
			t.Fatalf("%s returned %d profiles for %d batches", how, len(ps), len(batches))
		}
		for i, b := range batches {
			switch p := ps[i]; {
			case b.ID == "gone" && p != nil:
				t.Errorf("%s: profile %d (tombstoned) = %+v, want nil", how, i, p)
			case b.ID != "gone" && (p == nil || p.ID != b.ID):
				t.Errorf("%s: profile %d = %+v, want %q's", how, i, p, b.ID)
			}
		}
	}
	ps, err := store.ApplyBatch(ctx(t), s, batches)
	check("ApplyBatch", ps, err)
	// The fallback for stores without BatchApplier keeps the same contract.
	ps, err = store.ApplyBatch(ctx(t), applyOnly{s}, batches)
	check("ApplyBatch through Apply", ps, err)
	erased(t, s, "gone")
	for id, want := range map[string]int{"a": 3, "new": 1} {
		if p, err := s.Load(ctx(t), id); err != nil || p.Counts["page"] != want {
			t.Fatalf("Load(%q) = %v, %v; want %d page views", id, p, err, want)
		}
	}
}

// applyOnly hides every ability of a Store but the Store interface.
type applyOnly struct{ store.Store }

// testErasedRace has writers apply to profiles while they are deleted.
// Whatever the interleaving, a profile must be absent afterwards (its
// writes landed before the Delete, which removed them, or were refused),
// and no Apply begun after Delete returned may succeed.
func testErasedRace(t *testing.T, s store.Store) {
	const rounds, writers = 8, 4
	for r := range rounds {
		id := fmt.Sprintf("race%d", r)
		var (
			wg       sync.WaitGroup
			deleted  atomic.Bool
			started  = make(chan struct{})
			once     sync.Once
			failures = make(chan string, writers)
		)
		for w := range writers {
			wg.Go(func() {
				for i := 1; ; i++ {
					after := deleted.Load()
					p, err := s.Apply(context.Background(), id, []store.Event{Page(fmt.Sprintf("w%d", w), i, "/")})
					switch {
					case errors.Is(err, store.ErrErased):
						return
					case err != nil:
						failures <- fmt.Sprintf("Apply: %v", err)
						return
					case after:
						failures <- fmt.Sprintf("Apply begun after Delete returned succeeded: %d page views", p.Counts["page"])
						return
					}
					once.Do(func() { close(started) })
				}
			})
		}
		<-started
		if err := s.Delete(ctx(t), id); err != nil {
			t.Fatal(err)
		}
		deleted.Store(true)
		wg.Wait()
		close(failures)
		for f := range failures {
			t.Errorf("%s: %s", id, f)
		}
		if _, err := s.Load(ctx(t), id); !errors.Is(err, store.ErrErased) {
			t.Fatalf("%s: Load after the race: %v; want ErrErased (a write was not refused)", id, err)
		}
	}
}

// testErasedNotProfiles checks that Range and Expire ignore tombstones.
func testErasedNotProfiles(t *testing.T, s store.Store) {
	old := t0.AddDate(-2, 0, 0)
	for _, id := range []string{"kept", "old-gone", "new-gone"} {
		at := t0
		if id == "old-gone" {
			at = old
		}
		if _, err := s.Apply(ctx(t), id, []store.Event{{ID: "e", Type: store.TypePage, Path: "/", Time: at}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"old-gone", "new-gone", "never"} {
		if err := s.Delete(ctx(t), id); err != nil {
			t.Fatal(err)
		}
	}
	if r, ok := s.(store.Ranger); ok {
		var seen []string
		if err := r.Range(ctx(t), func(p *store.Profile) bool { seen = append(seen, p.ID); return true }); err != nil {
			t.Fatal(err)
		}
		if len(seen) != 1 || seen[0] != "kept" {
			t.Errorf("Range visited %q, want only [kept]", seen)
		}
	}
	if e, ok := s.(store.Expirer); ok {
		// Everything is before the far future: only the profile counts.
		n, err := e.Expire(ctx(t), t0.AddDate(100, 0, 0))
		if err != nil || n != 1 {
			t.Errorf("Expire = %d, %v; want 1 (the one profile), nil", n, err)
		}
		for _, id := range []string{"old-gone", "new-gone", "never"} {
			erased(t, s, id)
		}
	}
}

// testTombstoneExpiry runs on a store whose tombstones live for shortTTL.
func testTombstoneExpiry(t *testing.T, s store.Store) {
	if _, err := s.Apply(ctx(t), "v", []store.Event{Page("a", 1, "/before")}); err != nil {
		t.Fatal(err)
	}
	begun := time.Now()
	if err := s.Delete(ctx(t), "v"); err != nil {
		t.Fatal(err)
	}
	alive(t, s, "v", begun)
	// A second Delete, once the first tombstone has lived a while,
	// renews it: it outlives the first.
	waitUntil(t, begun.Add(shortTTL/2))
	renewed := time.Now()
	if err := s.Delete(ctx(t), "v"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, begun.Add(shortTTL+shortTTL/10))
	alive(t, s, "v", renewed)
	// Then it expires: Load is ErrNotFound but no longer ErrErased, and
	// Apply starts a fresh profile.
	deadline := time.Now().Add(30*time.Second + shortTTL)
	for {
		_, err := s.Load(ctx(t), "v")
		if !errors.Is(err, store.ErrErased) {
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Load after the tombstone's TTL: %v, want ErrNotFound", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tombstone still lives %v after a Delete with a TTL of %v", time.Since(renewed), shortTTL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p, err := s.Apply(ctx(t), "v", []store.Event{Page("a", 1, "/before"), Page("b", 1, "/after")})
	if err != nil {
		t.Fatalf("Apply after the tombstone's TTL: %v", err)
	}
	// The old profile is gone: its events count again, as new.
	if p.Counts["page"] != 2 || p.Pages["/before"] != 1 || p.Pages["/after"] != 1 {
		t.Fatalf("profile after the tombstone's TTL: Counts %v Pages %v; want a fresh profile with 2 page views", p.Counts, p.Pages)
	}
	if l, err := s.Load(ctx(t), "v"); err != nil || l.Counts["page"] != 2 {
		t.Fatalf("Load after the tombstone's TTL = %v, %v", l, err)
	}
	// Expire cleans up expired tombstones without counting them.
	if e, ok := s.(store.Expirer); ok {
		if err := s.Delete(ctx(t), "w"); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, time.Now().Add(shortTTL))
		if n, err := e.Expire(ctx(t), t0.AddDate(-10, 0, 0)); err != nil || n != 0 {
			t.Fatalf("Expire with only an expired tombstone = %d, %v; want 0, nil", n, err)
		}
		if _, err := s.Load(ctx(t), "w"); errors.Is(err, store.ErrErased) || !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Load of an expired tombstone's id: %v, want ErrNotFound", err)
		}
	}
}

// alive checks that the tombstone of id, left by a Delete begun at since,
// refuses Apply. If shortTTL had passed by the time the check returned,
// the machine was too slow for the check to mean anything, and it is
// skipped rather than failed.
func alive(t *testing.T, s store.Store, id string, since time.Time) {
	t.Helper()
	_, lerr := s.Load(ctx(t), id)
	p, aerr := s.Apply(ctx(t), id, []store.Event{Page("late", 1, "/late")})
	if time.Since(since) >= shortTTL {
		t.Logf("the check of a live tombstone took more than its TTL, %v; not checked", shortTTL)
		return
	}
	if !errors.Is(lerr, store.ErrErased) || !errors.Is(aerr, store.ErrErased) || p != nil {
		t.Fatalf("%v after Delete: Load %v, Apply %v, %v; want ErrErased", time.Since(since), lerr, p, aerr)
	}
}

// waitUntil returns once the clock has passed at.
func waitUntil(t *testing.T, at time.Time) {
	t.Helper()
	for d := time.Until(at); d > 0; d = time.Until(at) {
		select {
		case <-time.After(d):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
}

// leaser returns s as a store.Leaser, skipping the test if it is none.
func leaser(t *testing.T, s store.Store) store.Leaser {
	t.Helper()
	l, ok := s.(store.Leaser)
	if !ok {
		t.Skip("store does not implement store.Leaser")
	}
	return l
}

// testLease: one holder at a time; the holder renews; Release hands over.
func testLease(t *testing.T, s store.Store) {
	l := leaser(t, s)
	lease := func(name, holder string) bool {
		t.Helper()
		ok, err := l.Lease(ctx(t), name, holder, time.Minute)
		if err != nil {
			t.Fatalf("Lease(%s, %s): %v", name, holder, err)
		}
		return ok
	}
	if !lease("jobs", "a") {
		t.Fatal("a free lease was refused")
	}
	if lease("jobs", "b") {
		t.Fatal("a lease held by a was given to b")
	}
	if !lease("jobs", "a") {
		t.Fatal("the holder could not renew its lease")
	}
	if !lease("other", "b") {
		t.Fatal("a lease of another name was refused")
	}
	// Releasing a lease one does not hold changes nothing.
	if err := l.Release(ctx(t), "jobs", "b"); err != nil {
		t.Fatal(err)
	}
	if lease("jobs", "b") {
		t.Fatal("b released a's lease")
	}
	if err := l.Release(ctx(t), "jobs", "a"); err != nil {
		t.Fatal(err)
	}
	if !lease("jobs", "b") {
		t.Fatal("a released lease was not free")
	}
	if err := l.Release(ctx(t), "never-held", "a"); err != nil {
		t.Fatalf("Release of a lease never held: %v", err)
	}
	for _, tc := range []struct {
		name, holder string
		ttl          time.Duration
	}{
		{"", "a", time.Minute},
		{"jobs", "", time.Minute},
		{strings.Repeat("n", store.MaxLeaseName+1), "a", time.Minute},
		{"jobs", "a", time.Microsecond},
	} {
		if _, err := l.Lease(ctx(t), tc.name, tc.holder, tc.ttl); !errors.Is(err, store.ErrInvalidLease) {
			t.Errorf("Lease(%q, %q, %v): %v, want ErrInvalidLease", tc.name, tc.holder, tc.ttl, err)
		}
	}
	if err := l.Release(ctx(t), "", "a"); !errors.Is(err, store.ErrInvalidLease) {
		t.Errorf("Release of an empty name: %v, want ErrInvalidLease", err)
	}
}

// testLeaseExpiry: a lease that is not renewed passes to another holder
// once its ttl has passed, and not before.
func testLeaseExpiry(t *testing.T, s store.Store) {
	l := leaser(t, s)
	const ttl = 300 * time.Millisecond
	start := time.Now()
	if ok, err := l.Lease(ctx(t), "jobs", "a", ttl); err != nil || !ok {
		t.Fatalf("Lease: %v, %v", ok, err)
	}
	ok, err := l.Lease(ctx(t), "jobs", "b", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if ok && time.Since(start) < ttl {
		t.Fatal("b took a's lease before it expired")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !ok {
		if time.Now().After(deadline) {
			t.Fatalf("a's lease of %v still held %v later", ttl, time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
		if ok, err = l.Lease(ctx(t), "jobs", "b", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := l.Lease(ctx(t), "jobs", "a", ttl); err != nil || ok {
		t.Fatalf("a took back b's lease: %v, %v", ok, err)
	}
}

// testLeaseContended: holders that try at once get the lease one at a
// time, never two.
func testLeaseContended(t *testing.T, s store.Store) {
	l := leaser(t, s)
	const holders, rounds = 8, 20
	var mu sync.Mutex
	for round := range rounds {
		name := fmt.Sprintf("round-%d", round)
		won := 0
		var wg sync.WaitGroup
		for h := range holders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := l.Lease(ctx(t), name, fmt.Sprint("h", h), time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					won++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("round %d: %d holders got the lease, want 1", round, won)
		}
	}
}
