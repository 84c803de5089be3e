package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/bolt"
	"github.com/tailorhq/tailor/store/storetest"
)

func open(t *testing.T, path string, opts bolt.Options) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func tempPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "tailor.db")
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.RunWith(t, func(t *testing.T, o storetest.Options) store.Store {
		s, err := bolt.Open(tempPath(t), bolt.Options{TombstoneTTL: o.TombstoneTTL})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestConformanceSmallLimits runs the suite with non-default limits, which
// the bounds test reads back through Limits.
func TestConformanceSmallLimits(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := bolt.Open(tempPath(t), bolt.Options{Limits: store.Limits{Recent: 7, Pages: 5, TraitsBytes: 64}, NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestReopen(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := s.Apply(ctx, "v", []store.Event{storetest.Page("a", 1, "/"), storetest.Page("a", 2, "/x")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s = open(t, path, bolt.Options{})
	p, err := s.Load(ctx, "v")
	if err != nil {
		t.Fatalf("Load after reopen: %v", err)
	}
	if p.Counts["page"] != 2 || p.Version != 1 || p.Recent.Len() != 2 {
		t.Fatalf("after reopen: Counts %v Version %d Recent %d", p.Counts, p.Version, p.Recent.Len())
	}
	// Exactly-once survives the reopen.
	p, err = s.Apply(ctx, "v", []store.Event{storetest.Page("a", 2, "/x"), storetest.Page("a", 3, "/y")})
	if err != nil || p.Counts["page"] != 3 || p.Version != 2 {
		t.Fatalf("Apply after reopen = %v, %v", p, err)
	}
}

func TestLocked(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	open(t, path, bolt.Options{})
	start := time.Now()
	_, err := bolt.Open(path, bolt.Options{Timeout: 50 * time.Millisecond})
	if !errors.Is(err, berrors.ErrTimeout) {
		t.Fatalf("second Open of a locked file: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second Open took %v", d)
	}
}

func TestLayoutVersion(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		return b.Put([]byte("layout"), []byte("99"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, err := bolt.Open(path, bolt.Options{}); err == nil {
		s.Close()
		t.Fatal("Open accepted a file of an unknown layout")
	}
}

func TestOpenBadPath(t *testing.T) {
	t.Parallel()
	if s, err := bolt.Open(filepath.Join(t.TempDir(), "missing", "dir", "x.db"), bolt.Options{}); err == nil {
		s.Close()
		t.Fatal("Open in a missing directory succeeded")
	}
}

// TestExpireIndex checks that the lastseen index follows profiles through
// updates and deletes: Expire must go by each profile's newest LastSeen.
func TestExpireIndex(t *testing.T) {
	t.Parallel()
	s := open(t, tempPath(t), bolt.Options{NoSync: true})
	ctx := t.Context()
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(id string, d int) store.Event {
		return store.Event{ID: id, Type: store.TypePage, Path: "/", Time: day.AddDate(0, 0, d)}
	}
	must := func(_ *store.Profile, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Apply(ctx, "moved", []store.Event{at("m1", 0)}))
	must(s.Apply(ctx, "moved", []store.Event{at("m2", 10)})) // last seen moves forward
	must(s.Apply(ctx, "old", []store.Event{at("o1", 1)}))
	must(s.Apply(ctx, "older-event", []store.Event{at("x1", 20), at("x2", 2)})) // LastSeen stays day 20
	must(s.Apply(ctx, "gone", []store.Event{at("g1", 0)}))
	if err := s.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	must(s.Apply(ctx, "nil-time", []store.Event{{ID: "n", Type: store.TypePage}})) // zero LastSeen

	n, err := s.Expire(ctx, day.AddDate(0, 0, 5))
	if err != nil || n != 2 {
		t.Fatalf("Expire = %d, %v; want 2 (old, nil-time)", n, err)
	}
	for id, want := range map[string]bool{"moved": true, "old": false, "older-event": true, "gone": false, "nil-time": false} {
		_, err := s.Load(ctx, id)
		if got := err == nil; got != want {
			t.Errorf("after Expire, %s present = %v, want %v (%v)", id, got, want, err)
		}
	}
	// Exactly at the boundary is not before it.
	if n, err := s.Expire(ctx, day.AddDate(0, 0, 10)); err != nil || n != 0 {
		t.Fatalf("Expire at the boundary = %d, %v; want 0", n, err)
	}
	if n, err := s.Expire(ctx, day.AddDate(1, 0, 0)); err != nil || n != 2 {
		t.Fatalf("Expire all = %d, %v; want 2", n, err)
	}
	seen := 0
	if err := s.Range(ctx, func(*store.Profile) bool { seen++; return true }); err != nil || seen != 0 {
		t.Fatalf("Range after expiring all: %d profiles, %v", seen, err)
	}
}

// TestExpireMany crosses Expire's transaction chunks.
func TestExpireMany(t *testing.T) {
	t.Parallel()
	s := open(t, tempPath(t), bolt.Options{NoSync: true})
	ctx := t.Context()
	const n = 2500
	var batches []store.Batch
	for i := range n {
		ts := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		if i%5 == 0 {
			ts = ts.AddDate(5, 0, 0)
		}
		batches = append(batches, store.Batch{ID: fmt.Sprintf("v%05d", i), Events: []store.Event{{ID: "e", Type: store.TypePage, Time: ts}}})
	}
	if _, err := s.ApplyBatch(ctx, batches); err != nil {
		t.Fatal(err)
	}
	got, err := s.Expire(ctx, time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC))
	if want := n - n/5; err != nil || got != want {
		t.Fatalf("Expire = %d, %v; want %d", got, err, want)
	}
	left := 0
	s.Range(ctx, func(p *store.Profile) bool { left++; return true })
	if left != n/5 {
		t.Fatalf("%d profiles left, want %d", left, n/5)
	}
}

func TestApplyBatchSameID(t *testing.T) {
	t.Parallel()
	s := open(t, tempPath(t), bolt.Options{NoSync: true})
	ctx := t.Context()
	ps, err := s.ApplyBatch(ctx, []store.Batch{
		{ID: "a", Events: []store.Event{storetest.Page("x", 1, "/")}},
		{ID: "b", Events: []store.Event{storetest.Page("x", 1, "/")}},
		{ID: "a", Events: []store.Event{storetest.Page("x", 2, "/"), storetest.Page("x", 1, "/")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ps[0].Counts["page"] != 1 || ps[0].Version != 1 || ps[2].Counts["page"] != 2 || ps[2].Version != 2 {
		t.Fatalf("snapshots: %v v%d, %v v%d", ps[0].Counts, ps[0].Version, ps[2].Counts, ps[2].Version)
	}
	if ps[0] == ps[2] {
		t.Fatal("two batches of one id returned the same *Profile")
	}
	p, err := s.Load(ctx, "a")
	if err != nil || p.Counts["page"] != 2 || p.Version != 2 {
		t.Fatalf("Load(a) = %v, %v", p, err)
	}
}

func TestApplyBatchAllOrNothing(t *testing.T) {
	t.Parallel()
	s := open(t, tempPath(t), bolt.Options{NoSync: true})
	ctx := t.Context()
	_, err := s.ApplyBatch(ctx, []store.Batch{
		{ID: "ok", Events: []store.Event{storetest.Page("x", 1, "/")}},
		{ID: "bad\n", Events: []store.Event{storetest.Page("x", 1, "/")}},
	})
	if !errors.Is(err, store.ErrInvalidID) {
		t.Fatalf("ApplyBatch with a bad id: %v, want ErrInvalidID", err)
	}
	if _, err := s.Load(ctx, "ok"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed ApplyBatch stored a profile: %v", err)
	}
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.ApplyBatch(c, []store.Batch{{ID: "ok"}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ApplyBatch with a canceled context: %v", err)
	}
	if ps, err := s.ApplyBatch(ctx, nil); err != nil || len(ps) != 0 {
		t.Fatalf("empty ApplyBatch = %v, %v", ps, err)
	}
}

// TestRangeWrites calls the store from Range's callback, across several of
// Range's read chunks: bbolt would deadlock if fn ran inside a read
// transaction while a write grows the file.
func TestRangeWrites(t *testing.T) {
	t.Parallel()
	s := open(t, tempPath(t), bolt.Options{NoSync: true})
	ctx := t.Context()
	const n = 300
	var batches []store.Batch
	for i := range n {
		batches = append(batches, store.Batch{ID: fmt.Sprintf("r%03d", i), Events: []store.Event{storetest.Page("r", 1, "/")}})
	}
	if _, err := s.ApplyBatch(ctx, batches); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var last string
	err := s.Range(ctx, func(p *store.Profile) bool {
		if p.ID <= last {
			t.Errorf("Range out of order: %q after %q", p.ID, last)
		}
		last = p.ID
		seen[p.ID] = true
		if _, err := s.Apply(ctx, p.ID, []store.Event{storetest.Page("r", 2, "/grow")}); err != nil {
			t.Errorf("Apply in Range: %v", err)
			return false
		}
		return true
	})
	if err != nil || len(seen) != n {
		t.Fatalf("Range = %v, visited %d of %d", err, len(seen), n)
	}
	p, _ := s.Load(ctx, "r299")
	if p.Counts["page"] != 2 {
		t.Fatalf("Apply in Range not stored: %v", p.Counts)
	}
}

func TestSubscribe(t *testing.T) {
	t.Parallel()
	s := open(t, tempPath(t), bolt.Options{NoSync: true})
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	var got []string
	if err := s.Subscribe(ctx, func(c store.Change) { mu.Lock(); got = append(got, c.ID); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	s.Apply(t.Context(), "a", []store.Event{storetest.Page("s", 1, "/")})
	s.ApplyBatch(t.Context(), []store.Batch{{ID: "b"}, {ID: "c"}})
	s.Delete(t.Context(), "a")
	s.Expire(t.Context(), time.Now()) // b and c have a zero LastSeen
	cancel()
	s.Apply(t.Context(), "after-cancel", nil)
	mu.Lock()
	defer mu.Unlock()
	want := []string{"a", "b", "c", "a"}
	if len(got) != 6 || fmt.Sprint(got[:4]) != fmt.Sprint(want) || got[4]+got[5] != "bc" && got[4]+got[5] != "cb" {
		t.Fatalf("invalidations %v, want %v then b, c in any order", got, want)
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	s, err := bolt.Open(tempPath(t), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ctx := t.Context()
	if _, err := s.ApplyBatch(ctx, []store.Batch{{ID: "v"}}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("ApplyBatch after Close: %v", err)
	}
	if err := s.Range(ctx, func(*store.Profile) bool { return true }); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Range after Close: %v", err)
	}
	if _, err := s.Expire(ctx, time.Now()); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Expire after Close: %v", err)
	}
	if err := s.Subscribe(ctx, func(store.Change) {}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
}

// TestCloseWhileWriting closes the store under concurrent writers: each
// call either succeeds or returns ErrClosed.
func TestCloseWhileWriting(t *testing.T) {
	t.Parallel()
	s, err := bolt.Open(tempPath(t), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 1; i <= 200; i++ {
				_, err := s.Apply(context.Background(), fmt.Sprintf("w%d", w), []store.Event{storetest.Page("c", i, "/")})
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Apply: %v", err)
					return
				}
			}
		})
	}
	time.Sleep(5 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// TestDeleteUndecodable erases a profile whose stored bytes cannot be
// decoded, index entry included: erasure must not depend on the codec.
func TestDeleteUndecodable(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	ctx := t.Context()
	s, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"v", "w"} {
		if _, err := s.Apply(ctx, id, []store.Event{storetest.Page("d", 1, "/")}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte("profiles")).Put([]byte("v"), []byte("garbage")) })
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = open(t, path, bolt.Options{NoSync: true})
	if _, err := s.Load(ctx, "v"); err == nil || !strings.Contains(err.Error(), `"v"`) {
		t.Fatalf("Load of an undecodable profile: %v, want an error naming it", err)
	}
	if err := s.Delete(ctx, "v"); err != nil {
		t.Fatalf("Delete of an undecodable profile: %v", err)
	}
	if _, err := s.Load(ctx, "v"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load after Delete: %v", err)
	}
	if n, err := s.Expire(ctx, time.Now().AddDate(10, 0, 0)); err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v; want 1 (w only: v's index entry is gone)", n, err)
	}
}

// TestTombstones checks what the conformance suite cannot see: a tombstone
// survives reopening the file, Expire removes expired tombstones from it,
// and a negative TTL is refused.
func TestTombstones(t *testing.T) {
	t.Parallel()
	if s, err := bolt.Open(tempPath(t), bolt.Options{TombstoneTTL: -time.Second}); err == nil || !strings.Contains(err.Error(), "TombstoneTTL") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open with a negative TombstoneTTL: %v, want an error naming it", err)
	}
	path := tempPath(t)
	ctx := t.Context()
	const ttl = 2 * time.Second
	s, err := bolt.Open(path, bolt.Options{NoSync: true, TombstoneTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	for _, id := range []string{"a", "b"} {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = open(t, path, bolt.Options{NoSync: true, TombstoneTTL: ttl})
	// Checked only if the reopening took less than the TTL.
	if _, err := s.Load(ctx, "a"); !errors.Is(err, store.ErrErased) && time.Since(deleted) < ttl {
		t.Fatalf("Load after reopening: %v, want ErrErased", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := s.Load(ctx, "b"); !errors.Is(err, store.ErrErased) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tombstone still alive 30s after its TTL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, err := s.Expire(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("Expire = %d, %v; want 0, nil", n, err)
	}
	s.Close()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket([]byte("tombstones")).Stats().KeyN; n != 0 {
			t.Errorf("%d tombstones left after Expire, want 0", n)
		}
		return nil
	})
}
