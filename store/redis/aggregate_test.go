package redis_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/redis"
	"github.com/tailorhq/tailor/store/storetest"
)

// TestBucketOf checks that the bucket of an id is its FNV-1a hash modulo
// 1024, as the layout has always had it.
func TestBucketOf(t *testing.T) {
	for _, id := range []string{"a", "visitor-1", "bench-visitor-0999", "ü", "a}b{c", string(make([]byte, 256))} {
		h := fnv.New32a()
		h.Write([]byte(id))
		if got, want := redis.BucketOf(id), h.Sum32()%1024; got != want {
			t.Errorf("BucketOf(%q) = %x, want %x", id, got, want)
		}
	}
}

func tagOf(s *redis.Store, id string) string {
	return s.Prefix() + "{" + strconv.FormatUint(uint64(redis.BucketOf(id)), 16) + "}:"
}

func mustCounts(t *testing.T, s *redis.Store) map[string]int64 {
	t.Helper()
	got, err := s.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// putUncounted stores p as a store that did not keep counts wrote it: data,
// version and LastSeen index, without a counted set or a due entry.
func putUncounted(t *testing.T, c *goredis.Client, s *redis.Store, p *store.Profile) {
	t.Helper()
	if p.Counted {
		t.Fatal("putUncounted of a Counted profile")
	}
	data, err := store.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	tag, ctx := tagOf(s, p.ID), t.Context()
	if err := c.Set(ctx, tag+"p:"+p.ID, data, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, tag+"v:"+p.ID, p.Version, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.ZAdd(ctx, tag+"seen", goredis.Z{Score: float64(p.LastSeen.UnixMicro()), Member: p.ID}).Err(); err != nil {
		t.Fatal(err)
	}
}

func segmentsEvent(id string, seq int, was, segs []string, until time.Time) store.Event {
	return store.Event{ID: store.EventID("old", uint64(seq)), Type: store.TypeSegments, Time: until.Add(-time.Hour),
		Classified: &store.Classification{Visitor: id, Was: was, Segments: segs, Until: until}}
}

// TestCountsUncounted checks profiles stored before the store kept counts:
// they count for nothing until written, are then counted afresh (whatever
// a counted set left by an earlier writer holds), and leave the counts
// when deleted.
func TestCountsUncounted(t *testing.T) {
	t.Parallel()
	c := client(t)
	s := newStore(t, c, redis.Options{})
	defer s.Close()
	ctx := t.Context()
	until := time.Date(2027, 5, 1, 0, 0, 0, 0, time.UTC)
	old := store.New("old")
	old.Apply(store.DefaultLimits, storetest.Page("old", 1, "/"), segmentsEvent("old", 2, nil, []string{"fans"}, until))
	old.Version = 1
	putUncounted(t, c, s, old)
	if got := mustCounts(t, s); len(got) != 0 {
		t.Fatalf("Counts with one profile not Counted = %v, want none", got)
	}
	if due, err := s.Due(ctx, until, 10); err != nil || len(due) != 0 {
		t.Fatalf("Due with one profile not indexed = %q, %v; want none", due, err)
	}
	// Its next write counts it, and indexes its recheck time, though the
	// write changes neither.
	if _, err := s.Apply(ctx, "old", []store.Event{storetest.Page("old", 3, "/x")}); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{store.CountProfiles: 1, store.SegmentKey("fans"): 1}
	if got := mustCounts(t, s); !maps.Equal(got, want) {
		t.Fatalf("Counts after the write = %v, want %v", got, want)
	}
	if due, err := s.Due(ctx, until, 10); err != nil || !slices.Equal(due, []string{"old"}) {
		t.Fatalf("Due after the write = %q, %v; want [old]", due, err)
	}
	// A writer that does not keep counts rewrites it, dropping Counted and
	// moving it to another segment: the counted set still says fans. The
	// next write counts it afresh.
	p, err := s.Load(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	p.Apply(store.DefaultLimits, segmentsEvent("old", 4, p.Segments, []string{"buyers"}, time.Time{}))
	p.Version++
	p.Counted = false
	putUncounted(t, c, s, p)
	if _, err := s.Apply(ctx, "old", []store.Event{storetest.Page("old", 5, "/y")}); err != nil {
		t.Fatal(err)
	}
	want = map[string]int64{store.CountProfiles: 1, store.SegmentKey("buyers"): 1}
	if got := mustCounts(t, s); !maps.Equal(got, want) {
		t.Fatalf("Counts after a write over an uncounted rewrite = %v, want %v", got, want)
	}
	if due, err := s.Due(ctx, until, 10); err != nil || len(due) != 0 {
		t.Fatalf("Due after the recheck time was cleared = %q, %v; want none", due, err)
	}
	// Its data deleted by hand, the profile starts afresh: it counts once.
	if err := c.Del(ctx, tagOf(s, "old")+"p:old").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "old", []store.Event{storetest.Page("old", 6, "/")}); err != nil {
		t.Fatal(err)
	}
	want = map[string]int64{store.CountProfiles: 1}
	if got := mustCounts(t, s); !maps.Equal(got, want) {
		t.Fatalf("Counts after a write over data deleted by hand = %v, want %v", got, want)
	}
	if err := s.Delete(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	if got := mustCounts(t, s); len(got) != 0 {
		t.Fatalf("Counts after Delete = %v, want none", got)
	}
	// A profile that never counted leaves the counts as they are when it
	// is deleted or expires.
	for i, id := range []string{"gone", "expired"} {
		p := store.New(id)
		p.Apply(store.DefaultLimits, storetest.Page("old", 1, "/"))
		p.Version = 1
		putUncounted(t, c, s, p)
		if _, err := s.Apply(ctx, fmt.Sprintf("other%d", i), []store.Event{storetest.Page("old", 1, "/")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Expire(ctx, time.Now()); err != nil || n != 3 {
		t.Fatalf("Expire = %d, %v; want 3", n, err)
	}
	if got := mustCounts(t, s); len(got) != 0 {
		t.Fatalf("Counts after deleting and expiring = %v, want none", got)
	}
}

// TestCountsConcurrentStores writes random histories into overlapping
// profiles through several Stores on one prefix, as several processes
// would: unlike the writers of one Store, which wait for each other, they
// conflict, so the counts must follow the compare-and-swap's retries.
func TestCountsConcurrentStores(t *testing.T) {
	t.Parallel()
	c := client(t)
	prefix := uniquePrefix(t, c)
	const stores, steps, ids = 4, 50, 6
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, stores)
	segs := []string{"fans", "buyers", "loyal"}
	for w := range stores {
		h := &casResults{conflicts: &conflicts}
		cw := client(t)
		cw.AddHook(h)
		s := newStore(t, cw, redis.Options{Prefix: prefix, MaxRetries: 1000})
		defer s.Close()
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			producer := fmt.Sprintf("w%d", w)
			ctx := t.Context()
			for i := range steps {
				seq := i + 1
				ev := func(id string) store.Event {
					switch rng.IntN(5) {
					case 0, 1:
						var to []string
						for _, sg := range segs {
							if rng.IntN(2) == 0 {
								to = append(to, sg)
							}
						}
						// Was is what this store read: if another has
						// classified the profile since, the fold skips it.
						var was []string
						if p, err := s.Load(ctx, id); err == nil {
							was = p.Segments
						}
						return store.Event{ID: store.EventID(producer, uint64(seq)), Type: store.TypeSegments, Time: time.Now(),
							Classified: &store.Classification{Visitor: id, Was: was, Segments: to, Until: time.Now().Add(time.Hour)}}
					case 2:
						return store.Event{ID: store.EventID(producer, uint64(seq)), Type: store.TypeAlias, UserID: fmt.Sprintf("u%d", rng.IntN(2)), Time: time.Now()}
					default:
						return storetest.Page(producer, seq, "/")
					}
				}
				var err error
				switch rng.IntN(6) {
				case 0:
					err = s.Delete(ctx, fmt.Sprintf("v%d", rng.IntN(ids)))
				case 1, 2:
					a, b := fmt.Sprintf("v%d", rng.IntN(ids)), fmt.Sprintf("v%d", rng.IntN(ids))
					_, err = s.ApplyBatch(ctx, []store.Batch{{ID: a, Events: []store.Event{ev(a)}}, {ID: b, Events: []store.Event{ev(b)}}})
				default:
					id := fmt.Sprintf("v%d", rng.IntN(ids))
					if _, err = s.Apply(ctx, id, []store.Event{ev(id)}); errors.Is(err, store.ErrErased) {
						err = nil
					}
				}
				if err != nil {
					errs <- fmt.Errorf("store %d, step %d: %w", w, i, err)
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
	s := newStore(t, c, redis.Options{Prefix: prefix})
	defer s.Close()
	if got, want := mustCounts(t, s), storetest.BruteCounts(t, s); !maps.Equal(got, want) {
		t.Fatalf("Counts = %v\nbrute force over Range = %v", got, want)
	}
	if conflicts.Load() == 0 {
		t.Log("no compare-and-swap conflicted: the retry path went unchecked this run")
	}
	t.Logf("%d compare-and-swaps conflicted", conflicts.Load())
}

// casResults counts the compare-and-swaps that lost to another writer.
type casResults struct{ conflicts *atomic.Int64 }

func (h *casResults) DialHook(next goredis.DialHook) goredis.DialHook          { return next }
func (h *casResults) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }
func (h *casResults) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			if c, ok := c.(*goredis.Cmd); ok && isCAS(c) {
				if n, err := c.Int(); err == nil && n == 0 {
					h.conflicts.Add(1)
				}
			}
		}
		return err
	}
}

// TestScanDuringWrites scans in small pages while every profile is written
// between pages (which reorders the bucket indexes by LastSeen) and the
// scan copies go (as when they expire): each profile is still returned
// exactly once. Profiles deleted or created during the scan may or may not
// be.
func TestScanDuringWrites(t *testing.T) {
	t.Parallel()
	c := client(t)
	s := newStore(t, c, redis.Options{})
	defer s.Close()
	ctx := t.Context()
	const n = 60
	// Every profile in one of three buckets, so that pages stop inside
	// buckets.
	var ids []string
	for i := 0; len(ids) < n; i++ {
		if id := fmt.Sprintf("s%d", i); redis.BucketOf(id) < 3 {
			ids = append(ids, id)
		}
	}
	// Each write makes LastSeen later, in an order of ids that flips from
	// one write to the next.
	write := func(seq int) {
		t.Helper()
		for i, id := range ids {
			if seq%2 == 0 {
				i = n - i
			}
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(seq)*time.Hour + time.Duration(i)*time.Second)
			ev := store.Event{ID: store.EventID("scan", uint64(seq)), Type: store.TypePage, Path: "/", Time: at}
			if _, err := s.Apply(ctx, id, []store.Event{ev}); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(1)
	seen := map[string]int{}
	cursor, pages := "", 0
	for {
		ps, next, err := s.Scan(ctx, cursor, 4)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			seen[p.ID]++
		}
		if next == "" {
			break
		}
		if pages++; pages > n {
			t.Fatal("Scan does not end")
		}
		write(pages + 1)
		if pages%3 == 0 {
			if keys := scanKeys(t, c, s.Prefix()+"*:scan"); len(keys) > 0 {
				if err := c.Del(ctx, keys...).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if pages == 5 {
			if _, err := s.Apply(ctx, "new", []store.Event{storetest.Page("scan", 1, "/")}); err != nil {
				t.Fatal(err)
			}
		}
		cursor = next
	}
	delete(seen, "new")
	if len(seen) != n {
		t.Fatalf("Scan saw %d profiles, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("Scan returned %s %d times", id, k)
		}
	}
	for _, bad := range []string{"zz:a", "400:a", "nocolon", "-1:a"} {
		if _, _, err := s.Scan(ctx, bad, 4); err == nil {
			t.Errorf("Scan from cursor %q: no error", bad)
		}
	}
}

// TestDueMicroseconds checks Due at the index's precision: a profile is
// due at its recheck time, not a microsecond before.
func TestDueMicroseconds(t *testing.T) {
	t.Parallel()
	s := newStore(t, client(t), redis.Options{})
	defer s.Close()
	ctx := t.Context()
	until := time.Date(2027, 1, 2, 3, 4, 5, 6000, time.UTC)
	if _, err := s.Apply(ctx, "a", []store.Event{segmentsEvent("a", 1, nil, []string{"fans"}, until)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   time.Time
		want int
	}{{until, 1}, {until.Add(-time.Microsecond), 0}, {until.Add(time.Hour), 1}} {
		if due, err := s.Due(ctx, tc.at, 5); err != nil || len(due) != tc.want {
			t.Errorf("Due(%v) = %q, %v; want %d", tc.at, due, err, tc.want)
		}
	}
}

// isCAS reports whether c runs casScript: the script whose eighth key is
// a staging key.
func isCAS(c goredis.Cmder) bool {
	if c.Name() != "evalsha" && c.Name() != "eval" {
		return false
	}
	// KEYS[8] of a compare-and-swap is its staging key.
	args := c.Args()
	return len(args) > 10 && strings.Contains(fmt.Sprint(args[10]), "}:w:")
}

// raceHook runs fn once, just before the first pipeline that holds a
// compare-and-swap is sent, when armed.
type raceHook struct {
	armed atomic.Bool
	fn    func()
}

func (h *raceHook) DialHook(next goredis.DialHook) goredis.DialHook          { return next }
func (h *raceHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }
func (h *raceHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		cas := slices.ContainsFunc(cmds, isCAS)
		if cas && h.armed.CompareAndSwap(true, false) {
			h.fn()
		}
		return next(ctx, cmds)
	}
}

// TestCountsAfterConflict makes another process change what a profile
// counts for between a write's load and its compare-and-swap: the write
// conflicts, and its retry must take the counts from the profile it then
// replaces, not the one it first loaded.
func TestCountsAfterConflict(t *testing.T) {
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
			if _, err := b.Apply(ctx, "x", []store.Event{storetest.Page("b", 1, "/"), segmentsEvent("x", 2, nil, []string{"fans"}, time.Time{})}); err != nil {
				t.Fatal(err)
			}
			h.fn = func() {
				if _, err := b.Apply(ctx, "x", []store.Event{segmentsEvent("x", 3, []string{"fans"}, []string{"buyers"}, time.Time{})}); err != nil {
					t.Error(err)
				}
			}
			h.armed.Store(true)
			// x is merged into a user's profile: it counts for nothing any
			// more, whichever segments it had.
			alias := store.Event{ID: store.EventID("a", 1), Type: store.TypeAlias, UserID: "u1", Time: time.Now()}
			var err error
			if batch {
				_, err = a.ApplyBatch(ctx, []store.Batch{{ID: "x", Events: []store.Event{alias}}, {ID: "y", Events: []store.Event{storetest.Page("a", 2, "/")}}})
			} else {
				_, err = a.Apply(ctx, "x", []store.Event{alias})
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.armed.Load() {
				t.Fatal("the competing write did not run")
			}
			p, err := a.Load(ctx, "x")
			if err != nil || p.MergedInto == "" || !slices.Equal(p.Segments, []string{"buyers"}) {
				t.Fatalf("Load(x) = %+v, %v; want merged, with the competing write's segments", p, err)
			}
			want := storetest.BruteCounts(t, a)
			if got := mustCounts(t, a); !maps.Equal(got, want) {
				t.Fatalf("Counts = %v\nbrute force over Range = %v", got, want)
			}
		})
	}
}
