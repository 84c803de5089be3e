package assoc

import (
	"context"
	"math"
	"slices"
	"sync"

	"github.com/tailorhq/tailor/store"
)

// Config configures a Model. The zero value of every field means its
// default; the defaults are in DefaultConfig.
type Config struct {
	// MinSupport is the smallest count a rule needs: the number of
	// visitors whose basket holds all of the rule's items. Zero means 3; a
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
	// MaxItems is the number of distinct items counted. Zero means 100,000.
	MaxItems int
	// MaxSample bounds the baskets the model keeps to count rules from, in
	// items: the sum of the sizes of the distinct baskets kept. Zero means
	// 32,000,000 (a million baskets of 32 items). Up to it every count is
	// exact; past it the model keeps a sample of the baskets (see the
	// package documentation).
	MaxSample int
	// MaxPairs bounds the distinct pairs of items that share a basket of
	// the sample. Zero means 20,000,000. Past it, the sample is halved like
	// past MaxSample.
	MaxPairs int
	// MaxCache bounds the consequents of two-item antecedents kept computed.
	// Zero means 4,000,000.
	MaxCache int
	// CartEvents are the names of the track events that put items in the
	// cart (the event's Item, and the IDs of its Items): Recommend uses
	// the items of the cart as antecedents. Nil means "add_to_cart" and
	// "Product Added" (the Segment e-commerce name).
	CartEvents []string
}

// DefaultConfig holds the values used for the zero fields of a Config.
var DefaultConfig = Config{
	MinSupport:    3,
	MinConfidence: 0.1,
	MinLift:       1.1,
	MaxItems:      100_000,
	MaxSample:     32_000_000,
	MaxPairs:      20_000_000,
	MaxCache:      4_000_000,
	CartEvents:    []string{"add_to_cart", "Product Added"},
}

// config is a Config with its defaults applied.
type config struct {
	minSupport, minConfidence, minLift      float64
	maxItems, maxSample, maxPairs, maxCache int
	cartEvents                              []string
	touches                                 store.Touch // see Model.Touches
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
		maxItems:      max(size(c.MaxItems, d.MaxItems), 4),
		maxSample:     size(c.MaxSample, d.MaxSample),
		maxPairs:      size(c.MaxPairs, d.MaxPairs),
		maxCache:      size(c.MaxCache, d.MaxCache),
		cartEvents:    slices.Clone(c.CartEvents),
	}
	if n.cartEvents == nil {
		n.cartEvents = slices.Clone(d.CartEvents)
	}
	n.touches = store.TouchPurchases | store.TouchViews | store.TouchCategories
	for _, name := range n.cartEvents {
		n.touches |= store.TouchCount(name)
	}
	return n
}

func (c *config) passes(count, conf, lift float64) bool {
	return count >= c.minSupport && conf >= c.minConfidence && lift >= c.minLift
}

func (c *config) isCart(name string) bool { return slices.Contains(c.cartEvents, name) }

// A Model learns association rules between items from visitors' baskets.
// It is safe for concurrent use: learning takes a write lock for a few
// microseconds (longer when it prunes or halves its sample), queries share
// a read lock.
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
// and viewed. The model learns what visitors bought; carts and views
// serve as antecedents when recommending (see BasketOf).
type Basket struct {
	Bought []string `json:"bought,omitempty"`
	Carted []string `json:"carted,omitempty"`
	Viewed []string `json:"viewed,omitempty"`
}

// Learn learns that a visitor whose basket was prior bought the items of
// add.Bought: the visitor's basket becomes prior.Bought ∪ add.Bought.
// Items already in prior are not counted again, so that every count is a
// number of visitors, not of orders, and learning an order twice changes
// nothing. Carted and Viewed are not learnt.
//
// prior must be what the model was taught about this visitor before
// (empty for a new visitor); see LearnEvent to take it from a profile. A
// prior the model was never taught is learnt as a new visitor's basket
// while the model counts exactly (see the package documentation).
func (m *Model) Learn(prior, add Basket) {
	m.learn(idsSet(prior.Bought), idsSet(add.Bought), nil)
}

func (m *Model) learn(prior, add []string, cats [][2]string) {
	if len(add) == 0 && len(cats) == 0 {
		return
	}
	if len(add) > 0 {
		learns := false
		for _, id := range add {
			if _, in := slices.BinarySearch(prior, id); !in {
				learns = true
				break
			}
		}
		if !learns {
			add = nil
		}
	}
	if len(add) == 0 && m.categorised(cats) {
		return
	}
	m.mu.Lock()
	if len(add) > 0 {
		m.st.learn(prior, add)
	}
	for _, ic := range cats {
		if ic[0] != "" && ic[1] != "" {
			// An item seen only with its category (a view) is kept with
			// a count of 0, which the pruning of items drops first.
			m.st.setCategory(m.st.intern(ic[0]), ic[1])
		}
	}
	if len(m.st.index) > m.c.maxItems {
		m.st.pruneItems()
	}
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

// LearnEvent learns what purchase event e adds to the basket of the
// visitor whose profile, before e was applied, is prior (nil for a new
// visitor): the event's Items. Other events only teach item categories
// (from the purchase and cart items' Category fields and from the page's
// Category), and so does an event that prior has already applied, so
// calling LearnEvent for a retried event is harmless.
func (m *Model) LearnEvent(prior *store.Profile, e *store.Event) {
	if e == nil || prior != nil && e.ID != "" && prior.Applied.Has(e.ID) {
		return
	}
	var add []string
	var cats [][2]string
	for _, it := range e.Items {
		if it.ID != "" && it.Category != "" {
			cats = append(cats, [2]string{it.ID, it.Category})
		}
	}
	switch {
	case e.Type == store.TypeTrack && e.Name == store.EventPurchase:
		for _, it := range e.Items {
			add = append(add, it.ID)
		}
	case e.Type == store.TypePage && e.Item != "" && e.Category != "":
		cats = append(cats, [2]string{e.Item, e.Category})
	}
	add = idsSet(add)
	if len(add) == 0 && len(cats) == 0 {
		return
	}
	m.learn(bought(prior), add, cats)
}

// bought returns the items p bought, sorted.
func bought(p *store.Profile) []string {
	if p == nil {
		return nil
	}
	out := make([]string, 0, len(p.Purchases.Items))
	for id, n := range p.Purchases.Items {
		if n > 0 && id != "" {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// LearnProfile learns the whole basket of the visitor of profile p (the
// items of p.Purchases.Items), as if the visitor were new: see the package
// documentation on rebuilds. It also learns item categories from the
// events in p.Recent.
func (m *Model) LearnProfile(p *store.Profile) {
	m.learn(nil, bought(p), categoriesOf(p))
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
		if b := bought(p); len(b) > 0 {
			st.learn(nil, b)
		}
		for _, ic := range categoriesOf(p) {
			st.setCategory(st.intern(ic[0]), ic[1])
		}
		if len(st.index) > m.c.maxItems {
			st.pruneItems()
		}
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
	m.learn(nil, nil, [][2]string{{item, category}})
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
	if !m.mayHaveCarted(p) {
		return dst // without reading p.Recent, which may decode it
	}
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

// Touches returns the parts of a profile (see store.Touch) that
// Recommend and BasketOf read: the purchases, the views, the categories
// viewed (Recommend's fallback to the visitor's interests), and the
// counts of the cart events, by which they tell whether the recent
// events hold one. The recent events are read for cart events only,
// which other events do not change (they may only push the oldest out
// of the recent events); so a caller that keeps page views aside,
// unapplied (middleware.Visitor.ReadProfileParts), need not apply them
// first.
func (m *Model) Touches() store.Touch { return m.c.touches }

// mayHaveCarted reports whether p.Recent may hold a cart event
// (store.Profile.MayHaveRecent).
func (m *Model) mayHaveCarted(p *store.Profile) bool {
	for _, name := range m.c.cartEvents {
		if p.MayHaveRecent(name) {
			return true
		}
	}
	return false
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

// Stats describe a model's size and how exact its counts are.
type Stats struct {
	// Baskets is the number of visitor baskets learnt.
	Baskets int64 `json:"baskets"`
	// Items and Categories are the numbers of items and categories
	// counted.
	Items      int `json:"items"`
	Categories int `json:"categories"`
	// Sampled is the number of baskets the rules are counted from, and
	// SampleRate their share of all baskets: 1 while every count is exact.
	Sampled    int64   `json:"sampled"`
	SampleRate float64 `json:"sampleRate"`
	// SampleItems is the sum of the sizes of the distinct baskets kept
	// (bounded by MaxSample), Pairs the distinct pairs of items that
	// share one (bounded by MaxPairs).
	SampleItems int64 `json:"sampleItems"`
	Pairs       int64 `json:"pairs"`
	// CachedPairs is the number of two-item antecedents whose consequents
	// are kept computed, CachedConsequents their consequents (bounded by
	// MaxCache), and PairsComputed how many were computed from the sample.
	CachedPairs       int    `json:"cachedPairs"`
	CachedConsequents int    `json:"cachedConsequents"`
	PairsComputed     uint64 `json:"pairsComputed"`
	// Bytes estimates the memory the model takes.
	Bytes int64 `json:"bytes"`
	// PrunedItems counts the items dropped at MaxItems.
	PrunedItems uint64 `json:"prunedItems"`
}

// Stats returns the model's statistics.
func (m *Model) Stats() Stats {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.st
	s.pairs.mu.Lock()
	cached, cachedSize, computed := len(s.pairs.m), s.pairs.size, s.pairs.computed
	s.pairs.mu.Unlock()
	st := Stats{
		Baskets:           s.baskets,
		Items:             len(s.index),
		Categories:        len(s.cats),
		Sampled:           s.sTotal,
		SampleRate:        s.rate(),
		SampleItems:       s.sItems,
		Pairs:             s.rowsLen / 2,
		CachedPairs:       cached,
		CachedConsequents: cachedSize,
		PairsComputed:     computed,
		PrunedItems:       s.prunedItems,
	}
	const (
		// An item: its id's header, count, category, sample count, row,
		// postings and mark, and a map slot of the index.
		itemBytes = 16 + 8 + 4 + 8 + 24 + 24 + 4 + 32
		// A distinct basket of the sample: its record and a map slot.
		basketBytes = 40 + 24
		// A pair entry in the cache, beyond its consequents.
		pairBytes = 48 + 24 + 8
	)
	b := int64(len(s.ids)) * itemBytes
	for _, id := range s.ids {
		b += int64(len(id))
	}
	b += int64(len(s.sample)) * basketBytes
	for i := range s.post {
		b += int64(cap(s.post[i]))*4 + int64(cap(s.rows[i]))*8
	}
	for i := range s.sample {
		b += int64(cap(s.sample[i].items)) * 4
	}
	b += int64(cached)*pairBytes + int64(cachedSize)*8
	s.nbrs.mu.Lock()
	for _, l := range s.nbrs.m {
		b += 64 + int64(cap(l.items))*8 // a map slot, the list and its entries
	}
	s.nbrs.mu.Unlock()
	b += int64(len(s.cats)+1) * popLen * 4
	st.Bytes = b
	return st
}
