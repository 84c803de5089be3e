package assoc

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

// TestModelStress runs learning, queries, snapshots and reading a model
// back from its own snapshot at once, with bounds small enough that the
// cache evicts, the sample halves and items are pruned, then checks the
// invariants (run with -race).
func TestModelStress(t *testing.T) {
	for _, cfg := range []Config{
		{MinSupport: -1, MinConfidence: -1, MinLift: -1, MaxCache: 60, MaxItems: 1 << 20},
		{MinSupport: -1, MinConfidence: -1, MinLift: -1, MaxCache: 40, MaxSample: 200, MaxPairs: 150, MaxItems: 1 << 20},
		{MinSupport: -1, MinConfidence: -1, MinLift: -1, MaxCache: 4, MaxSample: 300, MaxPairs: 200, MaxItems: 12},
	} {
		t.Run(fmt.Sprint(cfg.MaxSample, cfg.MaxItems), func(t *testing.T) { stress(t, cfg) })
	}
}

func stress(t *testing.T, cfg Config) {
	m := New(cfg)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var errs sync.Map
	nItems := 30
	id := func(r *rand.Rand) string { return fmt.Sprintf("i%02d", int(float64(nItems)*r.Float64()*r.Float64())) }
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			var vis [][]string
			for !stop.Load() {
				if len(vis) == 0 || r.IntN(3) == 0 {
					add := idsSet([]string{id(r), id(r), id(r)}[:1+r.IntN(3)])
					m.Learn(Basket{}, Basket{Bought: add})
					vis = append(vis, add)
				} else {
					v := r.IntN(len(vis))
					add := []string{id(r)}
					m.Learn(Basket{Bought: vis[v]}, Basket{Bought: add})
					vis[v] = idsSet(append(vis[v], add...))
				}
				if r.IntN(10) == 0 {
					m.SetCategory(id(r), fmt.Sprintf("c%d", r.IntN(4)))
				}
			}
		}()
	}
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for !stop.Load() {
				switch r.IntN(5) {
				case 0:
					p := store.New("v")
					for range 1 + r.IntN(8) {
						p.Apply(store.Limits{}, store.Event{Type: store.TypeTrack, Name: store.EventPurchase, Items: []store.Item{{ID: id(r)}}, Time: time.Now()})
					}
					for range r.IntN(5) {
						p.Apply(store.Limits{}, store.Event{Type: store.TypeTrack, Name: "add_to_cart", Item: id(r), Time: time.Now()})
						p.Apply(store.Limits{}, store.Event{Type: store.TypePage, Path: "/x", Item: id(r), Time: time.Now()})
					}
					n := 1 + r.IntN(12)
					recs := m.Recommend(p, n)
					seen := map[string]bool{}
					if len(recs) > n {
						errs.Store(fmt.Sprintf("%d recs for n=%d", len(recs), n), true)
					}
					for _, rec := range recs {
						if p.Purchases.Items[rec.Item] > 0 {
							errs.Store("recommended a bought item "+rec.Item, true)
						}
						if seen[rec.Item] {
							errs.Store("duplicate "+rec.Item, true)
						}
						seen[rec.Item] = true
					}
				case 1:
					m.Rules(id(r), id(r))
					m.Rules(id(r))
				case 2:
					m.Likelihood([]string{id(r), id(r), id(r), id(r)}, id(r))
				case 3:
					m.Stats()
				case 4:
					m.WriteTo(io.Discard)
				}
			}
		}()
	}
	// occasionally replace the model from its own snapshot
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			time.Sleep(400 * time.Millisecond)
			if stop.Load() {
				return
			}
			var b bytes.Buffer
			m.WriteTo(&b)
			if _, err := m.ReadFrom(&b); err != nil {
				errs.Store("readfrom "+err.Error(), true)
			}
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	errs.Range(func(k, _ any) bool { t.Error(k); return true })
	if err := CheckInvariants(m); err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v halvings %d", m.Stats(), m.st.halvings)
}
