package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
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

func tempPath(t testing.TB) string {
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
	if c, err := s.Counts(ctx); err != nil || c[store.CountProfiles] != n/5 {
		t.Fatalf("Counts after Expire = %v, %v; want %d profiles", c, err, n/5)
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

// classified is a segments event that puts id in segs, to be rechecked at
// until (zero: never).
func classified(id string, seq int, segs []string, until time.Time) store.Event {
	return store.Event{ID: store.EventID("c", uint64(seq)), Type: store.TypeSegments, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Classified: &store.Classification{Visitor: id, Segments: segs, Until: until}}
}

// fill writes n profiles p00000... with ApplyBatch: every third in the
// segment "fans", every fourth due for a recheck at base plus its index in
// hours.
func fill(t *testing.T, s *bolt.Store, n int, base time.Time) {
	t.Helper()
	var batches []store.Batch
	for i := range n {
		id := fmt.Sprintf("p%05d", i)
		evs := []store.Event{storetest.Page("c", 1, "/")}
		var segs []string
		if i%3 == 0 {
			segs = []string{"fans"}
		}
		until := time.Time{}
		if i%4 == 0 {
			until = base.Add(time.Duration(i) * time.Hour)
		}
		evs = append(evs, classified(id, 2, segs, until))
		batches = append(batches, store.Batch{ID: id, Events: evs})
	}
	if _, err := s.ApplyBatch(t.Context(), batches); err != nil {
		t.Fatal(err)
	}
}

// TestAggregatesAcrossChunks reads pages larger than a read transaction's
// chunk, and checks that counts, the recheck index and documents are in
// the file: they survive reopening it.
func TestAggregatesAcrossChunks(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	ctx := t.Context()
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	const n = 300
	s, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s, n, base)
	if err := s.PutDocument(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDocument(ctx, "progress", []byte("p00150")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path, bolt.Options{NoSync: true})

	for _, max := range []int{1000, 200, 7} {
		cursor, seen, pages := "", 0, 0
		for {
			ps, next, err := s.Scan(ctx, cursor, max)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range ps {
				if want := fmt.Sprintf("p%05d", seen+i); p.ID != want {
					t.Fatalf("Scan(%q, %d)[%d] = %s, want %s", cursor, max, i, p.ID, want)
				}
			}
			seen += len(ps)
			pages++
			if next == "" {
				break
			}
			cursor = next
		}
		if seen != n || pages != (n+max-1)/max {
			t.Fatalf("Scan by %d: %d profiles in %d pages, want %d in %d", max, seen, pages, n, (n+max-1)/max)
		}
	}

	got, err := s.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := storetest.BruteCounts(t, s); !maps.Equal(got, want) || got[store.SegmentKey("fans")] != n/3 {
		t.Fatalf("Counts after reopening = %v, brute force %v; want %d fans", got, want, n/3)
	}
	due, err := s.Due(ctx, base.Add(20*time.Hour), 100)
	if want := []string{"p00000", "p00004", "p00008", "p00012", "p00016", "p00020"}; err != nil || !slices.Equal(due, want) {
		t.Fatalf("Due after reopening = %q, %v; want %q", due, err, want)
	}
	if d, err := s.Document(ctx, "empty"); err != nil || len(d) != 0 {
		t.Fatalf("Document of an empty document = %q, %v; want it, empty", d, err)
	}
	if d, err := s.Document(ctx, "progress"); err != nil || string(d) != "p00150" {
		t.Fatalf("Document after reopening = %q, %v", d, err)
	}
	if _, err := s.Document(ctx, "progres"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Document of a prefix of a name: %v, want ErrNotFound", err)
	}
}

// TestDueTies checks that profiles due at the same time come in order of
// id, and that times before 1970 sort before later ones.
func TestDueTies(t *testing.T) {
	t.Parallel()
	s := open(t, tempPath(t), bolt.Options{NoSync: true})
	ctx := t.Context()
	at := time.Date(2026, 5, 1, 12, 0, 0, 500, time.UTC)
	for id, until := range map[string]time.Time{"c": at, "a": at, "b": at, "z": time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), "late": at.Add(time.Nanosecond)} {
		if _, err := s.Apply(ctx, id, []store.Event{classified(id, 1, []string{"x"}, until)}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Due(ctx, at, 10); err != nil || !slices.Equal(got, []string{"z", "a", "b", "c"}) {
		t.Fatalf("Due = %q, %v; want z a b c", got, err)
	}
}

// toV1 makes the file at path look as layout 1 wrote it: no counts,
// recheck or documents buckets, and no profile Counted. With mark, it is
// instead a file whose upgrade was interrupted after the profile mark,
// with nothing counted.
func toV1(t *testing.T, path, mark string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range []string{"counts", "recheck", "documents"} {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return fmt.Errorf("delete bucket %s: %w", b, err)
			}
		}
		meta := tx.Bucket([]byte("meta"))
		if mark == "" {
			if err := meta.Put([]byte("layout"), []byte("1")); err != nil {
				return err
			}
		} else {
			if _, err := tx.CreateBucket([]byte("counts")); err != nil {
				return err
			}
			if _, err := tx.CreateBucket([]byte("recheck")); err != nil {
				return err
			}
			if err := meta.Put([]byte("upgrade"), append([]byte{1}, mark...)); err != nil {
				return err
			}
		}
		profiles := tx.Bucket([]byte("profiles"))
		var ids [][]byte
		var ps []*store.Profile
		err := profiles.ForEach(func(k, v []byte) error {
			p, err := store.Unmarshal(v)
			if err != nil {
				return err
			}
			p.Counted = false
			ids, ps = append(ids, bytes.Clone(k)), append(ps, p)
			return nil
		})
		if err != nil {
			return err
		}
		for i, p := range ps {
			enc, err := store.Marshal(p)
			if err != nil {
				return err
			}
			if err := profiles.Put(ids[i], enc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeV1 opens a file of layout 1, whose profiles are not counted:
// Open counts each once, across its transaction chunks, indexes their
// Recheck, and leaves an undecodable profile uncounted.
func TestUpgradeV1(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	ctx := t.Context()
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	const n = 2500
	s, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s, n, base)
	s.Close()
	toV1(t, path, "")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("profiles")).Put([]byte("p01500x"), []byte("garbage"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = open(t, path, bolt.Options{NoSync: true})
	if err := s.Delete(ctx, "p01500x"); err != nil { // Range would fail on it
		t.Fatal(err)
	}
	got, err := s.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := storetest.BruteCounts(t, s); !maps.Equal(got, want) || got[store.CountProfiles] != n {
		t.Fatalf("Counts after the upgrade = %v, brute force %v; want %d profiles", got, want, n)
	}
	for _, id := range []string{"p00000", "p01024", "p02499"} {
		if p, err := s.Load(ctx, id); err != nil || !p.Counted {
			t.Fatalf("Load %s after the upgrade: %v; want it Counted", id, err)
		}
	}
	if due, err := s.Due(ctx, base.Add(time.Duration(n)*time.Hour), n); err != nil || len(due) != n/4 {
		t.Fatalf("Due after the upgrade: %d profiles, %v; want %d", len(due), err, n/4)
	}
	// Counted from now on, the upgraded profiles change the counts.
	if _, err := s.Apply(ctx, "p00001", []store.Event{classified("p00001", 3, []string{"fans"}, time.Time{})}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "p00000"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Counts(ctx); err != nil || !maps.Equal(got, storetest.BruteCounts(t, s)) {
		t.Fatalf("Counts after writes = %v, %v; want brute force %v", got, err, storetest.BruteCounts(t, s))
	}
	s.Close()

	db, err = bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		if v, mark := meta.Get([]byte("layout")), meta.Get([]byte("upgrade")); string(v) != "2" || mark != nil {
			t.Errorf("after the upgrade: layout %q, upgrade mark %q; want 2 and none", v, mark)
		}
		return nil
	})
}

// TestUpgradeResume opens a file whose upgrade stopped after a profile:
// Open counts only the profiles after it, which an interrupted upgrade had
// not counted yet.
func TestUpgradeResume(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	ctx := t.Context()
	const n, mark = 1500, "p00999"
	s, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s, n, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	s.Close()
	toV1(t, path, mark)

	s = open(t, path, bolt.Options{NoSync: true})
	got, err := s.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got[store.CountProfiles] != n-1000 {
		t.Fatalf("Counts after resuming = %v; want %d profiles, those after %s", got, n-1000, mark)
	}
	for id, want := range map[string]bool{"p00999": false, "p01000": true} {
		if p, err := s.Load(ctx, id); err != nil || p.Counted != want {
			t.Fatalf("Load %s after resuming: %v, Counted %v; want %v", id, err, p != nil && p.Counted, want)
		}
	}
}
