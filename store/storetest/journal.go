package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

func order(producer string, seq int, items ...string) store.Event {
	e := store.Event{ID: store.EventID(producer, uint64(seq)), Type: store.TypeTrack, Name: store.EventPurchase,
		Time: t0.Add(time.Duration(seq) * time.Second)}
	for _, it := range items {
		e.Items = append(e.Items, store.Item{ID: it, Category: "c-" + it, Price: 1, Quantity: 2})
	}
	return e
}

// walk reads the journal from cursor to its end, in pages of page.
func walk(t *testing.T, j store.Journal, cursor string, page int) ([]store.Purchase, string) {
	t.Helper()
	var out []store.Purchase
	for range 10000 {
		ps, next, err := j.Purchases(ctx(t), cursor, page)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) > page {
			t.Fatalf("Purchases(%d) returned %d", page, len(ps))
		}
		out = append(out, ps...)
		if len(ps) == 0 {
			if next != cursor {
				t.Fatalf("Purchases with nothing new moved the cursor from %q to %q", cursor, next)
			}
			return out, next
		}
		cursor = next
	}
	t.Fatal("the journal does not end")
	return nil, ""
}

func testJournal(t *testing.T, s store.Store) {
	j, ok := s.(store.Journal)
	if !ok {
		t.Skip("store does not implement store.Journal")
	}
	if ps, c := walk(t, j, "", 10); len(ps) != 0 {
		t.Fatalf("an empty journal returned %v (cursor %q)", ps, c)
	}
	apply := func(id string, evs ...store.Event) {
		t.Helper()
		if _, err := s.Apply(ctx(t), id, evs); err != nil {
			t.Fatal(err)
		}
	}
	apply("a", Page("j", 1, "/"), order("j", 2, "moneyball", "banner", "moneyball"))
	apply("a", order("j", 2, "moneyball")) // repeated: not applied, not journaled
	apply("a", order("j", 3, "potato-head"))
	apply("b", order("j", 4)) // no item: nothing to learn
	if _, err := store.ApplyBatch(ctx(t), s, []store.Batch{
		{ID: "b", Events: []store.Event{order("j", 5, "banner")}},
		{ID: "c", Events: []store.Event{{ID: store.EventID("j", 6), Type: store.TypeAlias, UserID: "u", Time: t0}, order("j", 7, "x")}},
	}); err != nil {
		t.Fatal(err)
	}
	for _, page := range []int{1, 2, 100} {
		ps, _ := walk(t, j, "", page)
		got := fmt.Sprint(ps)
		byID := map[string][]string{}
		for _, p := range ps {
			var items []string
			for _, it := range p.Items {
				if it.Category != "c-"+it.ID || it.Price != 0 || it.Quantity != 0 {
					t.Fatalf("journaled item %+v: want its id and category only", it)
				}
				items = append(items, it.ID)
			}
			byID[p.ID] = append(byID[p.ID], fmt.Sprint(items, p.Prior))
		}
		want := map[string][]string{
			"a": {"[banner moneyball] []", "[potato-head] [banner moneyball]"},
			"b": {"[banner] []"},
		}
		if fmt.Sprint(byID) != fmt.Sprint(want) {
			t.Fatalf("journal read in pages of %d: %v\nwant per profile %v\n(%s)", page, byID, want, got)
		}
	}
	// A cursor at the end gives what comes next, and only that.
	_, end := walk(t, j, "", 3)
	apply("d", order("j", 8, "snowshoes"))
	ps, _ := walk(t, j, end, 5)
	if len(ps) != 1 || ps[0].ID != "d" || ps[0].Items[0].ID != "snowshoes" {
		t.Fatalf("after the end: %v", ps)
	}
	// Trimmed: the walk resumes at the oldest kept, also from an old cursor.
	if err := j.TrimPurchases(ctx(t), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ps, _ := walk(t, j, "", 5); len(ps) != 0 {
		t.Fatalf("after trimming everything: %v", ps)
	}
	apply("e", order("j", 9, "gloves"))
	for _, c := range []string{"", end} {
		if ps, _ := walk(t, j, c, 5); len(ps) != 1 || ps[0].ID != "e" {
			t.Fatalf("after a trim, from cursor %q: %v", c, ps)
		}
	}
	if _, _, err := j.Purchases(ctx(t), "", 0); err == nil {
		t.Error("Purchases with max 0: no error")
	}
}

// testJournalConcurrent: writers journal purchases into overlapping
// profiles while a reader walks the journal; the reader sees every
// purchase applied exactly once, whatever the order of the commits.
func testJournalConcurrent(t *testing.T, s store.Store) {
	j, ok := s.(store.Journal)
	if !ok {
		t.Skip("store does not implement store.Journal")
	}
	const writers, orders, ids = 6, 40, 8
	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	seen := map[string]int{} // order event id → times read
	var read []store.Purchase
	wg.Go(func() {
		cursor := ""
		for {
			last := done.Load()
			ps, next, err := j.Purchases(ctx(t), cursor, 7)
			if err != nil {
				errs <- err
				return
			}
			read = append(read, ps...)
			cursor = next
			if len(ps) == 0 && last {
				return
			}
		}
	})
	var writes sync.WaitGroup
	for w := range writers {
		writes.Go(func() {
			for i := range orders {
				id := fmt.Sprintf("o%d", (w+i)%ids)
				item := fmt.Sprintf("w%d-%d", w, i)
				if _, err := s.Apply(ctx(t), id, []store.Event{order(fmt.Sprintf("w%d", w), i+1, item)}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	writes.Wait()
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, p := range read {
		for _, it := range p.Items {
			seen[p.ID+"/"+it.ID]++
		}
	}
	if len(seen) != writers*orders {
		t.Fatalf("the reader saw %d distinct purchases, want %d", len(seen), writers*orders)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("purchase %s read %d times", k, n)
		}
	}
	// Each purchase's Prior is what its profile had bought before it: in
	// the order of their Priors' sizes (the order they were applied in,
	// whatever the order read), each adds its items to the next's Prior.
	var o0 []store.Purchase
	for _, p := range read {
		if p.ID == "o0" {
			o0 = append(o0, p)
		}
	}
	if len(o0) == 0 {
		t.Fatal(errors.New("no purchase of o0 read"))
	}
	slices.SortFunc(o0, func(a, b store.Purchase) int { return len(a.Prior) - len(b.Prior) })
	var bought []string
	for _, p := range o0 {
		if !slices.Equal(p.Prior, sortedCopy(bought)) {
			t.Fatalf("o0's purchase of %v: Prior %v, want %v", p.Items, p.Prior, sortedCopy(bought))
		}
		bought = append(bought, p.Items[0].ID)
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// journaledBy returns how many purchases of each profile a walk of the
// whole journal returns.
func journaledBy(t *testing.T, j store.Journal) map[string]int {
	t.Helper()
	ps, _ := walk(t, j, "", 100)
	n := map[string]int{}
	for _, p := range ps {
		n[p.ID]++
	}
	return n
}

// testJournalErased: Delete and Expire remove from the journal the
// purchases of the profiles they remove, whatever their order among
// other profiles' purchases, and leave the others' where they were.
func testJournalErased(t *testing.T, s store.Store) {
	j, ok := s.(store.Journal)
	if !ok {
		t.Skip("store does not implement store.Journal")
	}
	apply := func(id string, evs ...store.Event) {
		t.Helper()
		if _, err := s.Apply(ctx(t), id, evs); err != nil {
			t.Fatal(err)
		}
	}
	old := func(e store.Event) store.Event {
		e.Time = t0.AddDate(-2, 0, 0).Add(e.Time.Sub(t0))
		return e
	}
	apply("gone", order("x", 1, "a"), order("x", 2, "b"))
	apply("kept", order("x", 3, "c"))
	apply("old", old(order("x", 4, "d")))
	apply("gone", order("x", 5, "e"))
	if _, err := store.ApplyBatch(ctx(t), s, []store.Batch{
		{ID: "kept", Events: []store.Event{order("x", 6, "f")}},
		{ID: "gone", Events: []store.Event{order("x", 7, "g")}},
		{ID: "old", Events: []store.Event{old(order("x", 8, "h"))}},
	}); err != nil {
		t.Fatal(err)
	}
	_, mid := walk(t, j, "", 100)
	apply("gone", order("x", 9, "i"))
	apply("kept", order("x", 10, "j"))
	if got, want := fmt.Sprint(journaledBy(t, j)), fmt.Sprint(map[string]int{"gone": 5, "kept": 3, "old": 2}); got != want {
		t.Fatalf("journal before the removals: %s, want %s", got, want)
	}

	if err := s.Delete(ctx(t), "gone"); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(journaledBy(t, j)), fmt.Sprint(map[string]int{"kept": 3, "old": 2}); got != want {
		t.Fatalf("journal after Delete(gone): %s, want %s", got, want)
	}
	// A cursor from before the Delete reads on past what it removed.
	if ps, _ := walk(t, j, mid, 100); len(ps) != 1 || ps[0].ID != "kept" || ps[0].Items[0].ID != "j" {
		t.Fatalf("after Delete(gone), from a cursor before it: %v, want kept's purchase of j", ps)
	}
	// Deleting an id with no profile, and again, is no error and removes
	// nothing else.
	for _, id := range []string{"gone", "never"} {
		if err := s.Delete(ctx(t), id); err != nil {
			t.Fatal(err)
		}
	}

	e, ok := s.(store.Expirer)
	if !ok {
		return
	}
	if n, err := e.Expire(ctx(t), t0.AddDate(-1, 0, 0)); err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v; want 1 (old), nil", n, err)
	}
	if got, want := fmt.Sprint(journaledBy(t, j)), fmt.Sprint(map[string]int{"kept": 3}); got != want {
		t.Fatalf("journal after expiring old: %s, want %s", got, want)
	}
	// The id starts afresh: its new purchases are journaled and kept.
	apply("old", order("x", 11, "k"))
	if n, err := e.Expire(ctx(t), t0.AddDate(-1, 0, 0)); err != nil || n != 0 {
		t.Fatalf("Expire = %d, %v; want 0, nil", n, err)
	}
	if got, want := fmt.Sprint(journaledBy(t, j)), fmt.Sprint(map[string]int{"kept": 3, "old": 1}); got != want {
		t.Fatalf("journal after a new purchase of old: %s, want %s", got, want)
	}
}

// testJournalErasedRace: writers journal purchases of one id while it
// is deleted. Once the Delete has returned and the writers have stopped
// (refused by the tombstone), no purchase of the id is left, whichever
// wrote last; the purchases of another id, written by the same writers
// in the same batches, all are. The first round deletes after a
// purchase has committed and the last before any was made: those two
// orders are forced, the others left to the scheduler.
func testJournalErasedRace(t *testing.T, s store.Store) {
	j, ok := s.(store.Journal)
	if !ok {
		t.Skip("store does not implement store.Journal")
	}
	const rounds, writers = 6, 4
	kept := 0
	for r := range rounds {
		id := fmt.Sprintf("erased%d", r)
		var (
			wg       sync.WaitGroup
			started  = make(chan struct{})
			once     sync.Once
			wrote    atomic.Int64 // purchases of "bystander" written
			failures = make(chan string, writers)
		)
		if r == rounds-1 {
			close(started) // delete before anything is written
			once.Do(func() {})
		}
		var deleted sync.WaitGroup
		deleted.Add(1)
		for w := range writers {
			wg.Go(func() {
				if r == rounds-1 {
					deleted.Wait()
				}
				for i := 1; ; i++ {
					producer := fmt.Sprintf("r%dw%d", r, w)
					ps, err := store.ApplyBatch(context.Background(), s, []store.Batch{
						{ID: id, Events: []store.Event{order(producer, i, fmt.Sprintf("%s-%d", producer, i))}},
						// The bystander buys items it holds already, so that each
						// purchase is journaled whatever Limits.Items is.
						{ID: "bystander", Events: []store.Event{order(producer, i, fmt.Sprintf("b-%d", i%2))}},
					})
					if err != nil {
						failures <- fmt.Sprintf("ApplyBatch: %v", err)
						return
					}
					if ps[1] != nil {
						wrote.Add(1)
					}
					if ps[0] == nil { // refused: the Delete has committed
						return
					}
					if r == 0 && i == 1 {
						continue // round 0: the Delete waits for every writer's first purchase
					}
					once.Do(func() { close(started) })
				}
			})
		}
		if r == 0 {
			// Forced: every writer's first purchase is committed before
			// the Delete begins.
			for deadline := time.Now().Add(time.Minute); journaledBy(t, j)[id] < writers; {
				if time.Now().After(deadline) {
					t.Fatalf("%s: the writers' first purchases were not journaled within a minute", id)
				}
				time.Sleep(time.Millisecond)
			}
		}
		<-started
		if err := s.Delete(ctx(t), id); err != nil {
			t.Fatal(err)
		}
		deleted.Done()
		wg.Wait()
		close(failures)
		for f := range failures {
			t.Fatalf("%s: %s", id, f)
		}
		kept += int(wrote.Load())
		if n := journaledBy(t, j); n[id] != 0 || n["bystander"] != kept {
			t.Fatalf("%s: after the Delete and the writes, the journal holds %d purchases of it, want 0, and %d of bystander, want %d",
				id, n[id], n["bystander"], kept)
		}
	}
}
