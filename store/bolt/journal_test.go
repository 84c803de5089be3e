package bolt_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/bolt"
)

func order(seq int, items ...string) store.Event {
	e := store.Event{ID: store.EventID("jt", uint64(seq)), Type: store.TypeTrack, Name: store.EventPurchase,
		Time: time.Date(2026, 12, 1, 0, 0, seq, 0, time.UTC)}
	for _, it := range items {
		e.Items = append(e.Items, store.Item{ID: it, Category: "cat", Price: 2})
	}
	return e
}

// readAll walks the journal from cursor to its end in pages of page.
func readAll(t *testing.T, s *bolt.Store, cursor string, page int) ([]store.Purchase, string) {
	t.Helper()
	var out []store.Purchase
	for {
		ps, next, err := s.Purchases(t.Context(), cursor, page)
		if err != nil {
			t.Fatalf("Purchases(%q, %d): %v", cursor, page, err)
		}
		if len(ps) == 0 {
			return out, next
		}
		out = append(out, ps...)
		cursor = next
	}
}

func items(ps []store.Purchase) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s:", p.ID)
		for _, it := range p.Items {
			b.WriteString(it.ID + ",")
		}
		fmt.Fprintf(&b, "%v ", p.Prior)
	}
	return b.String()
}

// TestJournalReopen: the journal, and its sequence, survive closing the
// file, also once trimmed empty: a cursor from before never has a new
// purchase below it.
func TestJournalReopen(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	ctx := t.Context()
	s, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	// Two batches of one profile in one transaction: the second's prior
	// holds the first's item.
	if _, err := s.ApplyBatch(ctx, []store.Batch{
		{ID: "a", Events: []store.Event{order(1, "x")}},
		{ID: "b", Events: []store.Event{order(2, "y")}},
		{ID: "a", Events: []store.Event{order(3, "z")}},
	}); err != nil {
		t.Fatal(err)
	}
	ps, end := readAll(t, s, "", 2)
	if got, want := items(ps), "a:x,[] a:z,[x] b:y,[] "; got != want {
		t.Fatalf("journal %q, want %q", got, want)
	}
	if end != "3" {
		t.Fatalf("cursor at the end %q, want 3", end)
	}
	s.Close()

	s = open(t, path, bolt.Options{NoSync: true})
	if ps, _ := readAll(t, s, "", 10); items(ps) != "a:x,[] a:z,[x] b:y,[] " {
		t.Fatalf("after reopening: %q", items(ps))
	}
	if err := s.TrimPurchases(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, path, bolt.Options{NoSync: true})
	if ps, c := readAll(t, s, "", 10); len(ps) != 0 || c != "" {
		t.Fatalf("trimmed empty: %q, cursor %q", items(ps), c)
	}
	if _, err := s.Apply(ctx, "c", []store.Event{order(4, "w")}); err != nil {
		t.Fatal(err)
	}
	ps, next := readAll(t, s, end, 10)
	if items(ps) != "c:w,[] " || next != "4" {
		t.Fatalf("after the trim and a reopen, from %q: %q, cursor %q; want c's purchase, cursor 4", end, items(ps), next)
	}
}

// TestJournalRolledBack: an ApplyBatch that fails journals nothing, and
// takes no sequence number.
func TestJournalRolledBack(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	ctx := t.Context()
	s, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte("profiles")).Put([]byte("bad"), []byte("garbage")) })
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = open(t, path, bolt.Options{NoSync: true})
	_, err = s.ApplyBatch(ctx, []store.Batch{
		{ID: "good", Events: []store.Event{order(1, "x")}},
		{ID: "bad", Events: []store.Event{order(2, "y")}},
	})
	if err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("ApplyBatch with an undecodable profile: %v, want an error naming it", err)
	}
	if ps, c := readAll(t, s, "", 10); len(ps) != 0 {
		t.Fatalf("a failed ApplyBatch journaled %q (cursor %q)", items(ps), c)
	}
	if _, err := s.Apply(ctx, "good", []store.Event{order(1, "x")}); err != nil {
		t.Fatal(err)
	}
	if ps, c := readAll(t, s, "", 10); items(ps) != "good:x,[] " || c != "1" {
		t.Fatalf("after the failed ApplyBatch, an Apply journaled %q, cursor %q; want good's purchase, cursor 1", items(ps), c)
	}
}

func TestJournalCursors(t *testing.T) {
	t.Parallel()
	s := open(t, tempPath(t), bolt.Options{NoSync: true})
	ctx := t.Context()
	for _, c := range []string{"", "0"} {
		if ps, next, err := s.Purchases(ctx, c, 5); err != nil || len(ps) != 0 || next != c {
			t.Fatalf("empty journal from %q = %v, %q, %v; want nothing, the cursor unchanged", c, ps, next, err)
		}
	}
	if _, err := s.Apply(ctx, "a", []store.Event{order(1, "x"), order(2, "y")}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"x", "-1", "1.5", "0x1"} {
		if _, _, err := s.Purchases(ctx, c, 5); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", c)) {
			t.Errorf("Purchases from cursor %q: %v, want an error naming it", c, err)
		}
	}
	if _, _, err := s.Purchases(ctx, "3", 5); err == nil || !strings.Contains(err.Error(), "past the last") {
		t.Errorf("Purchases from a cursor past the end: %v", err)
	}
	if ps, next, err := s.Purchases(ctx, "2", 5); err != nil || len(ps) != 0 || next != "2" {
		t.Errorf("Purchases from the end = %v, %q, %v", ps, next, err)
	}
	if ps, next, err := s.Purchases(ctx, "1", 5); err != nil || items(ps) != "a:y,[x] " || next != "2" {
		t.Errorf("Purchases from 1 = %q, %q, %v", items(ps), next, err)
	}
}

// TestJournalMany crosses the chunks of Purchases and TrimPurchases, and
// trims at a time between two applies.
func TestJournalMany(t *testing.T) {
	t.Parallel()
	s := open(t, tempPath(t), bolt.Options{NoSync: true})
	ctx := t.Context()
	const n = 2500
	var batches []store.Batch
	for i := range n {
		batches = append(batches, store.Batch{ID: fmt.Sprintf("v%04d", i), Events: []store.Event{order(i, fmt.Sprintf("item-%d", i))}})
	}
	if _, err := s.ApplyBatch(ctx, batches); err != nil {
		t.Fatal(err)
	}
	ps, end, err := s.Purchases(ctx, "", n+10)
	if err != nil || len(ps) != n || end != fmt.Sprint(n) {
		t.Fatalf("Purchases(%d) = %d purchases, %q, %v; want %d", n+10, len(ps), end, err, n)
	}
	for i, p := range ps {
		if want := fmt.Sprintf("v%04d", i); p.ID != want || p.Items[0].ID != fmt.Sprintf("item-%d", i) {
			t.Fatalf("purchase %d of profile %s, item %v; want %s, in the order applied", i, p.ID, p.Items, want)
		}
	}
	cut := time.Now()
	for i := range 3 {
		if _, err := s.Apply(ctx, "late", []store.Event{order(n+i, fmt.Sprintf("late-%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.TrimPurchases(ctx, cut); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"", "17", end} {
		ps, next := readAll(t, s, c, 2)
		if got, want := items(ps), "late:late-0,[] late:late-1,[late-0] late:late-2,[late-0 late-1] "; got != want || next != fmt.Sprint(n+3) {
			t.Fatalf("after the trim, from %q: %q, cursor %q; want %q, cursor %d", c, got, next, want, n+3)
		}
	}
}

// TestJournalOldFile: a file of layout 2 from before the journal gets one
// when opened.
func TestJournalOldFile(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	ctx := t.Context()
	s, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "a", []store.Event{order(1, "x")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte("journal")) })
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = open(t, path, bolt.Options{NoSync: true})
	if ps, _ := readAll(t, s, "", 10); len(ps) != 0 {
		t.Fatalf("the journal of a file without one: %q", items(ps))
	}
	if _, err := s.Apply(ctx, "a", []store.Event{order(2, "y")}); err != nil {
		t.Fatal(err)
	}
	if ps, _ := readAll(t, s, "", 10); items(ps) != "a:y,[x] " {
		t.Fatalf("journaled %q, want a's second purchase", items(ps))
	}
}

// BenchmarkPurchasesIdle is the poll of a reader at the end of the
// journal: what a reader polling with nothing new costs.
func BenchmarkPurchasesIdle(b *testing.B) {
	s, err := bolt.Open(tempPath(b), bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := b.Context()
	var batches []store.Batch
	for i := range 1000 {
		batches = append(batches, store.Batch{ID: fmt.Sprintf("v%04d", i), Events: []store.Event{order(i, "x", "y")}})
	}
	if _, err := s.ApplyBatch(ctx, batches); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ps, _, err := s.Purchases(ctx, "1000", 100); err != nil || len(ps) != 0 {
			b.Fatal(ps, err)
		}
	}
}
