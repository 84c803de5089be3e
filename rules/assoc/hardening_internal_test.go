package assoc

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// These tests hold the model to a plain implementation of what the package
// documentation specifies: a multiset of the visitors' baskets, learnt
// step by step (a prior never taught counts as a new visitor), counted
// directly; with random steps, small caches, samples and pruning.

// msModel is the multiset model of the specified semantics.
type msModel struct {
	ms map[string]int // key: sorted ids joined by \x00
}

func key(ids []string) string { return strings.Join(ids, "\x00") }

func unkey(k string) []string {
	if k == "" {
		return nil
	}
	return strings.Split(k, "\x00")
}

// learn mirrors the spec: prior known -> moves; unknown -> new visitor.
// returns new basket
func (mm *msModel) learn(prior, add []string) []string {
	prior, add = idsSet(prior), idsSet(add)
	grows := false
	for _, a := range add {
		if !slices.Contains(prior, a) {
			grows = true
		}
	}
	if !grows {
		return prior
	}
	next := idsSet(append(slices.Clone(prior), add...))
	if len(prior) > 0 && mm.ms[key(prior)] > 0 {
		mm.ms[key(prior)]--
		if mm.ms[key(prior)] == 0 {
			delete(mm.ms, key(prior))
		}
	}
	mm.ms[key(next)]++
	return next
}

type bf struct {
	n   float64
	one map[string]float64
	two map[[2]string]float64
	tri map[[3]string]float64
}

func bfCount(ms map[string]int, filter func([]string) bool) bf {
	b := bf{one: map[string]float64{}, two: map[[2]string]float64{}, tri: map[[3]string]float64{}}
	for k, c := range ms {
		ids := unkey(k)
		if filter != nil && !filter(ids) {
			continue
		}
		w := float64(c)
		b.n += w
		for i, x := range ids {
			b.one[x] += w
			for j := i + 1; j < len(ids); j++ {
				b.two[[2]string{x, ids[j]}] += w
				for _, z := range ids[j+1:] {
					b.tri[[3]string{x, ids[j], z}] += w
				}
			}
		}
	}
	return b
}

func srt(s ...string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func near2(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(a), math.Abs(b)) }

// compareAll compares every Rules of m with the brute-force counts over the
// baskets of the multiset (sampled ones: hash <= thr).
func compareAll(t *testing.T, m *Model, mm *msModel, sampled bool) {
	t.Helper()
	all := bfCount(mm.ms, nil)
	smp := all
	if sampled {
		thr := m.st.thr
		smp = bfCount(mm.ms, func(ids []string) bool { return hashIDs(ids) <= thr })
	}
	if st := m.Stats(); float64(st.Baskets) != all.n || float64(st.Sampled) != smp.n {
		t.Fatalf("baskets %d sampled %d, want %g %g", st.Baskets, st.Sampled, all.n, smp.n)
	}
	scale := 1.0
	if smp.n != all.n {
		scale = all.n / smp.n
	}
	items := slices.Sorted(maps.Keys(all.one))
	get2 := func(x, y string) float64 { s := srt(x, y); return smp.two[[2]string(s)] }
	get3 := func(x, y, z string) float64 { s := srt(x, y, z); return smp.tri[[3]string(s)] }
	check := func(ante []string, rs []Rule, anteN float64, cnt func(z string) float64) {
		want := 0
		for _, z := range items {
			if !slices.Contains(ante, z) && cnt(z) > 0 {
				want++
			}
		}
		if len(rs) != want {
			t.Fatalf("Rules(%v): %d rules, want %d: %v", ante, len(rs), want, rs)
		}
		for _, r := range rs {
			c := cnt(r.Then)
			conf := c / anteN
			lift := conf * all.n / all.one[r.Then]
			if !near2(r.Count, c*scale) || !near2(r.Confidence, conf) || !near2(r.Lift, lift) {
				t.Fatalf("Rules(%v): %v; want count %g conf %g lift %g", ante, r, c*scale, conf, lift)
			}
		}
	}
	for _, x := range items {
		check([]string{x}, m.Rules(x), smp.one[x], func(z string) float64 { return get2(x, z) })
		for _, y := range items {
			if y <= x || get2(x, y) == 0 {
				continue
			}
			check([]string{x, y}, m.Rules(y, x), get2(x, y), func(z string) float64 { return get3(x, y, z) })
		}
	}
}

func randItems(r *rand.Rand, nItems, k int) []string {
	var out []string
	for range k {
		switch r.IntN(12) {
		case 0:
			out = append(out, "")
		default:
			out = append(out, fmt.Sprintf("i%02d", int(float64(nItems)*r.Float64()*r.Float64())))
		}
	}
	if len(out) > 0 && r.IntN(4) == 0 {
		out = append(out, out[0]) // repeat
	}
	return out
}

func runModel(t *testing.T, seed uint64, cfg Config, sampled bool, stranger bool) {
	r := rand.New(rand.NewPCG(seed, 99))
	m := New(cfg)
	mm := &msModel{ms: map[string]int{}}
	nItems := 3 + r.IntN(15)
	var visitors [][]string
	for step := range 300 + r.IntN(500) {
		switch op := r.IntN(20); {
		case op < 6 || len(visitors) == 0: // new visitor
			add := randItems(r, nItems, r.IntN(4))
			m.Learn(Basket{}, Basket{Bought: add})
			visitors = append(visitors, mm.learn(nil, add))
		case op < 15: // existing visitor grows
			v := r.IntN(len(visitors))
			add := randItems(r, nItems, r.IntN(3))
			if r.IntN(5) == 0 { // retry: add ⊆ prior
				add = slices.Clone(visitors[v])
			}
			m.Learn(Basket{Bought: visitors[v]}, Basket{Bought: add})
			visitors[v] = mm.learn(visitors[v], add)
		case op < 16 && stranger: // prior never taught
			prior := randItems(r, nItems, 1+r.IntN(3))
			add := randItems(r, nItems, 1+r.IntN(2))
			m.Learn(Basket{Bought: prior}, Basket{Bought: add})
			visitors = append(visitors, mm.learn(prior, add))
		default: // queries
			x := fmt.Sprintf("i%02d", r.IntN(nItems))
			y := fmt.Sprintf("i%02d", r.IntN(nItems))
			m.Rules(x, y)
			m.Rules(x)
			m.Likelihood([]string{x, y, fmt.Sprintf("i%02d", r.IntN(nItems))}, y)
		}
		if step%50 == 0 {
			if err := CheckInvariants(m); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		}
	}
	if err := CheckInvariants(m); err != nil {
		t.Fatal(err)
	}
	compareAll(t, m, mm, sampled)
	if err := CheckInvariants(m); err != nil {
		t.Fatal(err)
	}
}

func TestModelExactVsBrute(t *testing.T) {
	for seed := range seeds(200) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			cfg := Config{MinSupport: -1, MinConfidence: -1, MinLift: -1, MaxItems: 1 << 20, MaxCache: 1 + int(seed%40)}
			runModel(t, seed, cfg, false, true)
		})
	}
}

func TestModelSampledVsBrute(t *testing.T) {
	for seed := range seeds(200) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			cfg := Config{MinSupport: -1, MinConfidence: -1, MinLift: -1, MaxItems: 1 << 20,
				MaxCache: 1 + int(seed%40), MaxSample: 20 + int(seed%60), MaxPairs: 10 + int(seed%50)}
			runModel(t, seed, cfg, true, false)
		})
	}
}

func TestModelPruneInvariants(t *testing.T)     { testPrune(t, false, false) }
func TestModelPruneStrangers(t *testing.T)      { testPrune(t, true, false) }
func TestModelPruneStrangersExact(t *testing.T) { testPrune(t, true, true) }
func testPrune(t *testing.T, strangers, exact bool) {
	for seed := range seeds(100) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 5))
			cfg := Config{MinSupport: -1, MinConfidence: -1, MinLift: -1, MaxItems: 4 + r.IntN(6),
				MaxCache: 1 + r.IntN(30), MaxSample: 10 + r.IntN(100), MaxPairs: 5 + r.IntN(100)}
			if exact {
				cfg.MaxSample, cfg.MaxPairs = 1<<30, 1<<30
			}
			m := New(cfg)
			var visitors [][]string
			for step := range 600 {
				if r.IntN(3) == 0 || len(visitors) == 0 {
					add := idsSet(randItems(r, 20, 1+r.IntN(4)))
					m.Learn(Basket{}, Basket{Bought: add})
					visitors = append(visitors, add)
				} else if strangers && r.IntN(4) == 0 {
					prior := idsSet(randItems(r, 20, 1+r.IntN(3)))
					m.Learn(Basket{Bought: prior}, Basket{Bought: randItems(r, 20, 2)})
				} else {
					v := r.IntN(len(visitors))
					add := randItems(r, 20, 1+r.IntN(3))
					m.Learn(Basket{Bought: visitors[v]}, Basket{Bought: add})
					visitors[v] = idsSet(append(visitors[v], add...))
				}
				if r.IntN(3) == 0 {
					m.SetCategory(fmt.Sprintf("i%02d", r.IntN(25)), fmt.Sprintf("c%d", r.IntN(3)))
				}
				if r.IntN(2) == 0 {
					x, y := fmt.Sprintf("i%02d", r.IntN(20)), fmt.Sprintf("i%02d", r.IntN(20))
					m.Rules(x, y)
					m.Likelihood([]string{x, y}, "i00")
				}
				if err := CheckInvariants(m); err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
			}
		})
	}
}

// seeds is n, or a tenth of it under -short.
func seeds(n uint64) uint64 {
	if testing.Short() {
		return n / 10
	}
	return n
}
