package assoc

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tailorhq/tailor/store"
)

// A Rule is an association rule If ⇒ Then: visitors whose basket holds the
// items of If also have Then in it.
type Rule struct {
	// If is the antecedent: one or two items, sorted.
	If []string `json:"if"`
	// Then is the consequent.
	Then string `json:"then"`
	// Count is the rule's support as a count: the weighted number of
	// visitors whose basket holds If and Then. Where bounds dropped counts
	// it is a lower bound.
	Count float64 `json:"count"`
	// Support is Count as a fraction of all baskets.
	Support float64 `json:"support"`
	// Confidence is Count divided by the weighted number of baskets holding
	// If: the share of the visitors with If who also have Then.
	Confidence float64 `json:"confidence"`
	// Lift is Confidence divided by the share of all baskets holding Then:
	// how much more likely Then is with If than without knowing anything.
	Lift float64 `json:"lift"`
}

// String formats r as "{a, b} => c (count 80, support 1.2%, confidence
// 80.0%, lift 12.30)".
func (r Rule) String() string {
	return fmt.Sprintf("{%s} => %s (count %.4g, support %.1f%%, confidence %.1f%%, lift %.2f)",
		strings.Join(r.If, ", "), r.Then, r.Count, 100*r.Support, 100*r.Confidence, r.Lift)
}

// A Recommendation is an item to show a visitor, with the reason why.
type Recommendation struct {
	Item string `json:"item"`
	// Category is the item's category, if the model knows it.
	Category string `json:"category,omitempty"`
	// Rule is the rule that produced the recommendation; nil when the item
	// is a popular one, recommended for lack of rules.
	Rule *Rule `json:"rule,omitempty"`
	// Reason says why, for templates: "bought together with moneyball and
	// red-sox-banner", "popular in books", or "popular".
	Reason string `json:"reason"`
}

// noItem marks a one-item antecedent in scored.b.
const noItem = ^uint32(0)

// scored is a rule in indices: ante ⇒ then, held by n sampled baskets of
// the ante sampled ones.
type scored struct {
	a, b, then        uint32
	count, conf, lift float64
}

// before reports whether x ranks before y: higher confidence, then higher
// lift, then the more specific antecedent (a pair explains more than one
// item), then higher count, then smaller item ids.
func (s *state) before(x, y *scored) bool {
	switch {
	case x.conf != y.conf:
		return x.conf > y.conf
	case x.lift != y.lift:
		return x.lift > y.lift
	case (x.b == noItem) != (y.b == noItem):
		return x.b != noItem
	case x.count != y.count:
		return x.count > y.count
	case x.then != y.then:
		return s.ids[x.then] < s.ids[y.then]
	case x.a != y.a:
		return s.ids[x.a] < s.ids[y.a]
	case x.b != y.b:
		return y.b == noItem || x.b != noItem && s.ids[x.b] < s.ids[y.b]
	}
	return false
}

func (s *state) cmp(x, y scored) int {
	switch {
	case s.before(&x, &y):
		return -1
	case s.before(&y, &x):
		return 1
	}
	return 0
}

// score computes the rule {a, b} ⇒ then (b is noItem for {a} ⇒ then) from
// n, the sampled baskets holding its items, and ante, those holding a and
// b. While the sample holds every basket, the count is n exactly; past it,
// counts are scaled from the sample to all baskets, and the confidence is
// the sample's ratio. ok is false when the rule is not counted.
func (s *state) score(a, b, then uint32, n, ante int64) (r scored, ok bool) {
	pz := s.count[then]
	if n <= 0 || ante <= 0 || pz <= 0 || s.baskets <= 0 || s.sTotal <= 0 {
		return r, false
	}
	r.a, r.b, r.then = a, b, then
	r.count = float64(n)
	if s.sTotal != s.baskets {
		r.count *= float64(s.baskets) / float64(s.sTotal)
	}
	r.conf = min(float64(n)/float64(ante), 1)
	r.lift = r.conf * float64(s.baskets) / float64(pz)
	return r, true
}

func (s *state) rule(r *scored) Rule {
	var out Rule
	s.ruleInto(&out, r, make([]string, 0, 2))
	return out
}

// ruleInto sets out to r, appending its antecedent to ifs (which must have
// the capacity for it, as out.If is a slice of ifs) and returning ifs.
func (s *state) ruleInto(out *Rule, r *scored, ifs []string) []string {
	n := len(ifs)
	if r.b == noItem {
		ifs = append(ifs, s.ids[r.a])
	} else {
		x, y := s.ids[r.a], s.ids[r.b]
		if y < x {
			x, y = y, x
		}
		ifs = append(ifs, x, y)
	}
	*out = Rule{
		If:         ifs[n:len(ifs):len(ifs)],
		Then:       s.ids[r.then],
		Count:      r.count,
		Support:    r.count / float64(s.baskets),
		Confidence: r.conf,
		Lift:       r.lift,
	}
	return ifs
}

// consequents returns the consequents of the antecedent {a} (b == noItem)
// or {a, b} with their sampled counts, and the sampled count of the
// antecedent. The caller holds the read lock.
func (s *state) consequents(a, b uint32) ([]cnt, int64) {
	if b == noItem {
		return s.rows[a], s.sCount[a]
	}
	e := s.pairs.get(s, a, b)
	return e.cons, e.n
}

// Rules returns the rules whose antecedent is exactly the given one or two
// items and that pass the thresholds of the Config, best first: by
// confidence, then lift, then count. It returns nil for other antecedents.
func (m *Model) Rules(antecedent ...string) []Rule {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.st
	a, b := noItem, noItem
	for i, id := range antecedent {
		idx, ok := s.index[id]
		if !ok || i > 1 || idx == a {
			return nil
		}
		if i == 0 {
			a = idx
		} else {
			b = idx
		}
	}
	if a == noItem {
		return nil
	}
	list, ante := s.consequents(a, b)
	var rs []scored
	for _, e := range list {
		r, ok := s.score(a, b, e.item, int64(e.n), ante)
		if ok && m.c.passes(r.count, r.conf, r.lift) {
			rs = append(rs, r)
		}
	}
	slices.SortFunc(rs, s.cmp)
	out := make([]Rule, len(rs))
	for i := range rs {
		out[i] = s.rule(&rs[i])
	}
	return out
}

// Likelihood returns the best rule, by confidence then lift, that predicts
// item from the items of bought: its antecedent is one of them or a pair of
// the first eight. It is what a segment "likely to buy item" compares with
// its own confidence threshold, so only MinSupport applies, not
// MinConfidence or MinLift. ok is false when no rule predicts item.
func (m *Model) Likelihood(bought []string, item string) (r Rule, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.st
	z, known := s.index[item]
	if !known {
		return Rule{}, false
	}
	var ante []uint32
	for _, id := range bought {
		if idx, ok := s.index[id]; ok && idx != z && !slices.Contains(ante, idx) {
			ante = append(ante, idx)
		}
	}
	var best scored
	found := false
	try := func(a, b uint32) {
		list, n := s.consequents(a, b)
		i, in := find(list, z)
		if !in {
			return
		}
		r, ok := s.score(a, b, z, int64(list[i].n), n)
		if ok && r.count >= m.c.minSupport && (!found || s.before(&r, &best)) {
			best, found = r, true
		}
	}
	for i, a := range ante {
		try(a, noItem)
		if i < pairItems {
			for _, b := range ante[i+1 : min(len(ante), pairItems)] {
				try(a, b)
			}
		}
	}
	if !found {
		return Rule{}, false
	}
	return s.rule(&best), true
}

// scratch is the reusable memory of one Recommend call.
type scratch struct {
	ante   []anteItem
	idx    []uint32
	w      []float64
	bought []uint32
	cands  []cand
	top    []int32

	// slot[idx] is valid when stamp[idx] == gen: the position of item idx in
	// cands, or slotBought, or slotShown.
	stamp []uint32
	slot  []int32
	gen   uint32
}

// A cand is an item Recommend considers: its score, and the antecedent
// that contributes most to it, whose rule explains it.
type cand struct {
	score, best float64
	then, a, b  uint32
}

const (
	slotBought = -2
	slotShown  = -1
)

// reset invalidates every slot, for a model of n item indices.
func (sc *scratch) reset(n int) {
	if len(sc.stamp) < n {
		sc.stamp = make([]uint32, n+n/4)
		sc.slot = make([]int32, n+n/4)
		sc.gen = 0
	}
	sc.gen++
	if sc.gen == 0 {
		clear(sc.stamp)
		sc.gen = 1
	}
}

func (sc *scratch) get(idx uint32) (int32, bool) {
	if sc.stamp[idx] == sc.gen {
		return sc.slot[idx], true
	}
	return 0, false
}

func (sc *scratch) set(idx uint32, v int32) {
	sc.stamp[idx], sc.slot[idx] = sc.gen, v
}

// anteItem is a candidate antecedent: class 3 bought, 2 carted, 1 viewed;
// a higher rank first within a class (units bought, recency, views).
type anteItem struct {
	id          string
	class, rank int
}

// Weights of the visitor's items as antecedents in Recommend's scores.
var classWeight = [4]float64{0, 0.25, 0.5, 1}

// maxAnte bounds the visitor's items Recommend uses as antecedents.
const maxAnte = 64

// Recommend returns up to n items for the visitor of profile p, never one
// the visitor bought.
//
// Every item the visitor bought, put in the cart or viewed (at most 64,
// bought first) is an antecedent, and so is every pair of the first eight
// bought or put in the cart. An item z scores, for each antecedent A among
// whose 64 most similar consequents it is, with at least MinSupport
// visitors,
//
//	w · (count(A ∪ {z}) / (count(A)^0.6 · count(z)^0.4))²
//
// (w is 1 for what was bought and for pairs, 0.5 for the cart, 0.25 for
// views), and items are ranked by their total score: the evidence of
// every item the visitor has adds up, where the best rule alone lets a
// single popular item decide. The lists of similar consequents are made
// again when their antecedent's count moves by a tenth.
// Each item comes with the rule that contributes most to its score, which
// explains it. When rules give fewer than n items, the list is completed
// with the most popular items of the visitor's top interest category (the
// category the model knows with the most page views plus units bought in
// p.Categories and p.Purchases.Categories), then with the most popular
// items overall (from the top 100 of each). A new visitor gets popular
// items only.
func (m *Model) Recommend(p *store.Profile, n int) []Recommendation {
	if n <= 0 {
		return nil
	}
	sc := m.scratch.Get().(*scratch)
	defer m.scratch.Put(sc)
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.st

	// The visitor's items, as antecedents.
	sc.ante, sc.idx, sc.w, sc.bought = sc.ante[:0], sc.idx[:0], sc.w[:0], sc.bought[:0]
	if p != nil {
		for id, units := range p.Purchases.Items {
			if units <= 0 {
				continue
			}
			if idx, ok := s.index[id]; ok {
				sc.bought = append(sc.bought, idx)
				sc.ante = append(sc.ante, anteItem{id, 3, units})
			}
		}
		var carts [8]string
		for i, id := range m.carted(carts[:0], p) {
			if p.Purchases.Items[id] <= 0 {
				sc.ante = append(sc.ante, anteItem{id, 2, -i})
			}
		}
		for id, views := range p.Views {
			if views > 0 && p.Purchases.Items[id] <= 0 {
				sc.ante = append(sc.ante, anteItem{id, 1, views})
			}
		}
	}
	slices.SortFunc(sc.ante, func(x, y anteItem) int {
		if x.class != y.class {
			return y.class - x.class
		}
		if x.rank != y.rank {
			return y.rank - x.rank
		}
		return strings.Compare(x.id, y.id)
	})
	paired := 0 // the first items, bought or carted, whose pairs are antecedents
	for _, a := range sc.ante {
		if len(sc.idx) == maxAnte {
			break
		}
		if idx, ok := s.index[a.id]; ok && !slices.Contains(sc.idx, idx) {
			sc.idx = append(sc.idx, idx)
			sc.w = append(sc.w, classWeight[a.class])
			if a.class >= 2 && paired < pairItems {
				paired++
			}
		}
	}

	// Scores.
	sc.reset(len(s.ids))
	for _, idx := range sc.bought {
		sc.set(idx, slotBought)
	}
	sc.cands = sc.cands[:0]
	consider := func(a, b uint32, w float64) {
		for _, e := range s.neighbours(a, b) {
			j, seen := sc.get(e.item)
			if j == slotBought && seen {
				continue
			}
			contrib := w * float64(e.sim)
			if !seen {
				j = int32(len(sc.cands))
				sc.set(e.item, j)
				sc.cands = append(sc.cands, cand{then: e.item})
			}
			c := &sc.cands[j]
			c.score += contrib
			if !seen || contrib > c.best || contrib == c.best && b != noItem && c.b == noItem {
				c.best, c.a, c.b = contrib, a, b
			}
		}
	}
	for i, a := range sc.idx {
		consider(a, noItem, sc.w[i])
		if i < paired {
			for _, b := range sc.idx[i+1 : paired] {
				consider(a, b, 1)
			}
		}
	}
	// The n best, by insertion into a sorted list.
	better := func(x, y *cand) bool {
		if x.score != y.score {
			return x.score > y.score
		}
		return s.better(x.then, y.then)
	}
	top := sc.top[:0]
	for i := range sc.cands {
		c := &sc.cands[i]
		j := len(top)
		if j < n {
			top = append(top, int32(i))
		} else if better(c, &sc.cands[top[n-1]]) {
			j = n - 1
		} else {
			continue
		}
		for ; j > 0 && better(c, &sc.cands[top[j-1]]); j-- {
			top[j] = top[j-1]
		}
		top[j] = int32(i)
	}
	sc.top = top

	out := make([]Recommendation, 0, min(n, len(top)+2*popLen))
	rules := make([]Rule, 0, len(top))
	ifs := make([]string, 0, 2*len(top))
	for _, ci := range top {
		c := &sc.cands[ci]
		list, ante := s.consequents(c.a, c.b)
		i, ok := find(list, c.then)
		if !ok {
			// Past the bounds, a consequent may have left the sample
			// since the list of neighbours was made.
			continue
		}
		r, ok := s.score(c.a, c.b, c.then, int64(list[i].n), ante)
		if !ok {
			continue
		}
		rules = append(rules, Rule{})
		ru := &rules[len(rules)-1]
		ifs = s.ruleInto(ru, &r, ifs)
		reason := "bought together with " + ru.If[0]
		if len(ru.If) == 2 {
			reason += " and " + ru.If[1]
		}
		out = append(out, Recommendation{Item: ru.Then, Category: s.category(c.then), Rule: ru, Reason: reason})
	}
	if len(out) == n {
		return out
	}

	// Popular items.
	fill := func(list []uint32, reason string) {
		for _, idx := range list {
			if len(out) == n {
				return
			}
			if _, seen := sc.get(idx); seen { // bought, or a candidate
				continue
			}
			sc.set(idx, slotShown)
			out = append(out, Recommendation{Item: s.ids[idx], Category: s.category(idx), Reason: reason})
		}
	}
	if c := s.interest(p); c >= 0 {
		fill(s.popCat[c], "popular in "+s.cats[c])
	}
	fill(s.popAll, "popular")
	return out
}

func (s *state) category(idx uint32) string {
	if c := s.cat[idx]; c >= 0 {
		return s.cats[c]
	}
	return ""
}

// interest returns the category of the model with the most page views plus
// units bought by p, -1 if none.
func (s *state) interest(p *store.Profile) int32 {
	if p == nil {
		return -1
	}
	best, bestN := int32(-1), 0
	consider := func(name string) {
		c, ok := s.catIndex[name]
		if !ok {
			return
		}
		n := p.Categories[name] + p.Purchases.Categories[name]
		if n > bestN || n == bestN && best >= 0 && name < s.cats[best] {
			best, bestN = c, n
		}
	}
	for name := range p.Categories {
		consider(name)
	}
	for name := range p.Purchases.Categories {
		consider(name)
	}
	return best
}
