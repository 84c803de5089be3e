package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/postgres"
)

// journaledBy counts the purchases of each profile in the journal.
func journaledBy(t *testing.T, s *postgres.Store) map[string]int {
	t.Helper()
	ps, _ := walkJournal(t, s, "")
	n := map[string]int{}
	for _, p := range ps {
		n[p.ID]++
	}
	return n
}

// waitForLock waits until a connection of the application app waits
// for a lock.
func waitForLock(t *testing.T, pool *pgxpool.Pool, app string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		var n int
		err := pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no statement of the store waited for the lock within a minute")
		}
	}
}

// TestJournalErasedAfterHeldWrite forces the order in which an erasure
// could miss a purchase: a write that has journaled a purchase of the
// profile and still holds its row when Delete, or Expire, comes to it.
// They wait for the row, and once the write commits they remove its
// purchase with the profile.
func TestJournalErasedAfterHeldWrite(t *testing.T) {
	t.Parallel()
	app := "tailor-test-erase-" + tableName()
	pool := newPool(t, 8, app)
	other := newPool(t, 4, "")
	s := newStore(t, pool, postgres.Options{})
	ctx := t.Context()
	old := purchase("p", 1, "old-hat")
	old.Time = old.Time.AddDate(-3, 0, 0)
	for _, c := range []struct {
		id     string
		first  store.Event
		remove func() error
	}{
		{"deleted", purchase("p", 1, "hat"), func() error { return s.Delete(ctx, "deleted") }},
		{"expired", old, func() error {
			n, err := s.Expire(ctx, old.Time.AddDate(1, 0, 0))
			if err == nil && n != 1 {
				err = fmt.Errorf("expired %d profiles, want 1", n)
			}
			return err
		}},
	} {
		if _, err := s.Apply(ctx, c.id, []store.Event{c.first}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Apply(ctx, "bystander", []store.Event{purchase(c.id, 1, "scarf")}); err != nil {
			t.Fatal(err)
		}
		// A write under way: the profile's row locked, a purchase of it
		// journaled, not committed. Its last visit is unchanged, as that
		// of a late event would be.
		tx, err := other.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.Background())
		if _, err := tx.Exec(ctx, `UPDATE `+pgx.Identifier{s.Table()}.Sanitize()+` SET version = version + 1 WHERE id = $1`, c.id); err != nil {
			t.Fatal(err)
		}
		if err := s.JournalIn(ctx, tx, store.Purchase{ID: c.id, Time: c.first.Time, Items: []store.Item{{ID: "late"}}}); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.remove() }()
		waitForLock(t, other, app)
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("%s: %v", c.id, err)
		}
		if n := journaledBy(t, s); n[c.id] != 0 || n["bystander"] == 0 {
			t.Fatalf("%s: the journal after the removal holds %v; want none of %s, and bystander's", c.id, n, c.id)
		}
	}
}

// TestJournalIDColumnAdded: a journal made before it kept the profile's
// id gets the column, from Migrate or from the first write that needs
// it; its old entries are read as before, and the new ones are removed
// with their profile.
func TestJournalIDColumnAdded(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 4, "")
	s := newStore(t, pool, postgres.Options{})
	ctx := t.Context()
	journal := pgx.Identifier{s.Table() + "_journal"}.Sanitize()
	for _, migrate := range []bool{true, false} {
		id := fmt.Sprint("v-", migrate)
		// An entry of an earlier version, which had no id column.
		if _, err := s.Apply(ctx, id, []store.Event{purchase(id, 1, "legacy")}); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `ALTER TABLE `+journal+` DROP COLUMN id`); err != nil {
			t.Fatal(err)
		}
		if migrate {
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Apply(ctx, id, []store.Event{purchase(id, 2, "new")}); err != nil {
			t.Fatal(err)
		}
		if n := journaledBy(t, s); n[id] != 2 {
			t.Fatalf("migrate %v: %d purchases of %s journaled, want 2: the old one and the new", migrate, n[id], id)
		}
		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		// The old entry has no id: only trimming removes it.
		if ps, _ := walkJournal(t, s, ""); len(ps) != 1 || ps[0].Items[0].ID != "legacy" {
			t.Fatalf("migrate %v: after Delete the journal holds %q; want the old entry only", migrate, bought(ps))
		}
		if err := s.TrimPurchases(ctx, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
}
