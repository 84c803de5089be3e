package core

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware/internal/cookie"
	"github.com/tailorhq/tailor/middleware/internal/reqfacts"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// interfering is a memory store that runs before, once, just before the
// first batch of segments events is applied: another instance's write
// landing between the job's read of a profile and its write.
type interfering struct {
	*memory.Store
	once   sync.Once
	before func()
}

func (s *interfering) ApplyBatch(ctx context.Context, bs []store.Batch) ([]*store.Profile, error) {
	if len(bs) > 0 && len(bs[0].Events) > 0 && bs[0].Events[0].Type == store.TypeSegments && s.before != nil {
		s.once.Do(s.before)
	}
	return s.Store.ApplyBatch(ctx, bs)
}

// jobCore is a Core on st whose clock is now, with the segments "recent"
// (a purchase in the last hour) and "buyer", reporting changes to changes.
func jobCore(t *testing.T, st store.Store, now func() time.Time, changes func(SegmentChange)) *Core {
	t.Helper()
	key := func(b byte) []byte { return []byte(fmt.Sprintf("%032d", b)) }
	cookies := cookie.New(cookie.Config{Name: "tailor", MaxAge: time.Hour, Keys: []cookie.Key{{Hash: key(1), Block: key(2)}}})
	t.Cleanup(cookies.Close)
	eng := &rules.Engine{}
	if err := eng.Reload([]byte(`{"segments": [
		{"name": "recent", "rule": {"eventCount": {"name": "buy", "min": 1, "within": "1h"}}},
		{"name": "buyer", "rule": {"eventCount": {"name": "buy", "min": 1}}}]}`)); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{
		Store: st, Engine: eng, Cookies: cookies, CookieMaxAge: time.Hour,
		VisitTimeout: 30 * time.Minute, FlushInterval: time.Second, FlushBatch: 500,
		MaxPending: 1000, StoreTimeout: 5 * time.Second, LoadTimeout: time.Second,
		Freshness: time.Second, CacheBytes: 1 << 20, Retention: -1, RecheckInterval: time.Hour,
		IsBot: reqfacts.IsBot, Consent: func(*http.Request) Consent { return ConsentFull },
		Logger: slog.New(slog.DiscardHandler), Now: now,
		Hooks: Hooks{WantsSegments: func() bool { return true }, SegmentChange: changes,
			WantsTiming: func() bool { return false }, Classified: func(time.Duration) {}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestRecheckLosesToANewerWrite: the job reads a profile whose hour has
// passed and classifies it out of "recent"; before its write lands,
// another instance writes a new purchase (the stored segments stay the
// same). The job's classification is of the older version: the store
// refuses it, no exit is reported, and the next recheck finds the visitor
// still recent, until the new purchase's hour has passed too.
func TestRecheckLosesToANewerWrite(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	st := &interfering{Store: memory.New(store.Limits{})}
	ctx := context.Background()
	// Another instance holds the jobs' lease: this Core's own jobs do not
	// run in the background, so that the test's recheck is the only one
	// (and the only reader of st.before).
	if held, err := st.Lease(ctx, segmentsLease, "another instance", time.Hour); err != nil || !held {
		t.Fatalf("Lease = %v, %v", held, err)
	}
	var mu sync.Mutex
	var got []SegmentChange
	c := jobCore(t, st, now, func(ch SegmentChange) { mu.Lock(); got = append(got, ch); mu.Unlock() })
	buy := func(seq int, at time.Time) store.Event {
		return store.Event{ID: store.EventID("other", uint64(seq)), Type: store.TypeTrack, Name: "buy", Time: at}
	}
	classified := func(seq int, was, segs []string, until time.Time) store.Event {
		return store.Event{ID: store.EventID("other", uint64(seq)), Type: store.TypeSegments, Time: now(),
			Classified: &store.Classification{Visitor: "v", Was: was, Segments: segs, Until: until}}
	}
	if _, err := st.Apply(ctx, "v", []store.Event{buy(1, t0), classified(2, nil, []string{"recent", "buyer"}, t0.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	clock.Store(t0.Add(2 * time.Hour).UnixNano())
	st.before = func() {
		// Another instance: a purchase now; its classification is what
		// is stored already, so it records no segments event.
		if _, err := st.Store.Apply(ctx, "v", []store.Event{buy(3, now())}); err != nil {
			t.Error(err)
		}
	}
	c.recheck(ctx)
	p, err := st.Load(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Segments, []string{"recent", "buyer"}) || len(got) != 0 {
		t.Fatalf("after the job lost to a newer write: segments %v, changes %v; want still recent, none", p.Segments, got)
	}
	// The profile is still due: the next recheck classifies the new
	// version, still recent, until an hour after the new purchase.
	c.recheck(ctx)
	if p, _ = st.Load(ctx, "v"); !slices.Equal(p.Segments, []string{"recent", "buyer"}) || !p.Recheck.Equal(t0.Add(3*time.Hour)) || len(got) != 0 {
		t.Fatalf("recheck of the new version: segments %v, recheck %v, changes %v", p.Segments, p.Recheck, got)
	}
	clock.Store(t0.Add(3*time.Hour + time.Minute).UnixNano())
	c.recheck(ctx)
	c.recheck(ctx) // nothing left to do: no second report
	if p, _ = st.Load(ctx, "v"); !slices.Equal(p.Segments, []string{"buyer"}) || !p.Recheck.IsZero() {
		t.Fatalf("after the hour: segments %v, recheck %v", p.Segments, p.Recheck)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !slices.Equal(got[0].Exited, []string{"recent"}) || got[0].VisitorID != "v" {
		t.Fatalf("changes reported: %+v, want one exit from recent", got)
	}
}

// TestJobWritesDoNotPassTheQueue: a job's write to a profile whose events
// still wait in the queue does not make the store skip them: the jobs
// write as a producer of their own.
func TestJobWritesDoNotPassTheQueue(t *testing.T) {
	st := memory.New(store.Limits{})
	c := jobCore(t, st, time.Now, func(SegmentChange) {})
	ctx := context.Background()
	_, ck := newVisitor(t, c)
	v := returning(t, c, ck)
	c.Record(v, track("visit"))
	flushAll(t, c)
	c.Record(v, track("buy")) // waits in the queue
	p, err := st.Load(ctx, v.ID())
	if err != nil {
		t.Fatal(err)
	}
	b, ok := c.reclassify(p, time.Now(), true)
	if !ok || !c.writeJob(ctx, []store.Batch{b}) {
		t.Fatal("the job wrote nothing")
	}
	flushAll(t, c)
	if p := load(t, st, v.ID()); p.Counts["buy"] != 1 {
		t.Fatalf("after a job's write and the flush, buy counted %d times, want 1", p.Counts["buy"])
	}
}
