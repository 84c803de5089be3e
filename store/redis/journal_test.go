package redis_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tailorhq/tailor/internal/testenv"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/redis"
	"github.com/tailorhq/tailor/store/storetest"
)

func buy(producer string, seq int, items ...string) store.Event {
	e := store.Event{ID: store.EventID(producer, uint64(seq)), Type: store.TypeTrack, Name: store.EventPurchase,
		Time: time.Date(2026, 3, 1, 0, 0, seq, 0, time.UTC)}
	for _, it := range items {
		e.Items = append(e.Items, store.Item{ID: it, Category: "cat-" + it, Price: 3, Quantity: 1})
	}
	return e
}

// drain reads the journal from cursor to its end in pages of page.
func drain(t *testing.T, j store.Journal, cursor string, page int) ([]store.Purchase, string) {
	t.Helper()
	var out []store.Purchase
	for range 1000 {
		ps, next, err := j.Purchases(t.Context(), cursor, page)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 0 {
			return out, next
		}
		out, cursor = append(out, ps...), next
	}
	t.Fatal("the journal does not end")
	return nil, ""
}

// cmdCounter counts the commands a client sends.
type cmdCounter struct{ n atomic.Int64 }

func (h *cmdCounter) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *cmdCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *cmdCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func TestJournalLayout(t *testing.T) {
	t.Parallel()
	c := client(t)
	s := newStore(t, c, redis.Options{})
	defer s.Close()
	ctx := t.Context()
	if _, err := s.Apply(ctx, "visitor-1", []store.Event{buy("l", 1, "tea", "cup")}); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.XRange(ctx, tagOf(s, "visitor-1")+"journal", "-", "+").Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("XRANGE of the bucket's journal = %v, %v; want one entry", msgs, err)
	}
	if p, ok := msgs[0].Values["p"].(string); !ok || len(msgs[0].Values) != 1 || len(p) > 64 {
		t.Fatalf("entry %v: want one field p of a few bytes", msgs[0].Values)
	}
	if n, err := c.Get(ctx, s.Prefix()+"journal").Int(); err != nil || n != 1 {
		t.Fatalf("the journal's tick is %d, %v; want 1", n, err)
	}
	// A write with no purchase journals nothing, and leaves the tick.
	if _, err := s.Apply(ctx, "visitor-1", []store.Event{storetest.Page("l", 2, "/")}); err != nil {
		t.Fatal(err)
	}
	if n := c.XLen(ctx, tagOf(s, "visitor-1")+"journal").Val(); n != 1 {
		t.Fatalf("%d entries after a page view, want 1", n)
	}
	if n := c.Get(ctx, s.Prefix()+"journal").Val(); n != "1" {
		t.Fatalf("the tick is %s after a page view, want 1", n)
	}
}

// TestJournalIdlePoll checks what a reader with nothing new costs: one
// command, until a purchase is journaled, through this store or another.
func TestJournalIdlePoll(t *testing.T) {
	t.Parallel()
	for _, viaOther := range []bool{false, true} {
		t.Run(fmt.Sprintf("other=%v", viaOther), func(t *testing.T) {
			t.Parallel()
			c := goredis.NewClient(&goredis.Options{Addr: client(t).Options().Addr})
			t.Cleanup(func() { c.Close() }) // after the test keys are deleted
			h := &cmdCounter{}
			c.AddHook(h)
			s := newStore(t, c, redis.Options{})
			defer s.Close()
			w := s
			if viaOther {
				w = newStore(t, client(t), redis.Options{Prefix: s.Prefix()})
				defer w.Close()
			}
			ctx := t.Context()
			if _, err := w.Apply(ctx, "a", []store.Event{buy("i", 1, "tea")}); err != nil {
				t.Fatal(err)
			}
			ps, cursor := drain(t, s, "", 100)
			if len(ps) != 1 {
				t.Fatalf("read %v, want a's purchase", ps)
			}
			for range 5 {
				before := h.n.Load()
				ps, next, err := s.Purchases(ctx, cursor, 100)
				if err != nil || len(ps) != 0 || next != cursor {
					t.Fatalf("idle poll: %v, %q, %v", ps, next, err)
				}
				if n := h.n.Load() - before; n != 1 {
					t.Fatalf("an idle poll sent %d commands, want 1", n)
				}
			}
			if _, err := w.Apply(ctx, "b", []store.Event{buy("i", 2, "cup")}); err != nil {
				t.Fatal(err)
			}
			if ps, _ := drain(t, s, cursor, 100); len(ps) != 1 || ps[0].ID != "b" {
				t.Fatalf("after b's purchase, read %v", ps)
			}
		})
	}
}

// TestJournalLostTick has a writer journal a purchase without the tick
// that announces it (as if it died between the two): an idle reader
// reads it once it stops trusting the tick, neither skipped nor twice.
func TestJournalLostTick(t *testing.T) {
	t.Parallel()
	c := client(t)
	s := newStore(t, c, redis.Options{})
	defer s.Close()
	s.SetJournalRecheck(300 * time.Millisecond)
	ctx := t.Context()
	if _, err := s.Apply(ctx, "a", []store.Event{buy("t", 1, "tea")}); err != nil {
		t.Fatal(err)
	}
	_, cursor := drain(t, s, "", 10)
	tick := c.Get(ctx, s.Prefix()+"journal").Val()
	if _, err := s.Apply(ctx, "b", []store.Event{buy("t", 2, "cup")}); err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, s.Prefix()+"journal", tick, 0) // the tick lost
	deadline := time.Now().Add(5 * time.Second)
	var got []store.Purchase
	for len(got) == 0 && time.Now().Before(deadline) {
		ps, next, err := s.Purchases(ctx, cursor, 10)
		if err != nil {
			t.Fatal(err)
		}
		got, cursor = append(got, ps...), next
		time.Sleep(50 * time.Millisecond)
	}
	if len(got) != 1 || got[0].ID != "b" {
		t.Fatalf("read %v, want b's purchase", got)
	}
	if ps, _ := drain(t, s, cursor, 10); len(ps) != 0 {
		t.Fatalf("then read %v, want nothing", ps)
	}
}

// TestJournalAfterConflict has another process buy for a profile between
// a write's load and its compare-and-swap: the write's first attempt is
// not journaled, its retry is, with the other purchase in its Prior.
func TestJournalAfterConflict(t *testing.T) {
	t.Parallel()
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			t.Parallel()
			other := client(t)
			prefix := uniquePrefix(t, other)
			b := newStore(t, other, redis.Options{Prefix: prefix})
			defer b.Close()
			c := client(t)
			h := &raceHook{}
			c.AddHook(h)
			a := newStore(t, c, redis.Options{Prefix: prefix})
			defer a.Close()
			ctx := t.Context()
			h.fn = func() {
				if _, err := b.Apply(ctx, "x", []store.Event{buy("b", 1, "first")}); err != nil {
					t.Error(err)
				}
			}
			h.armed.Store(true)
			var err error
			if batch {
				_, err = a.ApplyBatch(ctx, []store.Batch{{ID: "x", Events: []store.Event{buy("a", 1, "second")}}, {ID: "y", Events: []store.Event{buy("a", 2, "third")}}})
			} else {
				_, err = a.Apply(ctx, "x", []store.Event{buy("a", 1, "second")})
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.armed.Load() {
				t.Fatal("the competing write did not run")
			}
			ps, _ := drain(t, a, "", 10)
			var got []string
			for _, p := range ps {
				got = append(got, fmt.Sprint(p.ID, p.Items[0].ID, p.Prior))
			}
			slices.Sort(got)
			want := []string{"xfirst[]", "xsecond[first]"}
			if batch {
				want = append(want, "ythird[]")
			}
			if !slices.Equal(got, want) {
				t.Fatalf("journal %v, want %v", got, want)
			}
		})
	}
}

// TestJournalPages reads a journal whose purchases are mostly in one
// bucket: pages are full though the first read takes one entry per
// bucket, and a cursor from another Store resumes where it was.
func TestJournalPages(t *testing.T) {
	t.Parallel()
	c := client(t)
	s := newStore(t, c, redis.Options{})
	defer s.Close()
	ctx := t.Context()
	var batches []store.Batch
	for i := range 30 {
		batches = append(batches, store.Batch{ID: "hot", Events: []store.Event{buy("p", i+1, fmt.Sprint("h", i))}})
	}
	for i := range 5 {
		batches = append(batches, store.Batch{ID: fmt.Sprint("cold", i), Events: []store.Event{buy("p", 100+i, "c")}})
	}
	if _, err := s.ApplyBatch(ctx, batches); err != nil {
		t.Fatal(err)
	}
	var all []store.Purchase
	cursor := ""
	for len(all) < 30 {
		ps, next, err := s.Purchases(ctx, cursor, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 10 {
			t.Fatalf("a page of %d purchases with %d left, want 10", len(ps), 35-len(all))
		}
		all, cursor = append(all, ps...), next
	}
	// The rest from another Store on the same prefix, from the cursor.
	r := newStore(t, c, redis.Options{Prefix: s.Prefix()})
	defer r.Close()
	rest, _ := drain(t, r, cursor, 10)
	all = append(all, rest...)
	seen := map[string]int{}
	for _, p := range all {
		seen[p.ID+"/"+p.Items[0].ID]++
	}
	if len(all) != 35 || len(seen) != 35 {
		t.Fatalf("read %d purchases, %d distinct; want 35", len(all), len(seen))
	}
	// The hot profile's purchases come in the order applied, each with
	// the ones before in its Prior.
	var n int
	for _, p := range all {
		if p.ID == "hot" {
			if want := fmt.Sprint("h", n); p.Items[0].ID != want || len(p.Prior) != n {
				t.Fatalf("hot's purchase %d: %v with %d prior, want %s", n, p.Items, len(p.Prior), want)
			}
			n++
		}
	}
	if _, _, err := s.Purchases(ctx, "not a cursor", 10); err == nil {
		t.Error("Purchases with a cursor this store did not make: no error")
	}
}

// TestJournalNoScript checks that a purchase written after the server
// lost its scripts (the compare-and-swap run again with EVAL) is
// journaled once, and read.
func TestJournalNoScript(t *testing.T) {
	t.Parallel()
	c := client(t)
	s := newStore(t, c, redis.Options{})
	defer s.Close()
	ctx := t.Context()
	_, cursor := drain(t, s, "", 10)
	for i := 1; i <= 2; i++ {
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Apply(ctx, "a", []store.Event{buy("n", i, fmt.Sprint("item", i))}); err != nil {
			t.Fatal(err)
		}
		ps, next := drain(t, s, cursor, 10)
		if len(ps) != 1 || ps[0].Items[0].ID != fmt.Sprint("item", i) {
			t.Fatalf("after SCRIPT FLUSH, read %v", ps)
		}
		cursor = next
	}
}

// BenchmarkPurchasesIdle measures a poll of a journal with nothing new:
// "tick" as a reader polls (one GET), "full" with the tick not trusted
// (every bucket's journal read, as when the tick changed or a minute
// after the last full read).
func BenchmarkPurchasesIdle(b *testing.B) {
	for _, full := range []bool{false, true} {
		name := "tick"
		if full {
			name = "full"
		}
		b.Run(name, func(b *testing.B) {
			c := goredis.NewClient(&goredis.Options{Addr: testenv.Redis(b)})
			defer c.Close()
			s, err := redis.New(c, redis.Options{Prefix: fmt.Sprintf("tailor-bench-%d:", time.Now().UnixNano())})
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				ctx := context.Background()
				iter := c.Scan(ctx, 0, s.Prefix()+"*", 1000).Iterator()
				for iter.Next(ctx) {
					c.Del(ctx, iter.Val())
				}
				s.Close()
			}()
			if full {
				s.SetJournalRecheck(0)
			}
			ctx := b.Context()
			if _, err := s.Apply(ctx, "a", []store.Event{buy("b", 1, "tea")}); err != nil {
				b.Fatal(err)
			}
			_, cursor, err := s.Purchases(ctx, "", 10)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if ps, _, err := s.Purchases(ctx, cursor, 10); err != nil || len(ps) != 0 {
					b.Fatal(ps, err)
				}
			}
		})
	}
}
