package assoc_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/internal/quality"
	"github.com/tailorhq/tailor/rules/assoc"
	"github.com/tailorhq/tailor/store"
)

// The benchmark shop (quality.ShopGen): 10,000 items in 500 themes of 20
// (a theme is what goes together: a team's fan gear, a book series), 10
// themes per category. Theme popularity and item popularity within a theme
// follow Zipf laws; most baskets hold one to three items, mostly from one
// theme, sometimes with a bestseller from anywhere.
const (
	benchItems   = quality.ShopItems
	benchBaskets = 1_000_000
)

var bench struct {
	once     sync.Once
	m        *assoc.Model
	bytes    uint64
	took     time.Duration
	profiles []*store.Profile
	baskets  [][]string
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// benchModel learns a million baskets once, for every benchmark. One in
// five is a returning buyer's second order: it joins the basket of an
// earlier visitor.
func benchModel(b *testing.B) *assoc.Model {
	bench.once.Do(func() {
		s := quality.NewShopGen(1)
		// Everything the generator keeps is allocated before measuring.
		recent := make([][]string, 4096)
		before := heapAlloc()
		start := time.Now()
		m := assoc.New(assoc.Config{})
		for i := range benchItems {
			m.SetCategory(s.IDs[i], quality.ShopCategory(i))
		}
		for i := range benchBaskets {
			add := s.Names(s.Order(s.Size()))
			slot := s.R.IntN(len(recent))
			if i%5 == 4 && recent[slot] != nil {
				prior := recent[slot]
				m.Learn(assoc.Basket{Bought: prior}, assoc.Basket{Bought: add})
				recent[slot] = nil
				continue
			}
			m.Learn(assoc.Basket{}, assoc.Basket{Bought: add})
			recent[slot] = add
		}
		bench.took = time.Since(start)
		clear(recent)
		bench.bytes = heapAlloc() - before
		bench.m = m
		benchProfiles()
	})
	st := bench.m.Stats()
	b.Logf("model of %d baskets learnt in %v: %.1f MB of heap (estimated %.1f MB); %d items, %d pairs, %d baskets sampled (rate %g) of %d items, %d pairs cached",
		benchBaskets, bench.took.Round(time.Millisecond), float64(bench.bytes)/1e6, float64(st.Bytes)/1e6, st.Items, st.Pairs, st.Sampled, st.SampleRate, st.SampleItems, st.CachedPairs)
	return bench.m
}

// benchProfiles makes the visitors to recommend to (one to five items
// bought, as many viewed) and the baskets to learn.
func benchProfiles() {
	q := quality.NewShopGen(2)
	for i := range 1000 {
		var evs []store.Event
		for j, it := range q.Order(1 + q.R.IntN(5)) {
			evs = append(evs, store.Event{ID: store.EventID("b", uint64(2*j+1)), Type: store.TypeTrack, Name: store.EventPurchase,
				Items: []store.Item{{ID: q.IDs[it], Category: quality.ShopCategory(it)}}})
			v := q.Bestseller()
			evs = append(evs, store.Event{ID: store.EventID("b", uint64(2*j+2)), Type: store.TypePage, Item: q.IDs[v], Category: quality.ShopCategory(v)})
		}
		p := store.New(fmt.Sprint("visitor-", i))
		p.Apply(store.Limits{}, evs...)
		bench.profiles = append(bench.profiles, p)
	}
	for range 4096 {
		bench.baskets = append(bench.baskets, q.Names(q.Order(5)))
	}
}

// BenchmarkRecommend: 10 recommendations from the model of 10,000 items
// and a million baskets, for visitors who bought one to five items.
func BenchmarkRecommend(b *testing.B) {
	m := benchModel(b)
	b.ReportAllocs()
	cpu := cpuTime()
	i := 0
	for b.Loop() {
		recs := m.Recommend(bench.profiles[i%len(bench.profiles)], 10)
		if len(recs) != 10 {
			b.Fatalf("%d recommendations", len(recs))
		}
		i++
	}
	reportCPU(b, cpu, i)
}

// reportCPU reports the process's CPU time per operation since cpu, which
// includes the garbage collector's work, and the model's heap size. (After
// the loop: b.Loop resets the metrics reported before it.)
func reportCPU(b *testing.B, cpu time.Duration, ops int) {
	if d := cpuTime() - cpu; d > 0 && ops > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(ops), "cpu-ns/op")
	}
	b.ReportMetric(float64(bench.bytes), "model-bytes")
}

// BenchmarkLearnPurchase: a new visitor's basket of 5 items, learnt into the
// model of 10,000 items and a million baskets.
func BenchmarkLearnPurchase(b *testing.B) {
	m := benchModel(b)
	b.ReportAllocs()
	cpu := cpuTime()
	i := 0
	for b.Loop() {
		m.Learn(assoc.Basket{}, assoc.Basket{Bought: bench.baskets[i%len(bench.baskets)]})
		i++
	}
	reportCPU(b, cpu, i)
}

// BenchmarkLearnDense learns a million dense baskets (a supermarket's: 8 to
// 40 items of 10,000, 24 on average, with a mild skew) into one model and
// reports the heap it takes and the CPU per basket. It measures the model's
// memory per million baskets where baskets are large; run it alone
// (-bench LearnDense -benchtime 1x): it takes about a minute.
func BenchmarkLearnDense(b *testing.B) {
	const n, nItems = 1_000_000, 10_000
	r := rand.New(rand.NewPCG(3, 99))
	ids := make([]string, nItems)
	for i := range ids {
		ids[i] = fmt.Sprintf("sku-%05d", i)
	}
	basket := make([]string, 0, 40)
	for b.Loop() {
		before := heapAlloc()
		cpu := cpuTime()
		m := assoc.New(assoc.Config{})
		for range n {
			basket = basket[:0]
			for range 8 + r.IntN(33) {
				basket = append(basket, ids[int(nItems*math.Pow(r.Float64(), 2))])
			}
			m.Learn(assoc.Basket{}, assoc.Basket{Bought: basket})
		}
		d := cpuTime() - cpu
		bytes := heapAlloc() - before
		st := m.Stats()
		b.ReportMetric(float64(bytes), "model-bytes")
		b.ReportMetric(float64(d.Nanoseconds())/n, "cpu-ns/basket")
		b.Logf("%d dense baskets: %.0f MB of heap (estimated %.0f MB); %+v", n, float64(bytes)/1e6, float64(st.Bytes)/1e6, st)
	}
}
