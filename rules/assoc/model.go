package assoc

import (
	"context"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/tailorhq/tailor/store"
)

// Config configures a Model. The zero value of every field means its
// default; the defaults are in DefaultConfig.
type Config struct {
	// MinSupport is the smallest count a rule needs: the (weighted) number
	// of visitors whose basket holds all of the rule's items. Zero means 3; a
	// negative value means no minimum.
	MinSupport float64
	// MinConfidence is the smallest confidence a rule needs. Zero means 0.1;
	// a negative value means no minimum.
	MinConfidence float64
	// MinLift is the smallest lift a rule needs. Zero means 1.1: the
	// consequent must be at least 10% more likely with the antecedent than
	// overall, which keeps items that everyone buys anyway from topping
	// every list. A negative value means no minimum.
	MinLift float64
	// TopK is the number of consequents counted per antecedent (per item,
	// and per pair of items). Zero means 20.
	TopK int
	// MaxItems is the number of distinct items counted. Zero means 100,000.
	MaxItems int
	// MaxPairs is the number of item pairs counted as two-item antecedents.
	// Zero means 250,000.
	MaxPairs int
	// MaxBasket is the number of items of one visitor's basket that are
	// combined into pairs and triples; further items count for popularity
	// only. Zero means 32.
	MaxBasket int
	// ViewWeight is what viewing an item counts for, buying it counting 1.
	// Zero means 0.125; a negative value means views are not learnt; values
	// above 1 count as 1. Weights are rounded to a multiple of 1/1024, so
	// that counts are exact sums that do not depend on the order of
	// learning.
	ViewWeight float64
	// CartWeight is what putting an item in the cart counts for. Zero means
	// 0.25; a negative value means cart adds are not learnt; values above 1
	// count as 1. It is rounded like ViewWeight.
	CartWeight float64
	// CartEvents are the names of the track events that put items in the
	// cart (the event's Item, and the IDs of its Items). Nil means
	// "add_to_cart" and "Product Added" (the Segment e-commerce name).
	CartEvents []string
}

// DefaultConfig holds the values used for the zero fields of a Config.
var DefaultConfig = Config{
	MinSupport:    3,
	MinConfidence: 0.1,
	MinLift:       1.1,
	TopK:          20,
	MaxItems:      100_000,
	MaxPairs:      250_000,
	MaxBasket:     32,
	ViewWeight:    0.125,
	CartWeight:    0.25,
	CartEvents:    []string{"add_to_cart", "Product Added"},
}

// weightUnit is the inverse of the unit weights are rounded to.
const weightUnit = 1024

// config is a Config with its defaults applied.
type config struct {
	minSupport, minConfidence, minLift  float64
	topK, maxItems, maxPairs, maxBasket int
	viewW, cartW                        float64
	cartEvents                          []string
}

func (c Config) normalize() config {
	threshold := func(v, def float64) float64 {
		switch {
		case v == 0 || math.IsNaN(v):
			return def
		case v < 0:
			return 0
		}
		return v
	}
	weight := func(v, def float64) float64 {
		switch {
		case v == 0 || math.IsNaN(v):
			v = def
		case v < 0:
			return 0
		}
		// A multiple of 1/1024 is exact in binary: sums of weights do not
		// depend on the order they are added in.
		return min(max(math.Round(v*weightUnit), 1)/weightUnit, 1)
	}
	size := func(v, def int) int {
		if v <= 0 {
			return def
		}
		return v
	}
	d := DefaultConfig
	n := config{
		minSupport:    threshold(c.MinSupport, d.MinSupport),
		minConfidence: threshold(c.MinConfidence, d.MinConfidence),
		minLift:       threshold(c.MinLift, d.MinLift),
		topK:          size(c.TopK, d.TopK),
		maxItems:      size(c.MaxItems, d.MaxItems),
		maxPairs:      size(c.MaxPairs, d.MaxPairs),
		maxBasket:     size(c.MaxBasket, d.MaxBasket),
		viewW:         weight(c.ViewWeight, d.ViewWeight),
		cartW:         weight(c.CartWeight, d.CartWeight),
		cartEvents:    slices.Clone(c.CartEvents),
	}
	if n.cartEvents == nil {
		n.cartEvents = slices.Clone(d.CartEvents)
	}
	n.maxItems = max(n.maxItems, 4)
	n.maxPairs = max(n.maxPairs, 4)
	n.maxBasket = max(n.maxBasket, 2)
	return n
}

func (c *config) passes(count, conf, lift float64) bool {
	return count >= c.minSupport && conf >= c.minConfidence && lift >= c.minLift
}

func (c *config) isCart(name string) bool { return slices.Contains(c.cartEvents, name) }

// A Model learns association rules between items from visitors' baskets.
// It is safe for concurrent use: learning takes a write lock for a few
// microseconds (a few milliseconds when it prunes), queries share a read
// lock.
type Model struct {
	c       config
	mu      sync.RWMutex
	st      *state
	scratch sync.Pool // *scratch
}

// New returns an empty model.
func New(cfg Config) *Model {
	m := &Model{c: cfg.normalize()}
	m.st = newState(&m.c)
	m.scratch.New = func() any { return new(scratch) }
	return m
}

// A Basket is one visitor's items: what the visitor bought, put in the cart
// and viewed. An item listed under several signals counts with the
// strongest.
type Basket struct {
	Bought []string `json:"bought,omitempty"`
	Carted []string `json:"carted,omitempty"`
	Viewed []string `json:"viewed,omitempty"`
}

// Learn learns that a visitor whose basket was prior added the items of
// add: every item of add that is new to the basket, or comes with a
// stronger signal (bought after viewed), is learnt. Items already in prior
// with the same signal are not counted again, so that every count is a
// number of visitors, not of orders.
//
// prior must be what the model was taught about this visitor before
// (empty for a new visitor); see LearnEvent to take it from a profile.
func (m *Model) Learn(prior, add Basket) {
	pr := dedupe(m.weighted(nil, prior))
	ad := dedupe(m.weighted(nil, add))
	in := &input{}
	for i := range ad {
		if j, ok := slices.BinarySearchFunc(pr, ad[i].id, func(x wid, id string) int { return strings.Compare(x.id, id) }); ok {
			ad[i].prior = pr[j].w
		}
	}
	for _, x := range pr {
		in.maxPrior = max(in.maxPrior, x.w)
	}
	in.prior, in.add = byWeight(pr), byWeight(ad)
	m.learn(in)
}

func (m *Model) learn(in *input) {
	learns := slices.ContainsFunc(in.add, func(x wid) bool { return x.w > x.prior })
	if !learns && len(in.cats) == 0 {
		return
	}
	if !learns && m.categorised(in.cats) {
		return
	}
	m.mu.Lock()
	m.st.learn(in)
	m.mu.Unlock()
}

// categorised reports whether every item of cats has a category already.
func (m *Model) categorised(cats [][2]string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, ic := range cats {
		if idx, ok := m.st.index[ic[0]]; ic[0] != "" && ic[1] != "" && (!ok || m.st.cat[idx] < 0) {
			return false
		}
	}
	return true
}

// weighted appends b's items with their weights to dst.
func (m *Model) weighted(dst []wid, b Basket) []wid {
	add := func(ids []string, w float64) {
		if w <= 0 {
			return
		}
		for _, id := range ids {
			if id != "" {
				dst = append(dst, wid{id: id, w: w})
			}
		}
	}
	add(b.Bought, 1)
	add(b.Carted, m.c.cartW)
	add(b.Viewed, m.c.viewW)
	return dst
}

// dedupe sorts ws by id and keeps the heaviest of each id.
func dedupe(ws []wid) []wid {
	slices.SortFunc(ws, func(a, b wid) int {
		if c := strings.Compare(a.id, b.id); c != 0 {
			return c
		}
		return -cmpFloat(a.w, b.w)
	})
	return slices.CompactFunc(ws, func(a, b wid) bool { return a.id == b.id })
}

// byWeight sorts ws by weight, heaviest first, then by id.
func byWeight(ws []wid) []wid {
	slices.SortFunc(ws, func(a, b wid) int {
		if c := cmpFloat(a.w, b.w); c != 0 {
			return -c
		}
		return strings.Compare(a.id, b.id)
	})
	return ws
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// LearnEvent learns what event e adds to the basket of the visitor whose
// profile, before e was applied, is prior (nil for a new visitor): a
// purchase's Items, a cart add's Item or Items (see Config.CartEvents), a
// page view's Item. Other events are ignored, and so is an event that prior
// has already applied, so calling LearnEvent for a retried event is
// harmless. Item categories are learnt from the purchase and cart items'
// Category fields and from the page's Category.
func (m *Model) LearnEvent(prior *store.Profile, e *store.Event) {
	if e == nil || prior != nil && e.ID != "" && prior.Applied.Has(e.ID) {
		return
	}
	var w float64
	var ad []wid
	var cats [][2]string
	items := func() {
		if e.Item != "" {
			ad = append(ad, wid{id: e.Item, w: w})
		}
		for _, it := range e.Items {
			if it.ID == "" {
				continue
			}
			ad = append(ad, wid{id: it.ID, w: w})
			if it.Category != "" {
				cats = append(cats, [2]string{it.ID, it.Category})
			}
		}
	}
	switch {
	case e.Type == store.TypeTrack && e.Name == store.EventPurchase:
		w = 1
		items()
	case e.Type == store.TypeTrack && m.c.isCart(e.Name):
		w = m.c.cartW
		items()
	case e.Type == store.TypePage && e.Item != "":
		w = m.c.viewW
		ad = append(ad, wid{id: e.Item, w: w})
		if e.Category != "" {
			cats = append(cats, [2]string{e.Item, e.Category})
		}
	}
	if w <= 0 { // the signal is not learnt, but categories are
		ad = nil
	}
	if len(ad) == 0 && len(cats) == 0 {
		return
	}
	ad = dedupe(ad)
	learns := false
	for i := range ad {
		ad[i].prior = m.weightIn(prior, ad[i].id)
		learns = learns || ad[i].w > ad[i].prior
	}
	in := &input{add: byWeight(ad), cats: cats}
	if learns {
		in.prior, in.maxPrior = m.profileItems(prior)
	}
	m.learn(in)
}

// LearnProfile learns the whole basket of the visitor of profile p, as if
// the visitor were new: see the package documentation on rebuilds. It also
// learns item categories from the events in p.Recent.
func (m *Model) LearnProfile(p *store.Profile) {
	m.learn(m.profileInput(p))
}

func (m *Model) profileInput(p *store.Profile) *input {
	items, _ := m.profileItems(p)
	return &input{add: items, cats: categoriesOf(p)}
}

// Rebuild replaces everything the model learnt with what it learns from
// every profile of r, with LearnProfile. The model answers queries from its
// old counts until the rebuild is complete; what is learnt online during the
// rebuild is lost when it completes (the next rebuild finds it in the
// store). On error, including ctx's, the model is left unchanged. Rebuild
// returns the number of profiles learnt.
func (m *Model) Rebuild(ctx context.Context, r store.Ranger) (int, error) {
	st := newState(&m.c)
	n := 0
	err := r.Range(ctx, func(p *store.Profile) bool {
		st.learn(m.profileInput(p))
		n++
		return ctx.Err() == nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return n, err
	}
	m.mu.Lock()
	m.st = st
	m.mu.Unlock()
	return n, nil
}

// SetCategory sets the category of item, which Recommend's fallback to
// popular items uses, unless the item has one already (the first category
// seen for an item stays). An item the model does not know yet is added
// with a count of 0. Items are usually categorised by LearnEvent.
func (m *Model) SetCategory(item, category string) {
	m.learn(&input{cats: [][2]string{{item, category}}})
}

// BasketOf returns the basket of the visitor of profile p: the items of
// p.Purchases.Items, the items of the cart events still in p.Recent, and the
// items of p.Views, each list sorted.
func (m *Model) BasketOf(p *store.Profile) Basket {
	var b Basket
	if p == nil {
		return b
	}
	for id, n := range p.Purchases.Items {
		if n > 0 {
			b.Bought = append(b.Bought, id)
		}
	}
	b.Carted = m.carted(nil, p)
	for id, n := range p.Views {
		if n > 0 {
			b.Viewed = append(b.Viewed, id)
		}
	}
	slices.Sort(b.Bought)
	slices.Sort(b.Carted)
	b.Carted = slices.Compact(b.Carted)
	slices.Sort(b.Viewed)
	return b
}

// carted appends to dst the items of p's cart events in p.Recent, newest
// first (with repetitions).
func (m *Model) carted(dst []string, p *store.Profile) []string {
	for i := p.Recent.Len() - 1; i >= 0; i-- {
		e := p.Recent.At(i)
		if e.Type != store.TypeTrack || !m.c.isCart(e.Name) {
			continue
		}
		if e.Item != "" {
			dst = append(dst, e.Item)
		}
		for _, it := range e.Items {
			if it.ID != "" {
				dst = append(dst, it.ID)
			}
		}
	}
	return dst
}

// weightIn returns the weight of item in the basket of p.
func (m *Model) weightIn(p *store.Profile, item string) float64 {
	if p == nil {
		return 0
	}
	if p.Purchases.Items[item] > 0 {
		return 1
	}
	w := 0.0
	if p.Views[item] > 0 {
		w = m.c.viewW
	}
	if m.c.cartW > w {
		for i := p.Recent.Len() - 1; i >= 0; i-- {
			e := p.Recent.At(i)
			if e.Type == store.TypeTrack && m.c.isCart(e.Name) &&
				(e.Item == item || slices.ContainsFunc(e.Items, func(it store.Item) bool { return it.ID == item })) {
				return m.c.cartW
			}
		}
	}
	return w
}

// profileItems returns the weighted basket of p sorted by weight, heaviest
// first, then by id, and its largest weight.
func (m *Model) profileItems(p *store.Profile) ([]wid, float64) {
	if p == nil {
		return nil, 0
	}
	ws := m.weighted(nil, m.BasketOf(p))
	ws = dedupe(ws)
	mx := 0.0
	for _, x := range ws {
		mx = max(mx, x.w)
	}
	return byWeight(ws), mx
}

// categoriesOf returns the item categories named by the events in p.Recent,
// oldest first.
func categoriesOf(p *store.Profile) [][2]string {
	if p == nil {
		return nil
	}
	var cats [][2]string
	for i := range p.Recent.Len() {
		e := p.Recent.At(i)
		if e.Item != "" && e.Category != "" && e.Type == store.TypePage {
			cats = append(cats, [2]string{e.Item, e.Category})
		}
		for _, it := range e.Items {
			if it.ID != "" && it.Category != "" {
				cats = append(cats, [2]string{it.ID, it.Category})
			}
		}
	}
	return cats
}

// Stats describe a model's size and what its bounds dropped.
type Stats struct {
	// Baskets is the weighted number of visitor baskets learnt.
	Baskets float64 `json:"baskets"`
	// Items, Categories and Pairs are the numbers of items, categories and
	// two-item antecedents counted.
	Items      int `json:"items"`
	Categories int `json:"categories"`
	Pairs      int `json:"pairs"`
	// Consequents is the number of consequent counts over all antecedents.
	Consequents int `json:"consequents"`
	// Bytes estimates the memory the counts take.
	Bytes int64 `json:"bytes"`
	// PrunedItems and PrunedPairs count the items and pairs dropped at
	// MaxItems and MaxPairs.
	PrunedItems uint64 `json:"prunedItems"`
	PrunedPairs uint64 `json:"prunedPairs"`
	// Evicted counts the consequents that replaced another in a full list of
	// TopK.
	Evicted uint64 `json:"evicted"`
	// Truncated counts items that did not join a basket of MaxBasket items.
	Truncated uint64 `json:"truncated"`
}

// Stats returns the model's statistics. It visits every count: call it for
// monitoring, not per request.
func (m *Model) Stats() Stats {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.st
	st := Stats{
		Baskets:     s.baskets,
		Items:       len(s.index),
		Categories:  len(s.cats),
		Pairs:       s.pairs.n,
		PrunedItems: s.prunedItems,
		PrunedPairs: s.prunedPairs,
		Evicted:     s.evicted,
		Truncated:   s.truncated,
	}
	const (
		entryBytes = 16
		sliceBytes = 24
		// A map slot: the key and value, and the control byte and slack of a
		// Swiss table at 7/8 load.
		itemSlot = (16 + 4 + 1) * 8 / 7
		pairSlot = 8 + 8 + sliceBytes
	)
	b := int64(len(s.ids)) * (16 + 8 + 4 + sliceBytes + itemSlot)
	for idx, id := range s.ids {
		b += int64(len(id)) + int64(cap(s.adj[idx]))*entryBytes
		st.Consequents += len(s.adj[idx])
	}
	b += int64(len(s.pairs.slots)) * pairSlot
	for i := range s.pairs.slots {
		p := &s.pairs.slots[i]
		st.Consequents += len(p.cons)
		b += int64(cap(p.cons)) * entryBytes
	}
	b += int64(len(s.cats)+1) * popLen * 4
	st.Bytes = b
	return st
}
