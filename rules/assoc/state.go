package assoc

import (
	"math"
	"slices"
)

// popLen is the length of the popularity lists kept overall and per
// category, the pool that Recommend falls back on.
const popLen = 100

// pairItems is how many of a visitor's items Recommend and Likelihood
// combine into two-item antecedents (8 items make 28 pairs).
const pairItems = 8

// An entry counts one consequent of an antecedent. The list it is in is a
// Space-Saving summary: when the list is full, a new consequent replaces the
// one with the smallest count and inherits that count as err, so that
// count-err is a lower bound of the true count and count an upper bound.
type entry struct {
	item  uint32
	err   float32 // rounded up, so that count-err stays a lower bound
	count float64
}

// lower returns the guaranteed part of the count.
func (e *entry) lower() float64 { return e.count - float64(e.err) }

// A member is an item of the visitor basket being learnt, with its weight.
type member struct {
	idx uint32
	w   float64
}

// A wid is an item id with a weight; in input.add, prior is its weight in
// the visitor's basket before.
type wid struct {
	id    string
	w     float64
	prior float64
}

// An input is one learning step of one visitor.
type input struct {
	prior    []wid   // the basket before: deduplicated, by weight desc then id
	maxPrior float64 // the largest weight in prior (including unknown items)
	add      []wid   // items joining or gaining weight: deduplicated, by weight desc then id
	cats     [][2]string
}

// state holds every count. It is not safe for concurrent use; Model guards
// it.
type state struct {
	c *config

	baskets float64 // weighted number of visitor baskets

	// Items, indexed by a dense uint32; a free slot has id "".
	ids   []string
	index map[string]uint32
	count []float64 // weighted number of baskets holding the item
	cat   []int32   // category, -1 when unknown
	adj   [][]entry // consequents of the one-item antecedent
	free  []uint32

	cats     []string
	catIndex map[string]int32
	catItems []int // items per category

	popAll []uint32   // most popular items, by count desc then id
	popCat [][]uint32 // the same per category

	pairs pairTable

	prunedItems, prunedPairs, evicted, truncated uint64

	// learning scratch
	bas []member
	fs  []float64
	// rc caches the records of the pairs of the basket being learnt:
	// rc[j*rcN+k] for basket positions j < k is the slot in pairs, or
	// rcAbsent, or rcUnknown before the first lookup.
	rc  []int32
	rcN int
}

const (
	rcUnknown = -2
	rcAbsent  = -1
)

// rec returns the cached record of the pair at basket positions j, k, or
// looks it up.
func (s *state) rec(bas []member, j, k int) int32 {
	if j > k {
		j, k = k, j
	}
	c := &s.rc[j*s.rcN+k]
	if *c == rcUnknown {
		*c = rcAbsent
		if r, ok := s.pairs.find(pkey(bas[j].idx, bas[k].idx)); ok {
			*c = r
		}
	}
	return *c
}

func newState(c *config) *state {
	return &state{
		c:        c,
		index:    make(map[string]uint32),
		catIndex: make(map[string]int32),
	}
}

func pkey(a, b uint32) uint64 {
	if a > b {
		a, b = b, a
	}
	return uint64(a)<<32 | uint64(b)
}

func unkey(k uint64) (uint32, uint32) { return uint32(k >> 32), uint32(k) }

// intern returns the index of id, adding the item if it is new.
func (s *state) intern(id string) (idx uint32, isNew bool) {
	if i, ok := s.index[id]; ok {
		return i, false
	}
	if n := len(s.free); n > 0 {
		idx = s.free[n-1]
		s.free = s.free[:n-1]
		s.ids[idx], s.count[idx], s.cat[idx] = id, 0, -1
		s.adj[idx] = s.adj[idx][:0]
	} else {
		idx = uint32(len(s.ids))
		s.ids = append(s.ids, id)
		s.count = append(s.count, 0)
		s.cat = append(s.cat, -1)
		s.adj = append(s.adj, nil)
	}
	s.index[id] = idx
	return idx, true
}

// better reports whether item a ranks before item b in popularity.
func (s *state) better(a, b uint32) bool {
	if ca, cb := s.count[a], s.count[b]; ca != cb {
		return ca > cb
	}
	return s.ids[a] < s.ids[b]
}

// popBump keeps list the exact top popLen after the count of idx grew.
// Counts only grow between prunings, so an item outside the list never
// ranks before the list's last one, and comparing with it is enough.
func (s *state) popBump(list []uint32, idx uint32) []uint32 {
	pos := slices.Index(list, idx)
	if pos < 0 {
		switch {
		case len(list) < popLen:
			list = append(list, idx)
		case s.better(idx, list[len(list)-1]):
			list[len(list)-1] = idx
		default:
			return list
		}
		pos = len(list) - 1
	}
	for pos > 0 && s.better(list[pos], list[pos-1]) {
		list[pos], list[pos-1] = list[pos-1], list[pos]
		pos--
	}
	return list
}

func (s *state) addSingle(idx uint32, d float64) {
	s.count[idx] += d
	s.popAll = s.popBump(s.popAll, idx)
	if c := s.cat[idx]; c >= 0 {
		s.popCat[c] = s.popBump(s.popCat[c], idx)
	}
}

// setCategory gives idx its category unless it has one: the first category
// seen for an item stays.
func (s *state) setCategory(idx uint32, name string) {
	if name == "" || s.cat[idx] >= 0 {
		return
	}
	c, ok := s.catIndex[name]
	if !ok {
		c = int32(len(s.cats))
		s.cats = append(s.cats, name)
		s.catItems = append(s.catItems, 0)
		s.popCat = append(s.popCat, nil)
		s.catIndex[name] = c
	}
	s.cat[idx] = c
	s.catItems[c]++
	if s.count[idx] > 0 {
		s.popCat[c] = s.popBump(s.popCat[c], idx)
	}
}

// bump adds w to the count of item in list, a Space-Saving summary of at
// most TopK entries kept sorted by count, largest first: frequent
// consequents are found after a short scan, the entry to replace is the
// last, and queries can stop at the first entry below their thresholds.
func (s *state) bump(list []entry, item uint32, w float64) []entry {
	i := 0
	for i < len(list) && list[i].item != item {
		i++
	}
	switch {
	case i < len(list):
		list[i].count += w
	case len(list) < s.c.topK:
		if len(list) == cap(list) {
			nl := make([]entry, len(list), min(max(2*cap(list), 2), s.c.topK))
			copy(nl, list)
			list = nl
		}
		list = append(list, entry{item: item, count: w})
	default:
		s.evicted++
		m := list[i-1].count
		i--
		list[i] = entry{item: item, err: up32(m), count: m + w}
	}
	e := list[i]
	for ; i > 0 && list[i-1].count < e.count; i-- {
		list[i] = list[i-1]
	}
	list[i] = e
	return list
}

// up32 converts f to float32 rounding up.
func up32(f float64) float32 {
	r := float32(f)
	if float64(r) < f {
		r = math.Nextafter32(r, float32(math.Inf(1)))
	}
	return r
}

// learn applies one step of one visitor: the items of in.add join the
// visitor's basket in.prior, or gain weight in it. Every count moves by the
// difference its basket makes, so counts depend only on each visitor's final
// basket, not on how it was split into steps (up to the bounds).
func (s *state) learn(in *input) {
	mb := s.c.maxBasket
	bas := s.bas[:0]
	for _, x := range in.prior {
		if len(bas) == mb {
			break
		}
		if idx, ok := s.index[x.id]; ok {
			bas = append(bas, member{idx, x.w})
		}
	}
	s.rcN = min(mb, len(bas)+len(in.add))
	s.rc = slices.Grow(s.rc[:0], s.rcN*s.rcN)[:s.rcN*s.rcN]
	for i := range s.rc {
		s.rc[i] = rcUnknown
	}
	// Slots must not move while this step holds their indices.
	s.pairs.reserve(s.rcN * (s.rcN - 1) / 2)
	maxAll := in.maxPrior
	for _, x := range in.add {
		if x.w <= x.prior {
			continue
		}
		maxAll = max(maxAll, x.w)
		idx, isNew := s.intern(x.id)
		pos := -1
		for i := range bas {
			if bas[i].idx == idx {
				pos = i
				break
			}
		}
		switch {
		case pos >= 0:
			s.addSingle(idx, x.w-bas[pos].w)
			s.join(bas, pos, bas[pos].w, x.w)
			bas[pos].w = x.w
		case len(bas) < mb:
			// Not in the basket although the basket has room: the item is
			// new to the model (or was pruned), so it starts from nothing.
			s.addSingle(idx, x.w)
			bas = append(bas, member{idx, x.w})
			s.join(bas, len(bas)-1, 0, x.w)
		default:
			s.truncated++
			if isNew {
				s.addSingle(idx, x.w)
			} else {
				s.addSingle(idx, x.w-x.prior)
			}
		}
	}
	s.bas = bas
	s.baskets += maxAll - in.maxPrior
	for _, ic := range in.cats {
		if ic[0] != "" && ic[1] != "" {
			// An item seen only with its category (a view, when views are
			// not learnt) is kept with a count of 0, which the pruning of
			// items drops first.
			idx, _ := s.intern(ic[0])
			s.setCategory(idx, ic[1])
		}
	}
	if len(s.index) > s.c.maxItems {
		s.pruneItems()
	}
	if s.pairs.n > s.c.maxPairs {
		s.prunePairs()
	}
}

// join updates the counts for bas[pos] moving from weight a to b in the
// basket bas (whose other members keep their weights). A pair counts with
// the smaller weight of its two items, a triple with the smallest of three.
func (s *state) join(bas []member, pos int, a, b float64) {
	i := bas[pos].idx
	for j := range bas {
		if j == pos {
			continue
		}
		mj, jx := bas[j].w, bas[j].idx
		d := min(b, mj) - min(a, mj)
		if d <= 0 {
			continue
		}
		s.adj[i] = s.bump(s.adj[i], jx, d)
		s.adj[jx] = s.bump(s.adj[jx], i, d)
		r := s.pairs.add(pkey(i, jx))
		s.rc[min(j, pos)*s.rcN+max(j, pos)] = r
		rec := &s.pairs.slots[r]
		rec.count += d
		for k := range bas {
			if k == pos || k == j {
				continue
			}
			mk := bas[k].w
			if d3 := min(b, mj, mk) - min(a, mj, mk); d3 > 0 {
				rec.cons = s.bump(rec.cons, bas[k].idx, d3)
			}
		}
	}
	// {j, k} => i for the pairs already in the basket.
	for j := range bas {
		if j == pos {
			continue
		}
		mj := bas[j].w
		if min(b, mj)-min(a, mj) <= 0 {
			continue
		}
		for k := j + 1; k < len(bas); k++ {
			if k == pos {
				continue
			}
			mk := bas[k].w
			d3 := min(b, mj, mk) - min(a, mj, mk)
			if d3 <= 0 {
				continue
			}
			if r := s.rec(bas, j, k); r >= 0 {
				s.pairs.slots[r].cons = s.bump(s.pairs.slots[r].cons, i, d3)
			}
		}
	}
}

// quarter returns the count at or below which a quarter of counts lie:
// the element of rank len/4, found in linear time (counts is reordered).
func (s *state) quarter(counts []float64) float64 {
	return selectRank(counts, len(counts)/4)
}

// selectRank returns the element that would be at index k if fs were
// sorted, reordering fs (Hoare's selection with a median-of-three pivot).
func selectRank(fs []float64, k int) float64 {
	lo, hi := 0, len(fs)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if fs[mid] < fs[lo] {
			fs[mid], fs[lo] = fs[lo], fs[mid]
		}
		if fs[hi] < fs[lo] {
			fs[hi], fs[lo] = fs[lo], fs[hi]
		}
		if fs[hi] < fs[mid] {
			fs[hi], fs[mid] = fs[mid], fs[hi]
		}
		pivot := fs[mid]
		i, j := lo, hi
		for i <= j {
			for fs[i] < pivot {
				i++
			}
			for fs[j] > pivot {
				j--
			}
			if i <= j {
				fs[i], fs[j] = fs[j], fs[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return fs[k]
		}
	}
	return fs[k]
}

// pruneItems drops every item whose count is at most the first quartile,
// with everything that refers to it: at least a quarter of the items, and
// all the items seen once when they are the majority.
func (s *state) pruneItems() {
	fs := s.fs[:0]
	for idx, id := range s.ids {
		if id != "" {
			fs = append(fs, s.count[idx])
		}
	}
	q := s.quarter(fs)
	s.fs = fs[:0]
	gone := make([]bool, len(s.ids))
	for idx, id := range s.ids {
		if id == "" || s.count[idx] > q {
			continue
		}
		gone[idx] = true
		delete(s.index, id)
		if c := s.cat[idx]; c >= 0 {
			s.catItems[c]--
		}
		s.ids[idx], s.count[idx], s.cat[idx] = "", 0, -1
		s.adj[idx] = nil
		s.free = append(s.free, uint32(idx))
		s.prunedItems++
	}
	keep := func(l []entry) []entry {
		return slices.DeleteFunc(l, func(e entry) bool { return gone[e.item] })
	}
	for idx := range s.adj {
		s.adj[idx] = keep(s.adj[idx])
	}
	s.pairs.filter(func(p *pairSlot) bool {
		if a, b := unkey(p.key); gone[a] || gone[b] {
			return false
		}
		p.cons = keep(p.cons)
		return true
	})
	s.rebuildPopular()
}

// prunePairs drops every two-item antecedent whose count is at most the
// first quartile.
func (s *state) prunePairs() {
	fs := s.fs[:0]
	for i := range s.pairs.slots {
		if p := &s.pairs.slots[i]; p.key != 0 {
			fs = append(fs, p.count)
		}
	}
	q := s.quarter(fs)
	s.fs = fs[:0]
	s.prunedPairs += uint64(s.pairs.filter(func(p *pairSlot) bool { return p.count > q }))
}

// rebuildPopular recomputes the popularity lists from the counts, and drops
// the categories that have no item left.
func (s *state) rebuildPopular() {
	remap := make([]int32, len(s.cats))
	var cats []string
	for c, name := range s.cats {
		if s.catItems[c] <= 0 {
			remap[c] = -1
			delete(s.catIndex, name)
			continue
		}
		remap[c] = int32(len(cats))
		s.catIndex[name] = int32(len(cats))
		cats = append(cats, name)
	}
	s.cats = cats
	s.catItems = make([]int, len(cats))
	s.popCat = make([][]uint32, len(cats))
	s.popAll = s.popAll[:0]
	var live []uint32
	for idx, id := range s.ids {
		if id == "" {
			continue
		}
		if c := s.cat[idx]; c >= 0 {
			s.cat[idx] = remap[c]
			s.catItems[remap[c]]++
		}
		if s.count[idx] > 0 {
			live = append(live, uint32(idx))
		}
	}
	slices.SortFunc(live, func(a, b uint32) int {
		switch {
		case s.better(a, b):
			return -1
		case s.better(b, a):
			return 1
		}
		return 0
	})
	for _, idx := range live {
		if len(s.popAll) < popLen {
			s.popAll = append(s.popAll, idx)
		}
		if c := s.cat[idx]; c >= 0 && len(s.popCat[c]) < popLen {
			s.popCat[c] = append(s.popCat[c], idx)
		}
	}
}
