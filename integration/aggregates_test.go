package integration_test

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/bolt"
	"github.com/tailorhq/tailor/store/memory"
)

// aggregateSegments: a segment that a window of time ends, one that only
// grows, and one of visits.
const aggregateSegments = `{"segments": [
	{"name": "pricing-curious", "priority": 3, "rule": {"pageVisited": {"path": "/pricing", "min": 2, "within": "7d"}}},
	{"name": "customer", "priority": 2, "rule": {"purchased": {"min": 1}}},
	{"name": "returning", "priority": 1, "rule": {"visits": {"min": 2}}}
]}`

// changes collects the segment changes an instance reports.
type changes struct {
	mu sync.Mutex
	cs []middleware.SegmentChange
}

func (c *changes) add(x middleware.SegmentChange) { c.mu.Lock(); c.cs = append(c.cs, x); c.mu.Unlock() }

// exits counts, per visitor, the exits from seg reported.
func exits(seg string, cs ...*changes) map[string]int {
	out := map[string]int{}
	for _, c := range cs {
		c.mu.Lock()
		for _, x := range c.cs {
			if slices.Contains(x.Exited, seg) {
				out[x.VisitorID]++
			}
		}
		c.mu.Unlock()
	}
	return out
}

// bruteSegments counts the stored profiles and their stored segments by
// reading every profile.
func bruteSegments(t *testing.T, st store.Store) (int64, map[string]int64) {
	t.Helper()
	var n int64
	segs := map[string]int64{}
	err := st.(store.Ranger).Range(t.Context(), func(p *store.Profile) bool {
		if p.MergedInto != "" {
			return true
		}
		n++
		for _, s := range p.Segments {
			segs[s]++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, segs
}

// aggregates folds the requests of many visitors through two instances
// sharing a store (newStore returns a handle on it per instance), and
// checks the segment sizes both report against brute force over every
// stored profile; then a week passes without requests, and the exits
// from the segment of the last 7 days are recorded by the holder of the
// segments lease, counted, and reported once each.
func aggregates(t *testing.T, newStore func(t *testing.T) store.Store) {
	var clock atomic.Int64
	t0 := time.Now().Truncate(time.Second)
	clock.Store(t0.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	var ca, cb changes
	inst := func(st store.Store, c *changes) *instance {
		eng, err := rules.NewEngine()
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.Reload([]byte(aggregateSegments)); err != nil {
			t.Fatal(err)
		}
		in := newInstance(t, st, func(cfg *middleware.Config) {
			cfg.Engine, cfg.Now, cfg.RecheckInterval = eng, now, 20*time.Millisecond
			cfg.Logger = quietLogger()
			// A busy machine must not make a load time out: a request
			// served from a partial state records no segments.
			cfg.LoadTimeout = 10 * time.Second
		})
		in.p.Observe(middleware.Observer{SegmentChange: c.add})
		t.Cleanup(func() { in.p.Close(context.Background()) })
		return in
	}
	st := newStore(t)
	a, b := inst(st, &ca), inst(newStore(t), &cb)

	const visitors = 60
	curious := map[string]bool{}
	for i := range visitors {
		// A visitor's requests go to one instance (across instances, the
		// events of one reach the other within a flush and an
		// announcement: see freshness); visitors alternate.
		on := []*instance{a, b}[i%2]
		id, ck := visitor(t, on, on)
		for range i % 4 {
			clock.Add(int64(time.Minute))
			on.get(t, "/pricing", ck)
		}
		if i%4 >= 2 {
			curious[id] = true
		}
		if i%5 == 0 {
			on.get(t, "/buy", ck)
		}
		clock.Add(int64(time.Hour)) // a second visit
		on.get(t, "/", ck)
	}
	flush := func() {
		for _, in := range []*instance{a, b} {
			if err := in.p.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	flush()
	check := func(when string) map[string]int64 {
		t.Helper()
		n, want := bruteSegments(t, st)
		for _, in := range []*instance{a, b} {
			ag, err := in.p.Aggregates(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if ag.Profiles != n || !maps.Equal(ag.Segments, want) {
				t.Fatalf("%s: Aggregates = %d profiles, %v\nbrute force = %d profiles, %v", when, ag.Profiles, ag.Segments, n, want)
			}
		}
		return want
	}
	got := check("after the requests")

	if got["pricing-curious"] != int64(len(curious)) || got["returning"] != visitors || got["customer"] != visitors/5 {
		t.Fatalf("segments %v, want %d pricing-curious, %d returning, %d customers", got, len(curious), visitors, visitors/5)
	}

	// A week later, without a request, they leave pricing-curious.
	clock.Add(int64(7*24*time.Hour + time.Hour))
	deadline := time.Now().Add(20 * time.Second)
	for {
		ag, err := a.p.Aggregates(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if ag.Segments["pricing-curious"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a week later, still %d in pricing-curious", ag.Segments["pricing-curious"])
		}
		time.Sleep(20 * time.Millisecond)
	}
	got = check("after the passive exits")
	if got["returning"] != visitors || got["customer"] != visitors/5 {
		t.Fatalf("the other segments changed: %v", got)
	}
	// Every exit reported once, by one instance or the other.
	time.Sleep(100 * time.Millisecond) // observers are called after the write
	ex := exits("pricing-curious", &ca, &cb)
	if len(ex) != len(curious) {
		t.Fatalf("exits reported for %d visitors, want %d", len(ex), len(curious))
	}
	for id, n := range ex {
		if n != 1 || !curious[id] {
			t.Fatalf("visitor %s: %d exits reported (curious: %v)", id, n, curious[id])
		}
	}
	flush()
	check("at the end")
}

func TestAggregatesMemory(t *testing.T) {
	st := memory.New(store.Limits{})
	aggregates(t, func(*testing.T) store.Store { return st })
}

func TestAggregatesBolt(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "t.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	aggregates(t, func(*testing.T) store.Store { return st })
}

func TestAggregatesRedis(t *testing.T) { aggregates(t, redisStores(t)) }

func TestAggregatesPostgres(t *testing.T) { aggregates(t, pgStores(t)) }
