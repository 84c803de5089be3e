package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tailorhq/tailor/internal/testenv"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/postgres"
)

// purchase returns an order of items.
func purchase(producer string, seq int, items ...string) store.Event {
	e := store.Event{ID: store.EventID(producer, uint64(seq)), Type: store.TypeTrack, Name: store.EventPurchase,
		Time: time.Date(2026, 12, 1, 0, 0, seq, 0, time.UTC)}
	for _, it := range items {
		e.Items = append(e.Items, store.Item{ID: it, Category: "c", Price: 1, Quantity: 1})
	}
	return e
}

// walkJournal reads the journal from cursor to its end, in pages of 7.
func walkJournal(t *testing.T, s *postgres.Store, cursor string) ([]store.Purchase, string) {
	t.Helper()
	var out []store.Purchase
	for {
		ps, next, err := s.Purchases(t.Context(), cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 0 {
			if next != cursor {
				t.Fatalf("Purchases with nothing new moved the cursor from %q to %q", cursor, next)
			}
			return out, cursor
		}
		out = append(out, ps...)
		cursor = next
	}
}

// bought returns the profile and first item of each purchase, in order.
func bought(ps []store.Purchase) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID+"/"+p.Items[0].ID)
	}
	return out
}

// TestJournalCommitOrder forces the interleavings that would make a
// reader skip a purchase if positions were handed out before commit: a
// journaling transaction held open while another writes, one that began
// first and commits last, and one that rolls back.
func TestJournalCommitOrder(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 8, "")
	s := newStore(t, pool, postgres.Options{})
	ctx := t.Context()
	apply := func(id string, e store.Event) <-chan error {
		done := make(chan error, 1)
		go func() {
			_, err := s.Apply(ctx, id, []store.Event{e})
			done <- err
		}()
		return done
	}
	waiting := func(done <-chan error, what string) {
		t.Helper()
		select {
		case err := <-done:
			t.Fatalf("%s returned (%v) while a transaction that journaled before it is open", what, err)
		case <-time.After(300 * time.Millisecond):
		}
	}
	expect := func(cursor string, want ...string) string {
		t.Helper()
		ps, next := walkJournal(t, s, cursor)
		if got := bought(ps); !slices.Equal(got, want) {
			t.Fatalf("journal after %q = %q, want %q", cursor, got, want)
		}
		return next
	}
	held := func(id, item string) store.Purchase {
		return store.Purchase{ID: id, Time: time.Now(), Items: []store.Item{{ID: item}}}
	}

	// A transaction journals and stays open: a later write waits for it,
	// and the reader sees neither until it commits, then both, in order.
	cursor := expect("")
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if err := s.JournalIn(ctx, tx, held("held", "first")); err != nil {
		t.Fatal(err)
	}
	done := apply("later", purchase("p", 1, "second"))
	waiting(done, "a write journaling after it")
	cursor = expect(cursor)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cursor = expect(cursor, "held/first", "later/second")

	// A transaction that began (and took its transaction id) before
	// another write, and commits after it: read after it, not skipped.
	tx, err = pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT txid_current()`); err != nil {
		t.Fatal(err)
	}
	if err := <-apply("b", purchase("p", 2, "third")); err != nil {
		t.Fatal(err)
	}
	cursor = expect(cursor, "b/third")
	if err := s.JournalIn(ctx, tx, held("early", "fourth")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	cursor = expect(cursor, "early/fourth")

	// A transaction that journals and rolls back leaves no gap: the write
	// that waited for it takes its position.
	tx, err = pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.JournalIn(ctx, tx, held("gone", "never")); err != nil {
		t.Fatal(err)
	}
	done = apply("c", purchase("p", 3, "fifth"))
	waiting(done, "a write journaling after it")
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	expect(cursor, "c/fifth")
	var n, lo, hi int64
	err = pool.QueryRow(ctx, `SELECT count(*), min(pos), max(pos) FROM `+pgx.Identifier{s.Table() + "_journal"}.Sanitize()).Scan(&n, &lo, &hi)
	if err != nil || n != 5 || lo != 1 || hi != 5 {
		t.Fatalf("positions: %d entries from %d to %d (%v); want 1 to 5", n, lo, hi, err)
	}
}

// TestJournalOnlyWritesThatWon: writers race for one profile. Without
// retries, exactly the Applies that succeeded are journaled; with them,
// every purchase is journaled once, by the fold that was written: each
// entry's Prior is what the entries before it bought.
func TestJournalOnlyWritesThatWon(t *testing.T) {
	t.Parallel()
	for _, retries := range []int{-1, 0} {
		t.Run(fmt.Sprint("MaxRetries=", retries), func(t *testing.T) {
			t.Parallel()
			s := newStore(t, newPool(t, 8, ""), postgres.Options{MaxRetries: retries})
			const workers, per = 6, 12
			var (
				mu   sync.Mutex
				won  = map[string]bool{}
				lost int
				wg   sync.WaitGroup
			)
			for w := range workers {
				wg.Go(func() {
					for i := 1; i <= per; i++ {
						item := fmt.Sprintf("w%d-%02d", w, i)
						_, err := s.Apply(t.Context(), "hot", []store.Event{purchase(fmt.Sprint("w", w), i, item)})
						mu.Lock()
						switch {
						case err == nil:
							won[item] = true
						case retries < 0 && errors.Is(err, store.ErrConflict):
							lost++
						default:
							t.Error(err)
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			ps, _ := walkJournal(t, s, "")
			var items []string
			for k, p := range ps {
				if p.ID != "hot" || len(p.Items) != 1 {
					t.Fatalf("entry %d: %+v", k, p)
				}
				if want := slices.Sorted(slices.Values(items)); !slices.Equal(p.Prior, want) {
					t.Fatalf("entry %d (%s): Prior %q, want the %d items journaled before it", k, p.Items[0].ID, p.Prior, len(want))
				}
				items = append(items, p.Items[0].ID)
			}
			if got, want := slices.Sorted(slices.Values(items)), slices.Sorted(maps.Keys(won)); !slices.Equal(got, want) {
				t.Fatalf("journaled %d purchases %q\nwant the %d written %q", len(got), got, len(want), want)
			}
			p, err := s.Load(t.Context(), "hot")
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Purchases.Items) != len(won) {
				t.Fatalf("the profile bought %d items, the journal has %d", len(p.Purchases.Items), len(won))
			}
			if retries < 0 {
				t.Logf("%d purchases written and journaled, %d lost their compare-and-swap", len(won), lost)
			}
		})
	}
}

// TestJournalWithoutJournalTables: a store on a table migrated before the
// journal reads an empty journal, and the first write creates it.
func TestJournalWithoutJournalTables(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 4, "")
	s := newStore(t, pool, postgres.Options{})
	ctx := t.Context()
	for _, name := range []string{s.Table() + "_journal", s.Table() + "_journal_head"} {
		if _, err := pool.Exec(ctx, `DROP TABLE `+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []string{"", "12"} {
		if ps, next, err := s.Purchases(ctx, c, 10); err != nil || len(ps) != 0 || next != c {
			t.Fatalf("Purchases(%q) without a journal = %v, %q, %v; want nothing and the cursor", c, ps, next, err)
		}
	}
	if err := s.TrimPurchases(ctx, time.Now()); err != nil {
		t.Fatalf("TrimPurchases without a journal: %v", err)
	}
	if _, err := s.Apply(ctx, "v", []store.Event{purchase("p", 1, "hat")}); err != nil {
		t.Fatalf("Apply of a purchase without a journal: %v", err)
	}
	if ps, _ := walkJournal(t, s, ""); !slices.Equal(bought(ps), []string{"v/hat"}) {
		t.Fatalf("journal = %q, want [v/hat]", bought(ps))
	}
	if _, _, err := s.Purchases(ctx, "x", 10); err == nil {
		t.Error("Purchases with a cursor it did not make: no error")
	}
}

// TestTrimPurchases trims more than one statement deletes, by the
// server's clock; a cursor from before the trim resumes at the oldest
// entry kept.
func TestTrimPurchases(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 4, "")
	s := newStore(t, pool, postgres.Options{})
	ctx := t.Context()
	const before, after, per = 5500, 300, 500
	write := func(from, n int) {
		for k := from; k < from+n; k += per {
			batches := make([]store.Batch, min(per, from+n-k))
			for i := range batches {
				id := fmt.Sprintf("v%05d", k+i)
				batches[i] = store.Batch{ID: id, Events: []store.Event{purchase("p", 1, "i"+id)}}
			}
			if _, err := s.ApplyBatch(ctx, batches); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(0, 10)
	_, old := walkJournal(t, s, "")
	write(10, before-10)
	var cut time.Time
	if err := pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&cut); err != nil {
		t.Fatal(err)
	}
	write(before, after)
	if err := s.TrimPurchases(ctx, cut); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"", old} {
		ps, _ := walkJournal(t, s, c)
		if len(ps) != after || ps[0].ID != fmt.Sprintf("v%05d", before) {
			t.Fatalf("after the trim, from %q: %d entries from %v; want %d from v%05d", c, len(ps), ps[0].ID, after, before)
		}
	}
}

// queries counts the statements a pool's connections run.
type queries struct{ n atomic.Int64 }

func (q *queries) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	q.n.Add(1)
	return ctx
}

func (q *queries) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestPurchasesPollCost: a reader polling a journal with nothing new
// runs one statement per poll.
func TestPurchasesPollCost(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	var q queries
	cfg.ConnConfig.Tracer = &q
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := newStore(t, pool, postgres.Options{})
	if _, err := s.Apply(t.Context(), "v", []store.Event{purchase("p", 1, "hat")}); err != nil {
		t.Fatal(err)
	}
	_, cursor := walkJournal(t, s, "")
	const polls = 20
	q.n.Store(0)
	for range polls {
		ps, next, err := s.Purchases(t.Context(), cursor, 100)
		if err != nil || len(ps) != 0 || next != cursor {
			t.Fatalf("poll = %v, %q, %v", ps, next, err)
		}
	}
	if n := q.n.Load(); n != polls {
		t.Fatalf("%d polls ran %d statements, want one each", polls, n)
	}
}
