package site

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules/assoc"
	"github.com/tailorhq/tailor/store"
)

// The shop learns what goes together from every visitor's basket
// (rules/assoc). At start it rebuilds the model from the stored profiles,
// then learns online, and rebuilds every rebuildEvery so that several
// instances sharing a store converge on the same rules.
const rebuildEvery = 10 * time.Minute

// demoBaskets is how many made-up customers the demo model starts with, so
// that a fresh shop already has something to recommend. Their baskets are
// learnt by the model only, never stored as visitors.
const demoBaskets = 500

func newModel(ctx context.Context, st store.Store, demo bool) (*assoc.Model, error) {
	m := assoc.New(assoc.DefaultConfig)
	for _, p := range Products {
		m.SetCategory(p.ID, p.Category)
	}
	if r, ok := st.(store.Ranger); ok {
		if _, err := m.Rebuild(ctx, r); err != nil {
			return nil, err
		}
	}
	if demo {
		learnDemo(m)
	}
	return m, nil
}

// learnDemo learns made-up baskets, among them the seed story: 80% of the
// buyers of Moneyball and a Red Sox banner also bought the Red Sox Mr.
// Potato Head.
func learnDemo(m *assoc.Model) {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(ids ...string) string { return ids[r.IntN(len(ids))] }
	for i := range demoBaskets {
		var b []string
		switch i % 5 {
		case 0, 1:
			b = []string{"moneyball", "red-sox-banner"}
			if r.Float64() < 0.8 {
				b = append(b, "red-sox-potato-head")
			}
		case 2:
			b = []string{"american-beauty", pick("workingmans-dead", "europe-72")}
		case 3:
			b = []string{pick("mount-hood-watercolours", "hawaii-watercolours"), pick("sable-brushes", "watercolour-basics")}
		default:
			b = []string{pick("wool-beanie", "thermal-gloves"), pick("snowshoes", "thermal-gloves", "the-teammates")}
		}
		m.Learn(assoc.Basket{}, assoc.Basket{Bought: b})
	}
}

// rebuild refreshes the model from the store every rebuildEvery until ctx
// is done.
func (s *Site) rebuild(ctx context.Context, st store.Store) {
	t := time.NewTicker(rebuildEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m, err := newModel(ctx, st, s.demo); err == nil {
			s.model.Store(m)
		} else if ctx.Err() == nil {
			s.log.Warn("shop: rebuilding the recommendation model failed", "err", err)
		}
	}
}

// learn teaches the model what a visitor adds to their basket.
func (s *Site) learn(v *middleware.Visitor, add assoc.Basket) {
	if !v.Tracked() {
		return
	}
	m := s.model.Load()
	var prior assoc.Basket
	prior = m.BasketOf(v.Profile())
	m.Learn(prior, add)
}

// alsoBought returns the items bought together with item, best first.
func (s *Site) alsoBought(item string, n int) []Product {
	var out []Product
	for _, r := range s.model.Load().Rules(item) {
		if p := ProductByID(r.Then); p != nil && len(out) < n {
			out = append(out, *p)
		}
	}
	return out
}

// recommended is what the home page recommends to the visitor of r.
type recommended struct {
	Product
	Reason string
}

func (s *Site) recommend(r *http.Request, n int) []recommended {
	var recs []assoc.Recommendation
	p := middleware.FromContext(r.Context()).Profile()
	if p == nil {
		p = store.New("anonymous")
	}
	recs = s.model.Load().Recommend(p, n)
	var out []recommended
	for _, rec := range recs {
		if pr := ProductByID(rec.Item); pr != nil {
			out = append(out, recommended{*pr, reasonText(rec)})
		}
	}
	return out
}

func reasonText(rec assoc.Recommendation) string {
	if rec.Rule == nil {
		if rec.Category != "" {
			return "Popular in " + CategoryName(rec.Category)
		}
		return "Popular"
	}
	names := make([]string, len(rec.Rule.If))
	for i, id := range rec.Rule.If {
		names[i] = id
		if p := ProductByID(id); p != nil {
			names[i] = p.Name
		}
	}
	return "Bought together with " + strings.Join(names, " and ")
}

// ids joins the products' ids for data-variant.
func ids[T interface{ id() string }](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = x.id()
	}
	return strings.Join(s, ",")
}

func (p Product) id() string { return p.ID }
