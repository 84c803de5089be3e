package redis_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/redis"
)

// dueT0 is the origin of the recheck times of these tests.
var dueT0 = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

func hour(h int) time.Time { return dueT0.Add(time.Duration(h) * time.Hour) }

// dueSeq numbers the events of these tests, so that none is taken for
// one already applied.
var dueSeq atomic.Uint64

// recheckEvent classifies id into "fans" (from the segments was) to be
// rechecked at until (never if zero).
func recheckEvent(id string, was []string, until time.Time) store.Event {
	return store.Event{ID: store.EventID("due", dueSeq.Add(1)), Type: store.TypeSegments, Time: dueT0,
		Classified: &store.Classification{Visitor: id, Was: was, Segments: []string{"fans"}, Until: until}}
}

// setRecheck writes id's recheck time: the first write of id has was
// nil, later ones []string{"fans"}.
func setRecheck(t *testing.T, s store.Store, id string, was []string, until time.Time) {
	t.Helper()
	p, err := s.Apply(t.Context(), id, []store.Event{recheckEvent(id, was, until)})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Recheck.Equal(until) {
		t.Fatalf("%s: Recheck %v after the write, want %v (the classification was not applied)", id, p.Recheck, until)
	}
}

func mustDue(t *testing.T, s *redis.Store, at time.Time, max int) []string {
	t.Helper()
	ids, err := s.Due(t.Context(), at, max)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// unordered hides that a client is a *goredis.Client, so that a store
// updates the due hints (and ticks the journal) as it does for a Cluster:
// once the scripts have answered, with commands of their own.
type unordered struct{ *goredis.Client }

// newClient returns a client of the test server, closed when t ends,
// that counts the commands it sends into h if not nil: a *goredis.Client
// if ordered, else one that the store takes for an unordered client.
func newClient(t *testing.T, h *cmdCounter, ordered bool) goredis.UniversalClient {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: client(t).Options().Addr})
	t.Cleanup(func() { c.Close() }) // after the test keys are deleted
	if h != nil {
		c.AddHook(h)
	}
	if !ordered {
		return unordered{c}
	}
	return c
}

func kind(ordered bool) string {
	if ordered {
		return "ordered"
	}
	return "unordered"
}

// sameBucket returns n ids of the bucket of id, id first.
func sameBucket(id string, n int) []string {
	ids := []string{id}
	for i := 0; len(ids) < n; i++ {
		if o := fmt.Sprint(id, "-", i); redis.BucketOf(o) == redis.BucketOf(id) {
			ids = append(ids, o)
		}
	}
	return ids
}

// TestDueIdlePoll checks what a Due with nothing due costs once the hints
// are exact: one command; and that a bucket with a due profile is read
// until the profile is rechecked, then no more.
func TestDueIdlePoll(t *testing.T) {
	t.Parallel()
	for _, ordered := range []bool{true, false} {
		t.Run(kind(ordered), func(t *testing.T) {
			t.Parallel()
			h := &cmdCounter{}
			c := newClient(t, h, ordered)
			s := newStore(t, c, redis.Options{})
			defer s.Close()
			for i := range 20 {
				setRecheck(t, s, fmt.Sprint("p", i), nil, hour(10+i))
			}
			if due := mustDue(t, s, hour(1), 100); len(due) != 0 { // the first call repairs the hints
				t.Fatalf("Due = %q, want none", due)
			}
			poll := func(want []string, maxCmds int64) {
				t.Helper()
				before := h.n.Load()
				if due := mustDue(t, s, hour(1), 100); !slices.Equal(due, want) {
					t.Fatalf("Due = %q, want %q", due, want)
				}
				if n := h.n.Load() - before; n > maxCmds {
					t.Fatalf("Due sent %d commands, want at most %d", n, maxCmds)
				}
			}
			for range 3 {
				poll(nil, 1)
			}
			// p3 becomes due: its bucket is read (its hint, the bucket's
			// generation, its due entries and earliest entry, and the
			// tightening of its hint).
			setRecheck(t, s, "p3", []string{"fans"}, hour(0))
			poll([]string{"p3"}, 5)
			poll([]string{"p3"}, 5)
			// Rechecked, as the recheck job does, for later: the bucket is
			// read once more, and its hint tightened.
			setRecheck(t, s, "p3", []string{"fans"}, hour(40))
			poll(nil, 5)
			for range 3 {
				poll(nil, 1)
			}
		})
	}
}

// holdHints holds a writer's hint update (its hintScript, in a command
// of its own, as an unordered client sends it) until released.
type holdHints struct {
	hints    string // the hints key
	armed    atomic.Bool
	reached  chan struct{}
	released chan struct{}
}

func (h *holdHints) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *holdHints) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		args := cmd.Args()
		if (cmd.Name() == "evalsha" || cmd.Name() == "eval") && len(args) > 3 && args[3] == h.hints && h.armed.CompareAndSwap(true, false) {
			close(h.reached)
			<-h.released
		}
		return next(ctx, cmd)
	}
}
func (h *holdHints) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// TestDueTightenRace runs a writer between Due's read of a bucket and the
// tightening of the bucket's hint to what it read, the ordering where a
// tightening that did not check the bucket's generation would raise the
// hint above the new entry and hide it: the entry must still be due.
func TestDueTightenRace(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// setup leaves a's bucket with a hint at or before hour(3); the
		// writer then puts b in it, due at hour(due).
		setup func(t *testing.T, s *redis.Store, a string)
		due   int
		// holdHint: the writer's hint update waits until Due has
		// tightened (the writer's compare-and-swap runs before).
		holdHint bool
	}{
		{"earlier entry", func(t *testing.T, s *redis.Store, a string) { setRecheck(t, s, a, nil, hour(2)) }, 1, false},
		{"into an emptied index", func(t *testing.T, s *redis.Store, a string) {
			setRecheck(t, s, a, nil, hour(2))
			if err := s.Delete(t.Context(), a); err != nil {
				t.Fatal(err)
			}
		}, 4, false},
		{"hint update after the tightening", func(t *testing.T, s *redis.Store, a string) { setRecheck(t, s, a, nil, hour(2)) }, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t, client(t), redis.Options{})
			defer s.Close()
			s.SetDueRepair(time.Hour)
			// The writer is another process on the same prefix.
			wc := goredis.NewClient(&goredis.Options{Addr: client(t).Options().Addr})
			t.Cleanup(func() { wc.Close() })
			hold := &holdHints{hints: s.Prefix() + "{due}:hints", reached: make(chan struct{}), released: make(chan struct{})}
			wc.AddHook(hold)
			w := newStore(t, unordered{wc}, redis.Options{Prefix: s.Prefix()})
			defer w.Close()
			ids := sameBucket("a", 2)
			a, b := ids[0], ids[1]
			mustDue(t, s, hour(0), 10) // the first call's repair, done
			tc.setup(t, s, a)
			var wrote atomic.Bool
			wdone := make(chan struct{})
			s.SetDueRead(func() {
				if wrote.Swap(true) {
					return
				}
				if !tc.holdHint {
					setRecheck(t, w, b, nil, hour(tc.due))
					return
				}
				hold.armed.Store(true)
				go func() {
					defer close(wdone)
					if _, err := w.Apply(context.Background(), b, []store.Event{recheckEvent(b, nil, hour(tc.due))}); err != nil {
						t.Error(err)
					}
				}()
				<-hold.reached // b is in the index; its hint is not updated
			})
			mustDue(t, s, hour(3), 10)
			s.SetDueRead(nil)
			if !wrote.Load() {
				t.Fatal("Due did not read a's bucket: the writer did not run")
			}
			if tc.holdHint {
				close(hold.released)
				<-wdone
			}
			if due := mustDue(t, s, hour(tc.due), 10); !slices.Contains(due, b) {
				t.Fatalf("Due(+%dh) = %q: %s, written while Due read its bucket, is lost", tc.due, due, b)
			}
		})
	}
}

// TestDueLostHint has a writer put a profile in the due index without the
// hint update that follows (as if it died between the two): Due finds it
// at its next repair, or at the first call of another Store.
func TestDueLostHint(t *testing.T) {
	t.Parallel()
	for _, ordered := range []bool{true, false} {
		t.Run(kind(ordered), func(t *testing.T) {
			t.Parallel()
			c := newClient(t, nil, ordered)
			s := newStore(t, c, redis.Options{})
			defer s.Close()
			s.SetDueRepair(time.Hour)
			mustDue(t, s, hour(1), 10) // the first call's repair, done
			setRecheck(t, s, "x", nil, hour(0))
			hints, bucket := s.Prefix()+"{due}:hints", strconv.FormatUint(uint64(redis.BucketOf("x")), 16)
			if err := c.ZRem(t.Context(), hints, bucket).Err(); err != nil {
				t.Fatal(err)
			}
			if due := mustDue(t, s, hour(1), 10); len(due) != 0 {
				t.Fatalf("Due before the repair = %q: the hint was not lost", due)
			}
			// Another Store repairs at its first call.
			other := newStore(t, c, redis.Options{Prefix: s.Prefix()})
			defer other.Close()
			if due := mustDue(t, other, hour(1), 10); !slices.Equal(due, []string{"x"}) {
				t.Fatalf("Due of a new Store = %q, want [x]", due)
			}
			if err := c.ZRem(t.Context(), hints, bucket).Err(); err != nil {
				t.Fatal(err)
			}
			// This one at its next repair.
			s.SetDueRepair(time.Nanosecond)
			if due := mustDue(t, s, hour(1), 10); !slices.Equal(due, []string{"x"}) {
				t.Fatalf("Due after the repair time = %q, want [x]", due)
			}
			if sc, err := c.ZScore(t.Context(), hints, bucket).Result(); err != nil || int64(sc) != hour(0).UnixMicro() {
				t.Fatalf("hint of x's bucket after the repair: %v, %v; want %d", sc, err, hour(0).UnixMicro())
			}
		})
	}
}

// TestDueNoScript checks that the hints are updated after the server lost
// its scripts (restart, SCRIPT FLUSH), and that Due then runs.
func TestDueNoScript(t *testing.T) {
	t.Parallel()
	for _, ordered := range []bool{true, false} {
		t.Run(kind(ordered), func(t *testing.T) {
			t.Parallel()
			c := newClient(t, nil, ordered)
			s := newStore(t, c, redis.Options{})
			defer s.Close()
			s.SetDueRepair(time.Hour)
			mustDue(t, s, hour(1), 10)
			for i, id := range []string{"a", "b"} {
				if err := c.ScriptFlush(t.Context()).Err(); err != nil {
					t.Fatal(err)
				}
				setRecheck(t, s, id, nil, hour(i))
				if err := c.ScriptFlush(t.Context()).Err(); err != nil {
					t.Fatal(err)
				}
				if due := mustDue(t, s, hour(i), 10); len(due) != i+1 || due[i] != id {
					t.Fatalf("Due after SCRIPT FLUSH = %q, want %s last of %d", due, id, i+1)
				}
			}
		})
	}
}

// TestDueHintsConcurrent has writers of both kinds of clients move the
// recheck times of profiles of a few buckets while Dues read and tighten
// their hints, without repairs: every hint stays at or before the
// earliest entry of its bucket, and Due agrees with the profiles.
func TestDueHintsConcurrent(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil, true)
	prefix := uniquePrefix(t, c)
	var ids []string
	for _, seed := range []string{"a", "b", "c"} {
		ids = append(ids, sameBucket(seed, 4)...)
	}
	reader := newStore(t, client(t), redis.Options{Prefix: prefix})
	defer reader.Close()
	reader.SetDueRepair(time.Hour)
	mustDue(t, reader, hour(0), 10)
	for _, id := range ids {
		setRecheck(t, reader, id, nil, time.Time{})
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	var reads atomic.Int64
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := reader.Due(t.Context(), hour(rand.IntN(48)), 5); err != nil {
				t.Error(err)
				return
			}
			reads.Add(1)
		}
	})
	var writers sync.WaitGroup
	var stores []*redis.Store
	for w := range 4 {
		s := newStore(t, newClient(t, nil, w%2 == 0), redis.Options{Prefix: prefix})
		defer s.Close()
		stores = append(stores, s)
		writers.Go(func() {
			for range 60 {
				id := ids[rand.IntN(len(ids))]
				until := time.Time{}
				if rand.IntN(4) > 0 {
					until = hour(rand.IntN(48))
				}
				if _, err := s.Apply(t.Context(), id, []store.Event{recheckEvent(id, []string{"fans"}, until)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	writers.Wait()
	close(done)
	wg.Wait()
	t.Logf("%d Dues during the writes", reads.Load())
	// Writes after the last Due, whose hints no tightening made exact.
	for i, id := range ids {
		setRecheck(t, stores[i%len(stores)], id, []string{"fans"}, hour(rand.IntN(48)))
	}
	hints := map[string]float64{}
	for _, z := range c.ZRangeWithScores(t.Context(), prefix+"{due}:hints", 0, -1).Val() {
		hints[z.Member.(string)] = z.Score
	}
	var want []string
	for _, seed := range []string{"a", "b", "c"} {
		b := strconv.FormatUint(uint64(redis.BucketOf(seed)), 16)
		first := c.ZRangeWithScores(t.Context(), prefix+"{"+b+"}:due", 0, 0).Val()
		if h, ok := hints[b]; len(first) > 0 && (!ok || h > first[0].Score) {
			t.Errorf("bucket %s: earliest entry %v, hint %v (hinted: %v)", b, first[0], h, ok)
		}
	}
	for _, id := range ids {
		p, err := reader.Load(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Recheck.IsZero() {
			want = append(want, id)
		}
	}
	got := mustDue(t, reader, hour(48), len(ids))
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("Due = %q, want the profiles with a recheck time %q", got, want)
	}
}
