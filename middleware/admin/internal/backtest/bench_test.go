package backtest

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/bolt"
)

// The published segments of the benchmark: the demo shop's, without its
// plugin, and a stricter pricing segment.
const benchPublished = `{"segments": [
	{"name": "customer", "priority": 40, "rule": {"purchased": {"min": 1}}},
	{"name": "crm-opportunity", "priority": 35, "rule": {"trait": {"path": "crm_stage", "is": "opportunity"}}},
	{"name": "red-sox-fan", "priority": 30, "rule": {"categoryViews": {"category": "red-sox", "min": 2}}},
	{"name": "returning", "priority": 20, "rule": {"visits": {"min": 2}}},
	{"name": "watercolourist", "priority": 10, "rule": {"categoryViews": {"category": "watercolours", "min": 1}}},
	{"name": "deadhead", "priority": 10, "rule": {"categoryViews": {"category": "grateful-dead", "min": 1}}},
	{"name": "pricing-fan", "priority": 5, "rule": {"pageVisited": {"path": "/pricing", "min": 3, "within": "30d"}}}
]}`

// The draft: "visited /pricing twice this week", and the published
// segments as they are.
const benchDraft = `{"segments": [
	{"name": "customer", "priority": 40, "rule": {"purchased": {"min": 1}}},
	{"name": "pricing-curious", "priority": 6, "rule": {"pageVisited": {"path": "/pricing", "min": 2, "within": "7d"}}}
]}`

// BenchmarkBacktest times one backtest of "visited /pricing twice this
// week" against the shop's published segments, over a bbolt store of
// TAILOR_BACKTEST_VISITORS visitors (default 100,000; 10,000 with -short),
// shaped like examples/scale's (30 to 200 events each, heavy-tailed, over
// six months), at the Runner's default pace, while one goroutine serves:
// it loads a random profile and writes a page view to one in ten, as
// requests do. It reports the time to the answer (ns/op), the pace
// (profiles/s) and the serving goroutine's operations a second and their
// 99th percentile, and the CPU the process used meanwhile (cpu-s/op, the
// serving included). TAILOR_BACKTEST_DB names a bbolt file to fill once and
// reuse across runs.
func BenchmarkBacktest(b *testing.B) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	if s := os.Getenv("TAILOR_BACKTEST_VISITORS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("TAILOR_BACKTEST_VISITORS=%q: want a positive number", s)
		}
		n = v
	}
	path := os.Getenv("TAILOR_BACKTEST_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "bench.db")
	}
	st, err := bolt.Open(path, bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	counts, err := st.Counts(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if have := counts[store.CountProfiles]; have != int64(n) {
		if have != 0 {
			b.Fatalf("%s holds %d profiles, not %d: remove it", path, have, n)
		}
		start := time.Now()
		benchFill(b, st, n)
		b.Logf("filled %d visitors in %s", n, time.Since(start).Round(time.Millisecond))
	}
	draft, published := mustParse(b, benchDraft), mustParse(b, benchPublished)
	r, err := New(Config{Store: st, Holder: "bench", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	now := time.Now()

	var served atomic.Int64
	var lat []time.Duration
	var latMu sync.Mutex
	var took time.Duration
	var last Progress
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for range b.N {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { // the site serving meanwhile
			rng := rand.New(rand.NewPCG(7, 7))
			var mine []time.Duration
			for i := 0; ; i++ {
				select {
				case <-stop:
					latMu.Lock()
					lat = append(lat, mine...)
					latMu.Unlock()
					return
				default:
				}
				id := fmt.Sprintf("v%07d", rng.IntN(n))
				t0 := time.Now()
				if _, err := st.Load(ctx, id); err != nil {
					b.Error(err)
					return
				}
				if i%10 == 0 {
					ev := store.Event{ID: store.EventID("bench-serve", uint64(time.Now().UnixNano())), Type: store.TypePage, Path: "/", Time: time.Now()}
					if _, err := st.Apply(ctx, id, []store.Event{ev}); err != nil {
						b.Error(err)
						return
					}
				}
				mine = append(mine, time.Since(t0))
				served.Add(1)
			}
		})
		start := time.Now()
		id, err := r.Start(ctx, Request{Draft: draft, Segment: "pricing-curious", Published: published, Now: now})
		if err != nil {
			b.Fatal(err)
		}
		for {
			p, err := r.Progress(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			if !p.Running() {
				last = p
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		took += time.Since(start)
		close(stop)
		wg.Wait()
		if last.Result == nil {
			b.Fatalf("backtest: %+v", last)
		}
	}
	b.StopTimer()
	cpu := cpuSeconds() - cpu0
	slices.Sort(lat)
	p99 := time.Duration(0)
	if len(lat) > 0 {
		p99 = lat[int(math.Ceil(0.99*float64(len(lat))))-1]
	}
	b.ReportMetric(float64(last.Done)/last.Finished.Sub(last.Started).Seconds(), "profiles/s")
	b.ReportMetric(float64(served.Load())/took.Seconds(), "served/s")
	b.ReportMetric(float64(p99.Microseconds()), "served-p99-µs")
	b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
	res := last.Result
	b.Logf("%d profiles: %d in pricing-curious, history %v; answered in %s", last.Done, res.Members, res.History, (took / time.Duration(b.N)).Round(time.Millisecond))
}

// benchFill writes n synthetic visitors to st, shaped like examples/scale's.
func benchFill(b *testing.B, st store.Store, n int) {
	ctx := context.Background()
	now := time.Now()
	paths := []string{"/", "/pricing", "/products/moneyball", "/products/red-sox-cap", "/cart", "/about", "/docs", "/blog"}
	cats := []string{"red-sox", "watercolours", "grateful-dead", "baseball", "books"}
	const batch = 250
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 2 {
		wg.Go(func() {
			for {
				from := int(next.Add(batch)) - batch
				if from >= n {
					return
				}
				var bs []store.Batch
				for i := from; i < min(from+batch, n); i++ {
					rng := rand.New(rand.NewPCG(uint64(i), 42))
					// A bounded Pareto from 30 to 200, shape 1.2.
					u := rng.Float64()
					lo, hi, a := 30.0, 200.0, 1.2
					k := int(math.Pow(-(u*math.Pow(hi, a)-u*math.Pow(lo, a)-math.Pow(hi, a))/(math.Pow(hi, a)*math.Pow(lo, a)), -1/a))
					first := now.Add(-time.Duration(rng.Int64N(int64(180 * 24 * time.Hour))))
					span := now.Sub(first)
					evs := make([]store.Event, 0, k+2)
					for j := range k {
						t := first.Add(time.Duration(float64(span) * float64(j) / float64(k)))
						e := store.Event{ID: store.EventID("bench-fill", uint64(j+1)), Type: store.TypePage, Time: t,
							Path: paths[rng.IntN(len(paths))], NewVisit: j == 0 || rng.IntN(8) == 0}
						if rng.IntN(3) == 0 {
							e.Category = cats[rng.IntN(len(cats))]
						}
						evs = append(evs, e)
					}
					if rng.IntN(8) == 0 {
						evs = append(evs, store.Event{ID: store.EventID("bench-fill", uint64(k+1)), Type: store.TypeTrack,
							Name: store.EventPurchase, Revenue: 20, Time: now.Add(-time.Duration(rng.Int64N(int64(span))))})
					}
					bs = append(bs, store.Batch{ID: fmt.Sprintf("v%07d", i), Events: evs})
				}
				if _, err := store.ApplyBatch(ctx, st, bs); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}
