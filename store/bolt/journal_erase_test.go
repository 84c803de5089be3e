package bolt_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/bolt"
)

// journalOf counts the purchases of each profile in the journal.
func journalOf(t *testing.T, s *bolt.Store) map[string]int {
	t.Helper()
	ps, _ := readAll(t, s, "", 500)
	n := map[string]int{}
	for _, p := range ps {
		n[p.ID]++
	}
	return n
}

// fillJournal journals one purchase of each of n profiles, and one of
// "target" before them, in their middle and after them.
func fillJournal(t *testing.T, s *bolt.Store, n int) {
	t.Helper()
	var batches []store.Batch
	for i := range n {
		batches = append(batches, store.Batch{ID: fmt.Sprintf("v%04d", i), Events: []store.Event{order(2, "x")}})
	}
	for i, part := range [][]store.Batch{batches[:n/2], batches[n/2:], nil} {
		if _, err := s.Apply(t.Context(), "target", []store.Event{order(10+i, fmt.Sprint("t", i))}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ApplyBatch(t.Context(), part); err != nil {
			t.Fatal(err)
		}
	}
}

// indexKeys returns the keys of the journal's index of the file at path,
// which no store has open, and its sequence.
func indexKeys(t *testing.T, path string) (keys []string, seq uint64) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("journalids"))
		seq = b.Sequence()
		return b.ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys, seq
}

// TestJournalIndexBuilt: a file whose journal has no index (written
// before it) is indexed when opened, over several transactions, and
// Delete then finds every purchase of the profile it erases.
func TestJournalIndexBuilt(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2500 // more than one transaction of indexing
	fillJournal(t, s, n)
	s.Close()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte("journalids")) })
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s, err = bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(t.Context(), "target"); err != nil {
		t.Fatal(err)
	}
	got := journalOf(t, s)
	if got["target"] != 0 || len(got) != n {
		t.Fatalf("after Delete(target): %d purchases of target, %d profiles journaled; want 0 and %d", got["target"], len(got), n)
	}
	s.Close()
	if keys, seq := indexKeys(t, path); len(keys) != n || seq != n+3 {
		t.Fatalf("the index holds %d keys through %d; want %d through %d", len(keys), seq, n, n+3)
	}
}

// TestJournalIndexCatchesUp: purchases journaled without being indexed
// (by an earlier version of tailor, which opens the file too) are
// indexed at the next Open, from where the index stopped.
func TestJournalIndexCatchesUp(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	fillJournal(t, s, 10)
	s.Close()
	// Forget the index of the last five entries, as if they were
	// journaled by a version that does not index.
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("journalids"))
		last := tx.Bucket([]byte("journal")).Sequence()
		var drop [][]byte
		b.ForEach(func(k, _ []byte) error {
			if seq := k[len(k)-8:]; bytes.Compare(seq, seqBytes(last-5)) > 0 {
				drop = append(drop, bytes.Clone(k))
			}
			return nil
		})
		if len(drop) != 5 {
			return fmt.Errorf("%d index keys after %d, want 5", len(drop), last-5)
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return b.SetSequence(last - 5)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = open(t, path, bolt.Options{NoSync: true})
	if err := s.Delete(t.Context(), "target"); err != nil { // its last purchase was not indexed
		t.Fatal(err)
	}
	if got := journalOf(t, s); got["target"] != 0 || len(got) != 10 {
		t.Fatalf("after Delete(target): %v", got)
	}
}

func seqBytes(n uint64) []byte {
	return []byte{byte(n >> 56), byte(n >> 48), byte(n >> 40), byte(n >> 32), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

// TestJournalIndexTrimmed: TrimPurchases, Delete and Expire take their
// entries out of the index with them: once the journal is empty, so is
// the index.
func TestJournalIndexTrimmed(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	fillJournal(t, s, 1500)
	if err := s.TrimPurchases(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	old := order(5, "o")
	old.Time = old.Time.AddDate(-3, 0, 0)
	for _, id := range []string{"target", "old"} {
		if _, err := s.Apply(ctx, id, []store.Event{old}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "target"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Expire(ctx, old.Time.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v; want 1 (old)", n, err)
	}
	if got := journalOf(t, s); len(got) != 0 {
		t.Fatalf("journal: %v, want none", got)
	}
	s.Close()
	if keys, _ := indexKeys(t, path); len(keys) != 0 {
		t.Fatalf("the index of an empty journal holds %d keys: %q...", len(keys), keys[0])
	}
}
