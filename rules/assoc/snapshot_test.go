package assoc_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"

	"github.com/tailorhq/tailor/rules/assoc"
	"github.com/tailorhq/tailor/store"
)

func snapshot(t testing.TB, m *assoc.Model) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := m.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v; wrote %d bytes", n, err, buf.Len())
	}
	return buf.Bytes()
}

// allRules lists the rules of every item and pair of items of ids.
func allRules(m *assoc.Model, ids []string) []assoc.Rule {
	var out []assoc.Rule
	for i, x := range ids {
		out = append(out, m.Rules(x)...)
		for _, y := range ids[i+1:] {
			out = append(out, m.Rules(x, y)...)
		}
	}
	return out
}

func itemIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("i%02d", i)
	}
	return ids
}

func sameRules(t *testing.T, got, want []assoc.Rule) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d rules, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if !slices.Equal(g.If, w.If) || g.Then != w.Then || !near(g.Count, w.Count) || !near(g.Support, w.Support) ||
			!near(g.Confidence, w.Confidence) || !near(g.Lift, w.Lift) {
			t.Errorf("rule %d: %v, want %v", i, g, w)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 5))
	cfg := assoc.Config{MinSupport: -1, MinConfidence: -1, MinLift: -1}
	m := assoc.New(cfg)
	learnSteps(r, m, visitorSteps(r, 300, 30))
	for i, id := range itemIDs(30) {
		m.SetCategory(id, []string{"books", "toys", "music"}[i%3])
	}
	m.Rules("i01", "i02") // a cached pair is not part of the snapshot
	snap := snapshot(t, m)

	m2 := assoc.New(cfg)
	n, err := m2.ReadFrom(bytes.NewReader(snap))
	if err != nil || n != int64(len(snap)) {
		t.Fatalf("ReadFrom = %d, %v", n, err)
	}
	if err := assoc.CheckInvariants(m2); err != nil {
		t.Fatal(err)
	}
	if again := snapshot(t, m2); !bytes.Equal(again, snap) {
		t.Error("the snapshot of the restored model differs")
	}
	sameRules(t, allRules(m2, itemIDs(30)), allRules(m, itemIDs(30)))
	if got, want := m2.Stats(), m.Stats(); got.Items != want.Items || got.Pairs != want.Pairs || got.Sampled != want.Sampled ||
		got.SampleItems != want.SampleItems || got.Baskets != want.Baskets || got.SampleRate != 1 {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	p := profileOf(purchase(items("i01", "i03")...), view("i00", ""))
	p.Categories = map[string]int{"toys": 3}
	if got, want := m2.Recommend(p, 20), m.Recommend(p, 20); !reflect.DeepEqual(got, want) {
		t.Errorf("Recommend after restore:\n%+v\nwant\n%+v", got, want)
	}
	pop := m2.Recommend(store.New("new"), 3)
	if len(pop) != 3 || pop[0].Category == "" {
		t.Errorf("popular items after restore: %+v", pop)
	}

	// A model with a smaller bound samples what it reads.
	small := assoc.New(assoc.Config{MaxSample: 200, MinSupport: -1, MinConfidence: -1, MinLift: -1})
	if _, err := small.ReadFrom(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if err := assoc.CheckInvariants(small); err != nil {
		t.Fatal(err)
	}
	if st := small.Stats(); st.SampleItems > 200 || st.SampleRate >= 1 || st.Baskets != m.Stats().Baskets {
		t.Errorf("after reading with MaxSample 200: %+v", st)
	}
	if len(small.Rules("i01")) == 0 {
		t.Error("no rules of i01 from the sample")
	}
	// It writes its sample, which reads back the same.
	snap2 := snapshot(t, small)
	small2 := assoc.New(assoc.Config{MaxSample: 200, MinSupport: -1, MinConfidence: -1, MinLift: -1})
	if _, err := small2.ReadFrom(bytes.NewReader(snap2)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshot(t, small2), snap2) {
		t.Error("the snapshot of a sampled model does not read back the same")
	}
}

func TestSnapshotErrors(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(6, 6))
	m := assoc.New(assoc.Config{})
	learnSteps(r, m, visitorSteps(r, 100, 10))
	snap := snapshot(t, m)
	before := snapshot(t, m)
	for name, data := range map[string][]byte{
		"empty":     nil,
		"magic":     []byte("not a snapshot at all"),
		"version":   append([]byte("tailor-assoc\x03"), snap[13:]...),
		"older":     append([]byte("tailor-assoc\x01"), snap[13:]...),
		"truncated": snap[:len(snap)-5],
		"flipped":   func() []byte { b := slices.Clone(snap); b[len(b)/2] ^= 1; return b }(),
		"trailing":  append(slices.Clone(snap), 0),
	} {
		_, err := m.ReadFrom(bytes.NewReader(data))
		if !errors.Is(err, assoc.ErrSnapshot) {
			t.Errorf("%s: error %v, want ErrSnapshot", name, err)
		}
	}
	if !bytes.Equal(snapshot(t, m), before) {
		t.Error("a failed ReadFrom changed the model")
	}
}

func FuzzReadFrom(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 7))
	m := assoc.New(assoc.Config{})
	learnSteps(r, m, visitorSteps(r, 30, 6))
	m.SetCategory("i01", "books")
	f.Add(snapshot(f, m))
	f.Add(snapshot(f, assoc.New(assoc.Config{})))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := assoc.New(assoc.Config{MaxItems: 4, MaxPairs: 4, MaxSample: 16})
		_, err := m.ReadFrom(bytes.NewReader(data))
		if err != nil && len(data) > 4 {
			// Fix the checksum, so that the fuzzer explores the body.
			body := data[:len(data)-4]
			fixed := binary.LittleEndian.AppendUint32(slices.Clip(body), crc32.ChecksumIEEE(body))
			_, err = m.ReadFrom(bytes.NewReader(fixed))
		}
		if err != nil {
			if !errors.Is(err, assoc.ErrSnapshot) {
				t.Fatalf("error %v does not wrap ErrSnapshot", err)
			}
			return
		}
		// Whatever was read is a usable model within its bounds, and
		// writes a snapshot that reads back the same.
		if err := assoc.CheckInvariants(m); err != nil {
			t.Fatal(err)
		}
		st := m.Stats()
		if st.Items > 4 || st.Pairs > 4 || st.SampleItems > 16 {
			t.Fatalf("bounds exceeded: %+v", st)
		}
		m.Recommend(profileOf(purchase(items("i01", "i02")...)), 5)
		snap := snapshot(t, m)
		m2 := assoc.New(assoc.Config{MaxItems: 4, MaxPairs: 4, MaxSample: 16})
		if _, err := m2.ReadFrom(bytes.NewReader(snap)); err != nil {
			t.Fatalf("reading back: %v", err)
		}
		if !bytes.Equal(snapshot(t, m2), snap) {
			t.Fatal("snapshot not stable")
		}
	})
}

// webHistory makes visitors who browse, put items in the cart and buy over
// several orders, learning every event online in m.
func webHistory(r *rand.Rand, m *assoc.Model, visitors, nItems int, purchasesOnly bool) *history {
	h := newHistory()
	cats := []string{"books", "toys", "music"}
	item := func() (string, string) {
		i := int(float64(nItems) * r.Float64() * r.Float64())
		return fmt.Sprintf("i%02d", i), cats[i%3]
	}
	var queue []string
	for v := range visitors {
		for range 1 + r.IntN(8) {
			queue = append(queue, fmt.Sprint("v", v))
		}
	}
	r.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })
	for _, v := range queue {
		id, c := item()
		k := r.IntN(4)
		if purchasesOnly {
			k = 3
		}
		switch k {
		case 0:
			h.apply(m, v, view(id, c))
		case 1:
			h.apply(m, v, cart(id))
		case 2:
			h.apply(m, v, store.Event{Type: store.TypePage, Path: "/about"})
		default:
			its := []store.Item{{ID: id, Category: c, Quantity: 1 + r.IntN(2)}}
			for range r.IntN(3) {
				id, c := item()
				its = append(its, store.Item{ID: id, Category: c})
			}
			h.apply(m, v, purchase(its...))
		}
	}
	return h
}

// Rebuilding from the profiles gives the counts that learning every event
// online gave.
func TestRebuildMatchesOnline(t *testing.T) {
	t.Parallel()
	for _, purchasesOnly := range []bool{true, false} {
		t.Run(fmt.Sprint("purchasesOnly=", purchasesOnly), func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(8, 8))
			online := assoc.New(unbounded)
			h := webHistory(r, online, 400, 25, purchasesOnly)
			rebuilt := assoc.New(unbounded)
			rebuilt.Learn(assoc.Basket{}, assoc.Basket{Bought: []string{"stale", "i01"}}) // replaced by the rebuild
			n, err := rebuilt.Rebuild(context.Background(), h)
			if err != nil || n != len(h.order) {
				t.Fatalf("Rebuild = %d, %v; want %d", n, err, len(h.order))
			}
			for _, m := range []*assoc.Model{online, rebuilt} {
				if err := assoc.CheckInvariants(m); err != nil {
					t.Fatal(err)
				}
			}
			sameRules(t, allRules(rebuilt, itemIDs(25)), allRules(online, itemIDs(25)))
			if len(allRules(online, itemIDs(25))) < 100 {
				t.Fatal("too few rules to compare")
			}
			if !bytes.Equal(snapshot(t, rebuilt), snapshot(t, online)) {
				t.Error("snapshots differ")
			}
			for _, id := range h.order[:20] {
				p := h.profiles[id]
				if got, want := rebuilt.Recommend(p, 8), online.Recommend(p, 8); !sameRecs(got, want) {
					t.Errorf("Recommend(%s) rebuilt %+v, online %+v", id, got, want)
				}
			}
		})
	}
}

func sameRecs(a, b []assoc.Recommendation) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Item != b[i].Item || a[i].Reason != b[i].Reason || a[i].Category != b[i].Category || (a[i].Rule == nil) != (b[i].Rule == nil) {
			return false
		}
		if a[i].Rule != nil && !near(a[i].Rule.Confidence, b[i].Rule.Confidence) {
			return false
		}
	}
	return true
}

// A cancelled rebuild leaves the model as it was.
func TestRebuildCancelled(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(9, 9))
	m := assoc.New(assoc.Config{})
	h := webHistory(r, m, 50, 10, false)
	before := snapshot(t, m)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Rebuild(ctx, h); !errors.Is(err, context.Canceled) {
		t.Fatalf("Rebuild with a cancelled context: %v", err)
	}
	if !bytes.Equal(snapshot(t, m), before) {
		t.Error("a failed rebuild changed the model")
	}
}

// Memory stays bounded under a stream of ever new items and baskets, the
// bounds are counted, and a strong association survives the pruning and
// the sampling.
//
// Not parallel: it measures the heap.
func TestBounds(t *testing.T) {
	cfg := assoc.Config{MaxItems: 4000, MaxSample: 20_000, MaxPairs: 30_000}
	m := assoc.New(cfg)
	r := rand.New(rand.NewPCG(10, 10))
	next := 0
	learn := func(n int) {
		for range n {
			var b assoc.Basket
			if r.IntN(3) == 0 {
				b.Bought = append(b.Bought, "ale", "bread")
			}
			for range 1 + r.IntN(8) {
				if r.IntN(2) == 0 {
					b.Bought = append(b.Bought, fmt.Sprint("new-", next)) // never seen again
					next++
				} else {
					b.Bought = append(b.Bought, fmt.Sprint("old-", r.IntN(5000)))
				}
			}
			m.Learn(assoc.Basket{}, b)
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	learn(10_000)
	h1, s1 := heap(), m.Stats()
	if err := assoc.CheckInvariants(m); err != nil {
		t.Fatal(err)
	}
	learn(40_000)
	h2, s2 := heap(), m.Stats()
	if err := assoc.CheckInvariants(m); err != nil {
		t.Fatal(err)
	}
	t.Logf("after 10k baskets: %+v, heap %d; after 50k: %+v, heap %d", s1, h1, s2, h2)
	for _, st := range []assoc.Stats{s1, s2} {
		if st.Items > cfg.MaxItems || st.Pairs > int64(cfg.MaxPairs) || st.SampleItems > int64(cfg.MaxSample) {
			t.Errorf("bounds exceeded: %+v", st)
		}
	}
	if s2.PrunedItems <= s1.PrunedItems || s2.SampleRate >= s1.SampleRate || s2.Baskets != 50_000 {
		t.Errorf("pruning and sampling not counted: %+v then %+v", s1, s2)
	}
	// The heap holds the test's own garbage too; allow for it.
	if h2 > h1*3/2+1<<20 {
		t.Errorf("heap grew from %d to %d bytes", h1, h2)
	}
	rules := m.Rules("ale")
	if len(rules) == 0 || rules[0].Then != "bread" || rules[0].Confidence < 0.99 {
		t.Errorf("Rules(ale) = %v, want ale => bread first, with confidence 1", rules)
	}
	// What is left after so much pruning is consistent: it recommends,
	// and survives a snapshot.
	p := profileOf(purchase(items("ale", "old-1", "old-2")...))
	if recs := m.Recommend(p, 10); len(recs) != 10 || recs[0].Item != "bread" {
		t.Errorf("Recommend after pruning: %+v", recs)
	}
	snap := snapshot(t, m)
	m2 := assoc.New(cfg)
	if _, err := m2.ReadFrom(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshot(t, m2), snap) {
		t.Error("snapshot after pruning does not read back the same")
	}
}

// Learning, queries, snapshots and rebuilds run concurrently (run with
// -race).
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	m := assoc.New(assoc.Config{MaxPairs: 500, MaxItems: 200, MaxSample: 800, MaxCache: 100})
	h := webHistory(rand.New(rand.NewPCG(11, 11)), nil, 100, 40, false)
	p := profileOf(purchase(items("i01", "i02")...), view("i03", "toys"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := rand.New(rand.NewPCG(12, 12))
		learnSteps(r, m, visitorSteps(r, 300, 300))
	}()
	for i := 0; ; i++ {
		select {
		case <-done:
			if err := assoc.CheckInvariants(m); err != nil {
				t.Fatal(err)
			}
			return
		default:
		}
		m.Recommend(p, 5)
		m.Rules("i01")
		m.Likelihood([]string{"i01", "i02"}, "i03")
		m.Rules("i01", "i02")
		m.Stats()
		switch i % 50 {
		case 10:
			snapshot(t, m)
		case 20:
			if _, err := m.Rebuild(context.Background(), h); err != nil {
				t.Fatal(err)
			}
		case 30:
			m.LearnEvent(h.profiles[h.order[0]], &store.Event{ID: "x", Type: store.TypePage, Item: "i07", Category: "books"})
		}
	}
}
