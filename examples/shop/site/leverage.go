package site

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/rules/assoc"
	"github.com/tailorhq/tailor/store"
)

// The shop learns what goes together from the orders of every instance
// (rules/assoc): the store journals each purchase with the profile's
// earlier ones, in the same write (store.Journal), and every instance's
// model follows that journal, starting from the snapshot that one
// instance keeps in the store. A new instance starts warm, without reading
// a profile, and learns a purchase made anywhere within a second of its
// write.

// demoBaskets is how many made-up customers the demo model starts with, so
// that a fresh shop already has something to recommend. Their baskets are
// learnt by the model only, never stored as visitors; they go into the
// model's snapshots like the real ones.
const demoBaskets = 500

// newModel returns the shop's model, following the store's journal; over
// a store that keeps none (a store of your own), it is learnt once from
// every stored profile, and its follower is nil.
func newModel(ctx context.Context, st store.Store, demo bool, engine *rules.Engine, log *slog.Logger) (*assoc.Model, *assoc.Follower, error) {
	m := assoc.New(assoc.DefaultConfig)
	var f *assoc.Follower
	if _, ok := st.(store.Journal); ok {
		// The likelyToBuy rules consult the model: what it learns may
		// change the segments of visitors who did nothing.
		cfg := assoc.FollowConfig{Store: st, Logger: log, Learnt: func(int) { engine.Invalidate() }}
		if demo {
			cfg.Seed = learnDemo
		}
		var err error
		if f, err = assoc.Follow(ctx, m, cfg); err != nil {
			return nil, nil, err
		}
	} else {
		if r, ok := st.(store.Ranger); ok {
			if _, err := m.Rebuild(ctx, r); err != nil {
				return nil, nil, err
			}
		}
		if demo {
			learnDemo(m)
		}
	}
	for _, p := range Products {
		m.SetCategory(p.ID, p.Category)
	}
	return m, f, nil
}

// closeFollower stops f, if any.
func closeFollower(f *assoc.Follower) error {
	if f == nil {
		return nil
	}
	return f.Close()
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
	// Read in place: a copy of the profile, with its recent events, would
	// cost more than the recommendation. Only the parts the model reads:
	// page views without a product (the home page) are left aside.
	m := s.model.Load()
	middleware.FromContext(r.Context()).ReadProfileParts(m.Touches(), func(p *store.Profile) {
		if p == nil {
			p = store.New("anonymous")
		}
		recs = m.Recommend(p, n)
	})
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
