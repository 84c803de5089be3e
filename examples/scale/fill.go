package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tailorhq/tailor/examples/shop/site"
	"github.com/tailorhq/tailor/rules/experiment"
	"github.com/tailorhq/tailor/store"
)

// The shape of the synthetic traffic. Each visitor is drawn from its own
// random source (the seed and the visitor's number), so a run is the same
// whatever the number of workers.
const (
	minEvents, maxEvents = 30, 200 // events per visitor: a bounded Pareto, heavy-tailed
	eventsAlpha          = 1.2     // its shape: mean about 63, median 49, p99 about 187
	history              = 180 * 24 * time.Hour
	buyerShare           = 0.12 // visitors with at least one order
	identifiedBuyers     = 0.7  // buyers who sign in (checkout asks for an email)
	identifiedOthers     = 0.2  // other visitors who sign in
	exposureKey          = "promo-2026-11"
	experimentAge        = 21 * 24 * time.Hour // the experiment began this long ago
	fillProducer         = "scale-fill"        // the producer of the events' sequenced ids
)

// categoryWeights is how visitors' favourite categories are spread: some
// shelves are more popular than others.
var categoryWeights = []float64{0.30, 0.25, 0.20, 0.15, 0.10} // site.Categories, in order

// fillStats describes what fill wrote.
type fillStats struct {
	Visitors, Events                    int
	Buyers, Orders, Identified, Exposed int
	P50, P90, P99, Max                  int // events per visitor
	Took                                time.Duration
	Workers, Batch                      int
}

// fill writes n synthetic visitors (from seed) to st with store.ApplyBatch,
// batch visitors a call, from workers goroutines, and reports progress to
// progress every few seconds.
func fill(ctx context.Context, st store.Store, n, batch, workers int, seed uint64, now time.Time, progress io.Writer) (fillStats, error) {
	fs := fillStats{Visitors: n, Workers: workers, Batch: batch}
	perVisitor := make([]int, n)
	var buyers, orders, identified, exposed atomic.Int64
	var next, done atomic.Int64
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d := done.Load()
				fmt.Fprintf(progress, "scale: fill: %d of %d visitors, %.0f/s\n", d, n, float64(d)/time.Since(start).Seconds())
			}
		}
	}()
	for range workers {
		g.Go(func() error {
			bs := make([]store.Batch, 0, batch)
			for {
				from := int(next.Add(int64(batch))) - batch
				if from >= n {
					return nil
				}
				bs = bs[:0]
				for i := from; i < min(from+batch, n); i++ {
					v := newVisitor(seed, i, now)
					perVisitor[i] = len(v.events)
					if v.orders > 0 {
						buyers.Add(1)
						orders.Add(int64(v.orders))
					}
					if v.identified {
						identified.Add(1)
					}
					if v.exposed {
						exposed.Add(1)
					}
					bs = append(bs, store.Batch{ID: v.id, Events: v.events})
				}
				if _, err := store.ApplyBatch(gctx, st, bs); err != nil {
					return fmt.Errorf("fill: visitors %d to %d: %w", from, from+len(bs)-1, err)
				}
				done.Add(int64(len(bs)))
			}
		})
	}
	err := g.Wait()
	close(stop)
	if err != nil {
		return fs, err
	}
	fs.Took = time.Since(start)
	fs.Buyers, fs.Orders = int(buyers.Load()), int(orders.Load())
	fs.Identified, fs.Exposed = int(identified.Load()), int(exposed.Load())
	for _, k := range perVisitor {
		fs.Events += k
	}
	slices.Sort(perVisitor)
	if n > 0 {
		fs.P50, fs.P90, fs.P99, fs.Max = perVisitor[n/2], perVisitor[n*9/10], perVisitor[n*99/100], perVisitor[n-1]
	}
	return fs, nil
}

// visitor is one synthetic visitor and its events, oldest first.
type visitor struct {
	id         string
	events     []store.Event
	orders     int
	identified bool
	exposed    bool
}

// newVisitor draws visitor i of seed:
//
//   - 30 to 200 events (eventsAlpha), in visits of a few to a few dozen
//     events, 5 s to 2 min apart; the visits fall at random in the
//     visitor's lifetime (exponential, mean 20 days), which began at
//     random in the last 180 days, so some visitors are long gone;
//   - one device (mobile 55%, desktop 40%, tablet 5%); each visit comes
//     from a search engine, the newsletter, a social site or directly;
//   - page views of the shop's paths: product pages (most of them, 70% in
//     the visitor's favourite category, the others anywhere), the home
//     page, the catalogue and the cart; an add_to_cart after some product
//     views;
//   - buyerShare of visitors place 1 to 5 orders (mostly one) of 1 to 4
//     products, each a product view and an add_to_cart per item, the cart,
//     the purchase and the home page's thanks;
//   - identified visitors (most buyers, a fifth of the others) sign in
//     once: an identify event with the user id and traits (email, plan,
//     crm_stage);
//   - visitors who view the home page since the promo experiment of the
//     shop's slots.json began (experimentAge ago) are exposed to it once,
//     50/50: an experiment_exposure event whose trait the store counts.
func newVisitor(seed uint64, i int, now time.Time) visitor {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	v := visitor{id: fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())}
	n := boundedPareto(r, minEvents, maxEvents, eventsAlpha)
	device := pick(r, []string{"mobile", "desktop", "tablet"}, []float64{0.55, 0.40, 0.05})
	fav := site.Categories[pickIndex(r, categoryWeights)].ID
	buyer := r.Float64() < buyerShare
	signs := r.Float64() < identifiedOthers
	if buyer {
		signs = r.Float64() < identifiedBuyers
	}

	// Visits: split n events at random points, each visit at least one.
	visits := max(1, min(n, n/(4+r.IntN(12))))
	cuts := []int{0, n}
	for len(cuts) < visits+1 {
		c := 1 + r.IntN(n-1)
		if !slices.Contains(cuts, c) {
			cuts = append(cuts, c)
		}
	}
	slices.Sort(cuts)
	first := now.Add(-time.Duration(r.Float64() * float64(history)))
	life := time.Duration(r.ExpFloat64() * float64(20*24*time.Hour))
	life = min(life, now.Sub(first))
	starts := make([]time.Time, visits)
	starts[0] = first
	for k := 1; k < visits; k++ {
		starts[k] = first.Add(time.Duration(r.Float64() * float64(life)))
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })

	// Orders, in visits drawn at random.
	orderIn := map[int]int{}
	if buyer {
		v.orders = 1
		for v.orders < 5 && r.Float64() < 0.35 {
			v.orders++
		}
		for range v.orders {
			orderIn[r.IntN(visits)]++
		}
	}
	signIn := -1
	if signs {
		signIn = r.IntN(visits)
		for k := range orderIn { // before the first order: checkout asks for the email
			signIn = min(signIn, k)
		}
	}

	var (
		seq       uint64
		t         time.Time
		purchases int
		evs       = make([]store.Event, 0, n+8)
	)
	// add appends an event, unless the visitor has maxEvents already.
	add := func(e store.Event) bool {
		if len(evs) >= maxEvents {
			return false
		}
		seq++
		e.ID, e.Time, e.Device = store.EventID(fillProducer, seq), t.UTC(), device
		evs = append(evs, e)
		t = t.Add(time.Duration(5+r.IntN(115)) * time.Second)
		return true
	}
	view := func(p site.Product) {
		add(store.Event{Type: store.TypePage, Path: "/products/" + p.ID, Category: p.Category, Item: p.ID})
	}
	// expose records the exposure to the experiment at the visitor's first
	// home page view since the experiment began (not their very first
	// request, which the shop does not record), as the promo slot does.
	expose := func(k int) {
		if v.exposed || len(evs) < 2 || len(evs) >= maxEvents || t.Before(now.Add(-experimentAge)) {
			return
		}
		variant, seg := "free-shipping", "returning"
		if r.IntN(2) == 1 {
			variant = "ten-percent"
		}
		if k == 0 {
			seg = "$other" // the experiment's breakdown is by the segment returning
		}
		props, _ := json.Marshal(map[string]string{"experiment": exposureKey, "variant": variant, "segment": seg})
		traits, _ := json.Marshal(map[string]any{"experiment:" + exposureKey: map[string]any{
			"variant": variant, "segment": seg, "goals": map[string]int{store.EventPurchase: purchases}}})
		v.exposed = add(store.Event{Type: store.TypeTrack, Name: experiment.ExposureEvent, Props: props, Traits: traits})
	}
	home := func(k int) {
		add(store.Event{Type: store.TypePage, Path: "/"})
		expose(k)
	}
	product := func() site.Product {
		if r.Float64() < 0.7 {
			in := site.InCategory(fav)
			return in[r.IntN(len(in))]
		}
		return site.Products[r.IntN(len(site.Products))]
	}

	for k := range visits {
		end := cuts[k+1]
		if t.IsZero() || starts[k].After(t.Add(31*time.Minute)) {
			t = starts[k]
		} else {
			t = t.Add(31 * time.Minute) // a visit ends after 30 minutes without a request
		}
		// The landing page, with where the visit came from.
		land := store.Event{Type: store.TypePage, NewVisit: true}
		switch x := r.Float64(); {
		case x < 0.30:
			land.Referrer, land.Source, land.Medium = "www.google.com", "google", "organic"
		case x < 0.45:
			land.Source, land.Medium, land.Campaign = "newsletter", "email", "winter-2026"
		case x < 0.55:
			land.Referrer, land.Source, land.Medium = "l.facebook.com", "facebook", "social"
		}
		switch x := r.Float64(); {
		case x < 0.40:
			land.Path = "/"
		case x < 0.85:
			p := product()
			land.Path, land.Category, land.Item = "/products/"+p.ID, p.Category, p.ID
		default:
			land.Path = "/products"
		}
		add(land)
		if land.Path == "/" {
			expose(k)
		}
		if k == signIn {
			email := fmt.Sprintf("visitor%d@example.com", i)
			traits, _ := json.Marshal(map[string]string{"email": email,
				"plan":      pick(r, []string{"free", "pro"}, []float64{0.8, 0.2}),
				"crm_stage": pick(r, []string{"lead", "opportunity", "customer"}, []float64{0.6, 0.25, 0.15})})
			v.identified = add(store.Event{Type: store.TypeIdentify, UserID: email, Traits: traits})
		}
		for o := orderIn[k]; len(evs) < end || o > 0; {
			if o > 0 && (r.Float64() < 0.3 || len(evs) >= end) {
				// An order: its products viewed and carted, the cart, the
				// purchase, the home page's thanks.
				o--
				items := 1 + pickIndex(r, []float64{0.5, 0.3, 0.15, 0.05})
				if len(evs)+2*items+3 > maxEvents {
					continue // no room left: the order is not placed
				}
				var lines []store.Item
				for range items {
					p := product()
					view(p)
					add(store.Event{Type: store.TypeTrack, Name: "add_to_cart", Item: p.ID, Category: p.Category})
					lines = append(lines, store.Item{ID: p.ID, Category: p.Category, Price: p.Price, Quantity: 1})
				}
				add(store.Event{Type: store.TypePage, Path: "/cart"})
				add(store.Event{Type: store.TypeTrack, Name: store.EventPurchase, Items: lines})
				purchases++
				home(k)
				continue
			}
			if len(evs) >= end {
				break
			}
			switch x := r.Float64(); {
			case x < 0.62:
				p := product()
				view(p)
				if r.Float64() < 0.08 && len(evs) < end {
					add(store.Event{Type: store.TypeTrack, Name: "add_to_cart", Item: p.ID, Category: p.Category})
				}
			case x < 0.80:
				home(k)
			case x < 0.94:
				add(store.Event{Type: store.TypePage, Path: "/products"})
			default:
				add(store.Event{Type: store.TypePage, Path: "/cart"})
			}
		}
	}
	v.orders = purchases
	// A lifetime that ran past now is moved back.
	if late := evs[len(evs)-1].Time.Sub(now); late > 0 {
		for k := range evs {
			evs[k].Time = evs[k].Time.Add(-late)
		}
	}
	v.events = evs
	return v
}

// boundedPareto draws an integer in [lo, hi] from a Pareto distribution of
// shape alpha bounded to that range.
func boundedPareto(r *rand.Rand, lo, hi int, alpha float64) int {
	l, h := float64(lo), float64(hi)
	x := l / math.Pow(1-r.Float64()*(1-math.Pow(l/h, alpha)), 1/alpha)
	return min(hi, max(lo, int(x)))
}

// pickIndex draws an index of weights, which sum to 1.
func pickIndex(r *rand.Rand, weights []float64) int {
	x := r.Float64()
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

func pick(r *rand.Rand, xs []string, weights []float64) string { return xs[pickIndex(r, weights)] }
