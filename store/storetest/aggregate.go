package storetest

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

// bruteCounts is BruteCounts for a store that may not be a Ranger: the
// test is skipped then.
func bruteCounts(t *testing.T, s store.Store) map[string]int64 {
	t.Helper()
	r, ok := s.(store.Ranger)
	if !ok {
		t.Skip("store implements store.Counter but not store.Ranger: counts cannot be checked")
	}
	return BruteCounts(t, r)
}

// BruteCounts counts store.CountKeys over every profile that r yields:
// what a store.Counter's Counts must equal when no write is under way.
func BruteCounts(t testing.TB, r store.Ranger) map[string]int64 {
	t.Helper()
	want := map[string]int64{}
	err := r.Range(t.Context(), func(p *store.Profile) bool {
		for _, k := range store.CountKeys(nil, p) {
			want[k]++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func counts(t *testing.T, s store.Store) map[string]int64 {
	t.Helper()
	got, err := s.(store.Counter).Counts(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func checkCounts(t *testing.T, s store.Store, when string) {
	t.Helper()
	got, want := counts(t, s), bruteCounts(t, s)
	if !maps.Equal(got, want) {
		t.Fatalf("%s: Counts = %v\nbrute force over Range = %v", when, got, want)
	}
}

// classify returns a segments event that moves id's stored segments to segs.
func classify(t *testing.T, s store.Store, id, producer string, seq int, segs []string, until time.Time) store.Event {
	t.Helper()
	var was []string
	if p, err := s.Load(ctx(t), id); err == nil {
		was = p.Segments
	} else if !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return store.Event{ID: store.EventID(producer, uint64(seq)), Type: store.TypeSegments, Time: t0,
		Classified: &store.Classification{Visitor: id, Was: was, Segments: segs, Until: until}}
}

func exposed(producer string, seq int, exp, variant, seg string, goals map[string]int) store.Event {
	g := ""
	for k, v := range goals {
		if g != "" {
			g += ","
		}
		g += fmt.Sprintf("%q:%d", k, v)
	}
	traits := fmt.Sprintf(`{%q:{"variant":%q,"segment":%q,"goals":{%s}}}`, store.ExposureTraitPrefix+exp, variant, seg, g)
	return store.Event{ID: store.EventID(producer, uint64(seq)), Type: store.TypeTrack, Name: "$exposure",
		Time: t0, Traits: []byte(traits)}
}

func track(producer string, seq int, name string) store.Event {
	return store.Event{ID: store.EventID(producer, uint64(seq)), Type: store.TypeTrack, Name: name, Time: t0.Add(time.Duration(seq) * time.Second)}
}

// testCounts checks the aggregates of a small, known history, then against
// brute force after every kind of change.
func testCounts(t *testing.T, s store.Store) {
	if _, ok := s.(store.Counter); !ok {
		t.Skip("store does not implement store.Counter")
	}
	apply := func(id string, evs ...store.Event) {
		t.Helper()
		if _, err := s.Apply(ctx(t), id, evs); err != nil {
			t.Fatalf("Apply %s: %v", id, err)
		}
	}
	apply("a", Page("c", 1, "/"))
	apply("a", classify(t, s, "a", "c", 2, []string{"fans", "buyers"}, time.Time{}))
	apply("b", Page("c", 3, "/"), exposed("c", 4, "hero", "B", "fans", map[string]int{"signup": 0}))
	apply("b", classify(t, s, "b", "c", 5, []string{"fans"}, time.Time{}))
	want := map[string]int64{
		store.CountProfiles:                           2,
		store.SegmentKey("fans"):                      2,
		store.SegmentKey("buyers"):                    1,
		store.ExposureKey("hero", "B", "fans", false): 1,
	}
	// A store whose Limits.TraitsBytes is under the size of the exposure
	// trait drops it, and so does not count b as exposed.
	kept := true
	if p, err := s.Load(ctx(t), "b"); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(string(p.Traits), store.ExposureTraitPrefix+"hero") {
		kept = false
		delete(want, store.ExposureKey("hero", "B", "fans", false))
	}
	if got := counts(t, s); !maps.Equal(got, want) {
		t.Fatalf("Counts = %v, want %v", got, want)
	}
	if p, err := s.Load(ctx(t), "a"); err != nil || !p.Counted {
		t.Fatalf("Load of a written profile: %v; Counted must be set", err)
	}
	apply("b", track("c", 6, "signup")) // converts
	if kept {
		want[store.ExposureKey("hero", "B", "fans", true)] = 1
	}
	if got := counts(t, s); !maps.Equal(got, want) {
		t.Fatalf("after a conversion: Counts = %v, want %v", got, want)
	}
	apply("a", classify(t, s, "a", "c", 7, []string{"buyers"}, time.Time{}))
	want[store.SegmentKey("fans")] = 1
	if got := counts(t, s); !maps.Equal(got, want) {
		t.Fatalf("after an exit: Counts = %v, want %v", got, want)
	}
	apply("a", track("c", 8, "signup"), classify(t, s, "a", "c", 7, []string{"fans"}, time.Time{})) // seq 7 again: skipped
	if got := counts(t, s); !maps.Equal(got, want) {
		t.Fatalf("after a repeated event: Counts = %v, want %v", got, want)
	}
	// b is merged into a user's profile: it counts no more, the user does.
	apply("b", store.Event{ID: store.EventID("c", 9), Type: store.TypeAlias, UserID: "u1", Time: t0})
	checkCounts(t, s, "after a merge")
	if got := counts(t, s); got[store.CountProfiles] != 1 || got[store.SegmentKey("fans")] != 0 {
		t.Fatalf("after b was merged: Counts = %v, want 1 profile and no fans", got)
	}
	if err := s.Delete(ctx(t), "a"); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, s); len(got) != 0 {
		t.Fatalf("after every counted profile went: Counts = %v, want none", got)
	}
	if err := s.Delete(ctx(t), "a"); err != nil { // no profile: counts nothing down
		t.Fatal(err)
	}
	checkCounts(t, s, "after deleting a missing profile")

	if e, ok := s.(store.Expirer); ok {
		apply("old", store.Event{ID: "o", Type: store.TypePage, Path: "/", Time: t0.AddDate(-2, 0, 0)},
			classify(t, s, "old", "c", 10, []string{"fans"}, time.Time{}))
		apply("new", Page("c", 11, "/"), classify(t, s, "new", "c", 12, []string{"fans"}, time.Time{}))
		if n, err := e.Expire(ctx(t), t0.AddDate(-1, 0, 0)); err != nil || n != 1 {
			t.Fatalf("Expire = %d, %v; want 1, nil", n, err)
		}
		checkCounts(t, s, "after Expire")
		if got := counts(t, s); got[store.SegmentKey("fans")] != 1 {
			t.Fatalf("after Expire: Counts = %v, want 1 fan", got)
		}
	}
}

// testCountsConcurrent folds random histories into overlapping profiles
// from many goroutines (so that compare-and-swaps conflict) and checks
// every count against brute force.
func testCountsConcurrent(t *testing.T, s store.Store) {
	if _, ok := s.(store.Counter); !ok {
		t.Skip("store does not implement store.Counter")
	}
	const workers, steps, ids = 8, 60, 12
	segs := []string{"fans", "buyers", "loyal", "new"}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			producer := fmt.Sprintf("w%d", w)
			for i := range steps {
				id := fmt.Sprintf("v%d", rng.IntN(ids))
				seq := i + 1
				var ev store.Event
				switch rng.IntN(8) {
				case 0, 1:
					ev = Page(producer, seq, "/")
				case 2, 3:
					var was []string
					if p, err := s.Load(ctx(t), id); err == nil {
						was = p.Segments
					}
					var to []string
					for _, sg := range segs {
						if rng.IntN(2) == 0 {
							to = append(to, sg)
						}
					}
					ev = store.Event{ID: store.EventID(producer, uint64(seq)), Type: store.TypeSegments, Time: t0,
						Classified: &store.Classification{Visitor: id, Was: was, Segments: to}}
				case 4:
					ev = exposed(producer, seq, "hero", []string{"A", "B"}[rng.IntN(2)], segs[rng.IntN(2)], map[string]int{"signup": rng.IntN(2)})
				case 5:
					ev = track(producer, seq, "signup")
				case 6:
					if rng.IntN(4) == 0 {
						ev = store.Event{ID: store.EventID(producer, uint64(seq)), Type: store.TypeAlias, UserID: fmt.Sprintf("u%d", rng.IntN(3)), Time: t0}
					} else {
						ev = Page(producer, seq, "/x")
					}
				case 7:
					if rng.IntN(3) == 0 {
						if err := s.Delete(ctx(t), id); err != nil {
							errs <- err
							return
						}
						continue
					}
					ev = Page(producer, seq, "/y")
				}
				if _, err := s.Apply(ctx(t), id, []store.Event{ev}); err != nil && !errors.Is(err, store.ErrErased) {
					errs <- fmt.Errorf("Apply %s: %w", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkCounts(t, s, "after concurrent writes")
}

// testBatchCounts checks that ApplyBatch counts as Apply does.
func testBatchCounts(t *testing.T, s store.Store) {
	if _, ok := s.(store.Counter); !ok {
		t.Skip("store does not implement store.Counter")
	}
	var batches []store.Batch
	for i := range 5 {
		id := fmt.Sprintf("b%d", i)
		batches = append(batches, store.Batch{ID: id, Events: []store.Event{Page("c", 1, "/"),
			{ID: store.EventID("c", 2), Type: store.TypeSegments, Time: t0,
				Classified: &store.Classification{Visitor: id, Segments: []string{"fans"}}}}})
	}
	if _, err := store.ApplyBatch(ctx(t), s, batches); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, s); got[store.CountProfiles] != 5 || got[store.SegmentKey("fans")] != 5 {
		t.Fatalf("after ApplyBatch: Counts = %v, want 5 profiles, 5 fans", got)
	}
	checkCounts(t, s, "after ApplyBatch")
}

func testDue(t *testing.T, s store.Store) {
	rc, ok := s.(store.Rechecker)
	if !ok {
		t.Skip("store does not implement store.Rechecker")
	}
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	for i, h := range []int{3, 1, 2, 0} {
		id := fmt.Sprintf("d%d", i)
		until := time.Time{}
		if h > 0 {
			until = at(h)
		}
		if _, err := s.Apply(ctx(t), id, []store.Event{Page("c", 1, "/"), classify(t, s, id, "c", 2, []string{"fans"}, until)}); err != nil {
			t.Fatal(err)
		}
	}
	due := func(h, max int, want ...string) {
		t.Helper()
		got, err := rc.Due(ctx(t), at(h), max)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("Due(+%dh, %d) = %q, want %q", h, max, got, want)
		}
	}
	due(0, 10)
	due(2, 10, "d1", "d2")
	due(5, 2, "d1", "d2")
	due(5, 10, "d1", "d2", "d0")
	// A new classification moves a profile in the index; one without a
	// time takes it out.
	if _, err := s.Apply(ctx(t), "d1", []store.Event{classify(t, s, "d1", "c", 3, []string{"fans"}, at(4))}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx(t), "d2", []store.Event{classify(t, s, "d2", "c", 3, nil, time.Time{})}); err != nil {
		t.Fatal(err)
	}
	due(5, 10, "d0", "d1")
	if err := s.Delete(ctx(t), "d0"); err != nil {
		t.Fatal(err)
	}
	due(5, 10, "d1")
	if p, err := s.Load(ctx(t), "d1"); err != nil || !p.Recheck.Equal(at(4)) {
		t.Fatalf("Load d1 = %v, %v; want Recheck %v", p, err, at(4))
	}
	if _, err := rc.Due(ctx(t), at(5), 0); err == nil {
		t.Error("Due with max 0: no error")
	}
}

func testScan(t *testing.T, s store.Store) {
	sc, ok := s.(store.Scanner)
	if !ok {
		t.Skip("store does not implement store.Scanner")
	}
	const n = 23
	for i := range n {
		if _, err := s.Apply(ctx(t), fmt.Sprintf("s%02d", i), []store.Event{Page("c", 1, "/")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, page := range []int{1, 5, 23, 100} {
		seen := map[string]int{}
		cursor, pages := "", 0
		for {
			ps, next, err := sc.Scan(ctx(t), cursor, page)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) > page {
				t.Fatalf("Scan(%d) returned %d profiles", page, len(ps))
			}
			for _, p := range ps {
				seen[p.ID]++
				if p.Version != 1 || p.Counts["page"] != 1 {
					t.Fatalf("Scan returned %+v", p)
				}
			}
			pages++
			if next == "" {
				break
			}
			if pages > n+2 {
				t.Fatalf("Scan(%d) does not end", page)
			}
			cursor = next
		}
		if len(seen) != n {
			t.Fatalf("Scan(%d) over %d pages saw %d profiles, want %d", page, pages, len(seen), n)
		}
		for id, c := range seen {
			if c != 1 {
				t.Fatalf("Scan(%d) returned %s %d times", page, id, c)
			}
		}
	}
	if _, _, err := sc.Scan(ctx(t), "", 0); err == nil {
		t.Error("Scan with max 0: no error")
	}
}

func testDocuments(t *testing.T, s store.Store) {
	d, ok := s.(store.Documents)
	if !ok {
		t.Skip("store does not implement store.Documents")
	}
	if _, err := d.Document(ctx(t), "model"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Document of a name never put: %v, want ErrNotFound", err)
	}
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for _, data := range [][]byte{[]byte("one"), {}, big, []byte("two")} {
		if err := d.PutDocument(ctx(t), "model", data); err != nil {
			t.Fatal(err)
		}
		got, err := d.Document(ctx(t), "model")
		if err != nil || string(got) != string(data) {
			t.Fatalf("Document after PutDocument of %d bytes: %d bytes, %v", len(data), len(got), err)
		}
	}
	if err := d.PutDocument(ctx(t), "", []byte("x")); !errors.Is(err, store.ErrInvalidDocument) {
		t.Errorf("PutDocument with an empty name: %v, want ErrInvalidDocument", err)
	}
}

// testDocumentAnnounced: a store that keeps documents and announces
// changes announces every document put, once a subscriber that reads it
// on hearing of it reads the new content; a put that fails is not
// announced, and profiles are announced as before.
func testDocumentAnnounced(t *testing.T, s store.Store) {
	d, ok := s.(store.Documents)
	inv, ok2 := s.(store.Invalidator)
	if !ok || !ok2 {
		t.Skip("store does not implement both store.Documents and store.Invalidator")
	}
	type heard struct {
		c    store.Change
		data []byte // the document read when its announcement came
		err  error
	}
	got := make(chan heard, 16)
	if err := inv.Subscribe(ctx(t), func(c store.Change) {
		h := heard{c: c}
		if c.Document != "" {
			h.data, h.err = d.Document(ctx(t), c.Document)
		}
		select {
		case got <- h:
		case <-ctx(t).Done():
		}
	}); err != nil {
		t.Fatal(err)
	}
	next := func(after string) heard {
		t.Helper()
		select {
		case h := <-got:
			return h
		case <-time.After(5 * time.Second):
			t.Fatalf("no announcement within 5s of %s", after)
			return heard{}
		}
	}
	// Names hold any bytes: one starts with the mark of a deletion, one
	// is as long as a name may be.
	long := strings.Repeat("é", store.MaxLeaseName/2)
	for i, put := range []struct {
		name string
		data []byte
	}{
		{"x/y", []byte("v1")},
		{"x/y", []byte("v2")}, // read at the announcement: v2, never v1
		{"x/y", []byte{}},
		{"\x01x", []byte("odd")},
		{long, []byte("long")},
	} {
		if err := d.PutDocument(ctx(t), put.name, put.data); err != nil {
			t.Fatal(err)
		}
		after := fmt.Sprintf("PutDocument %d of %q", i+1, put.name)
		h := next(after)
		if want := (store.Change{Document: put.name}); h.c != want {
			t.Fatalf("after %s: %+v, want %+v", after, h.c, want)
		}
		if h.err != nil || string(h.data) != string(put.data) {
			t.Fatalf("after %s: Document read on the announcement: %q, %v; want %q", after, h.data, h.err, put.data)
		}
	}
	// A put that fails announces nothing: the next announcement is the
	// profile's, which is announced as before.
	if err := d.PutDocument(ctx(t), "", []byte("x")); !errors.Is(err, store.ErrInvalidDocument) {
		t.Fatalf("PutDocument with an empty name: %v, want ErrInvalidDocument", err)
	}
	if _, err := s.Apply(ctx(t), "doc-after", []store.Event{Page("d", 1, "/")}); err != nil {
		t.Fatal(err)
	}
	if h := next("Apply"); h.c != (store.Change{ID: "doc-after"}) {
		t.Fatalf("after a failed PutDocument and an Apply: %+v, want %+v", h.c, store.Change{ID: "doc-after"})
	}
	if err := s.Delete(ctx(t), "doc-after"); err != nil {
		t.Fatal(err)
	}
	if h := next("Delete"); h.c != (store.Change{ID: "doc-after", Deleted: true}) {
		t.Fatalf("after Delete: %+v, want %+v", h.c, store.Change{ID: "doc-after", Deleted: true})
	}
}

// testClassifiedVersion: a classification made for a version of the
// profile applies to that version only, whichever store folds it.
func testClassifiedVersion(t *testing.T, s store.Store) {
	p, err := s.Apply(ctx(t), "cv", []store.Event{Page("c", 1, "/")})
	if err != nil {
		t.Fatal(err)
	}
	stale := store.Event{ID: store.EventID("job", 1), Type: store.TypeSegments, Time: t0,
		Classified: &store.Classification{Visitor: "cv", Segments: []string{"fans"}, Version: p.Version}}
	if _, err := s.Apply(ctx(t), "cv", []store.Event{Page("c", 2, "/")}); err != nil { // written meanwhile
		t.Fatal(err)
	}
	q, err := s.Apply(ctx(t), "cv", []store.Event{stale})
	if err != nil {
		t.Fatal(err)
	}
	if q.Segments != nil {
		t.Fatalf("a classification of version %d applied to version %d: segments %v", p.Version, q.Version-1, q.Segments)
	}
	fresh := store.Event{ID: store.EventID("job", 2), Type: store.TypeSegments, Time: t0,
		Classified: &store.Classification{Visitor: "cv", Segments: []string{"fans"}, Version: q.Version}}
	if q, err = s.Apply(ctx(t), "cv", []store.Event{fresh}); err != nil || !slices.Equal(q.Segments, []string{"fans"}) {
		t.Fatalf("a classification of the stored version: segments %v, %v", q.Segments, err)
	}
}
