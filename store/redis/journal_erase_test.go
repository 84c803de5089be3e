package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/redis"
)

// journaledBy counts the purchases of each profile in the journal.
func journaledBy(t *testing.T, s *redis.Store) map[string]int {
	t.Helper()
	ps, _ := drain(t, s, "", 100)
	n := map[string]int{}
	for _, p := range ps {
		n[p.ID]++
	}
	return n
}

// indexKey returns the key of the journal index of id.
func indexKey(s *redis.Store, id string) string {
	return s.Prefix() + "{" + strconv.FormatUint(uint64(redis.BucketOf(id)), 16) + "}:j:" + id
}

// drainHook runs fn once, before the first script that drains a journal
// index, when armed.
type drainHook struct {
	armed atomic.Bool
	fn    func()
}

func (h *drainHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *drainHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		// unjournalScript: two keys, the journal's first.
		if args := cmd.Args(); len(args) > 4 && fmt.Sprint(args[2]) == "2" && strings.HasSuffix(fmt.Sprint(args[3]), "}:journal") &&
			h.armed.CompareAndSwap(true, false) {
			h.fn()
		}
		return next(ctx, cmd)
	}
}
func (h *drainHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// TestJournalErasedInChunks: a profile with more journal entries than a
// script deletes has the rest deleted from a drain key, by Delete and by
// Expire; other profiles' entries in its bucket stay, and no index or
// drain key is left. A purchase of the id made while Expire drains (a
// new profile: expiry is no erasure) is journaled and kept.
func TestJournalErasedInChunks(t *testing.T) {
	t.Parallel()
	c := client(t)
	prefix := uniquePrefix(t, c)
	h := &drainHook{}
	c.AddHook(h)
	s := newStore(t, c, redis.Options{Prefix: prefix})
	defer s.Close()
	s.SetEraseChunk(3)
	other := newStore(t, client(t), redis.Options{Prefix: prefix})
	defer other.Close()
	ctx := t.Context()
	old := func(e store.Event) store.Event { e.Time = e.Time.AddDate(-3, 0, 0); return e }
	for _, expire := range []bool{false, true} {
		ids := sameBucket(fmt.Sprint("target-", expire), 2)
		target := ids[0]
		for i := range 10 {
			for _, id := range ids {
				e := buy(fmt.Sprint(expire, id), i+1, fmt.Sprint("item", i))
				if expire && id == target {
					e = old(e)
				}
				if _, err := s.Apply(ctx, id, []store.Event{e}); err != nil {
					t.Fatal(err)
				}
			}
		}
		h.fn = func() {
			_, err := other.Apply(ctx, target, []store.Event{buy("fresh", 1, "fresh")})
			if expire && err != nil || !expire && !errors.Is(err, store.ErrErased) {
				t.Errorf("expire %v: a purchase while the index drains: %v", expire, err)
			}
		}
		h.armed.Store(true)
		if expire {
			if n, err := s.Expire(ctx, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil || n != 1 {
				t.Fatalf("Expire = %d, %v; want 1 (target)", n, err)
			}
		} else if err := s.Delete(ctx, target); err != nil {
			t.Fatal(err)
		}
		if h.armed.Load() {
			t.Fatal("no drain script ran")
		}
		n := journaledBy(t, s)
		want := 0
		if expire {
			want = 1 // the fresh purchase
		}
		if n[target] != want || n[ids[1]] != 10 {
			t.Fatalf("expire %v: the journal holds %d purchases of %s and %d of %s; want %d and 10", expire, n[target], target, n[ids[1]], ids[1], want)
		}
		if keys := scanKeys(t, c, prefix+"*:jd:*"); len(keys) != 0 {
			t.Fatalf("drain keys left: %q", keys)
		}
		if l, err := c.LLen(ctx, indexKey(s, target)).Result(); err != nil || l != int64(want) {
			t.Fatalf("expire %v: the journal index of target holds %d ids (%v); want %d", expire, l, err, want)
		}
		if err := s.TrimPurchases(ctx, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestJournalIndexPruned: the ids that a trim removed from the journal
// leave a profile's index at its next purchase.
func TestJournalIndexPruned(t *testing.T) {
	t.Parallel()
	c := client(t)
	s := newStore(t, c, redis.Options{})
	defer s.Close()
	ctx := t.Context()
	for i := range 5 {
		if _, err := s.Apply(ctx, "v", []store.Event{buy("p", i+1, fmt.Sprint("i", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if l, err := c.LLen(ctx, indexKey(s, "v")).Result(); err != nil || l != 5 {
		t.Fatalf("index of 5 purchases: %d ids, %v", l, err)
	}
	time.Sleep(2 * time.Millisecond) // the trim keeps its own millisecond
	if err := s.TrimPurchases(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "v", []store.Event{buy("p", 6, "i5")}); err != nil {
		t.Fatal(err)
	}
	ids, err := c.LRange(ctx, indexKey(s, "v"), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := drain(t, s, "", 10)
	if len(ps) != 1 || len(ids) != 1 {
		t.Fatalf("after a trim and a purchase: %d purchases journaled, index %q; want 1 of each", len(ps), ids)
	}
	if err := s.Delete(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if ps, _ := drain(t, s, "", 10); len(ps) != 0 {
		t.Fatalf("after Delete: %d purchases", len(ps))
	}
	if n, err := c.Exists(ctx, indexKey(s, "v")).Result(); err != nil || n != 0 {
		t.Fatalf("the index outlives Delete: %d, %v", n, err)
	}
}
