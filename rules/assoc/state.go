package assoc

import (
	"math"
	"slices"
	"strings"
)

// popLen is the length of the popularity lists kept overall and per
// category, the pool that Recommend falls back on.
const popLen = 100

// pairItems is how many of a visitor's items Recommend and Likelihood
// combine into two-item antecedents (8 items make 28 pairs).
const pairItems = 8

// A cnt is an item with a number of sampled baskets: an entry of a row of
// the co-occurrence matrix, or a consequent of a two-item antecedent.
// Lists of cnt are sorted by item.
type cnt struct {
	item uint32
	n    uint32
}

// find returns the position of item in l, sorted by item, and whether it
// is there.
func find(l []cnt, item uint32) (int, bool) {
	lo, hi := 0, len(l)
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		if l[h].item < item {
			lo = h + 1
		} else {
			hi = h
		}
	}
	return lo, lo < len(l) && l[lo].item == item
}

// add adds d (±1) to the count of item in l, inserting or removing its
// entry: l holds exactly the items with a count above 0.
func add(l []cnt, item uint32, d int32) []cnt {
	i, ok := find(l, item)
	switch {
	case ok && int64(l[i].n)+int64(d) <= 0:
		return slices.Delete(l, i, i+1)
	case ok:
		l[i].n = uint32(int64(l[i].n) + int64(d))
		return l
	case d > 0:
		return slices.Insert(l, i, cnt{item, uint32(d)})
	}
	return l
}

// A basket is one or more visitors' baskets with the same items: an entry
// of the sample, a multiset of baskets. Baskets are told apart by the hash
// of their item ids (see hashIDs), which stays the same when items are
// pruned from the model.
type basket struct {
	hash  uint64
	items []uint32 // the items the model knows, sorted
	n     uint32   // visitors with this basket; 0 when it is dead
}

// state holds every count. It is not safe for concurrent use; Model guards
// it.
type state struct {
	c *config

	baskets int64 // visitors with a non-empty basket

	// Items, indexed by a dense uint32; a free slot has id "".
	ids   []string
	index map[string]uint32
	count []int64 // baskets holding the item, of all visitors
	cat   []int32 // category, -1 when unknown
	free  []uint32

	cats     []string
	catIndex map[string]int32
	catItems []int // items per category

	popAll []uint32   // most popular items, by count desc then id
	popCat [][]uint32 // the same per category

	// The sample: the baskets whose hash is at most thr, which is all of
	// them (thr = MaxUint64) until the bounds are reached, then a half, a
	// quarter...
	thr     uint64
	sample  []basket
	byHash  map[uint64]int32 // the live basket of a hash
	dead    int              // dead baskets in sample
	post    [][]int32        // item → the sample baskets holding it, in order (dead ones included)
	sCount  []int64          // sampled baskets holding the item
	sTotal  int64            // sampled baskets
	sItems  int64            // items of the live baskets of sample
	rows    [][]cnt          // item → items it shares sampled baskets with
	rowsLen int64            // entries of rows (each pair twice)

	pairs pairCache // consequents of two-item antecedents, computed from sample
	nbrs  nbrCache  // the most similar consequents of items, for Recommend

	prunedItems uint64
	halvings    uint32

	// learning scratch
	mark []uint32 // mark[idx] == gen: idx is in the basket being learnt
	gen  uint32
}

func newState(c *config) *state {
	return &state{
		c:        c,
		index:    make(map[string]uint32),
		catIndex: make(map[string]int32),
		thr:      math.MaxUint64,
		byHash:   make(map[uint64]int32),
		pairs:    pairCache{m: make(map[uint64]*pairEntry)},
		nbrs:     nbrCache{m: make(map[uint32]*nbrList)},
	}
}

func pkey(a, b uint32) uint64 {
	if a > b {
		a, b = b, a
	}
	return uint64(a)<<32 | uint64(b)
}

// hashIDs hashes a sorted set of item ids (FNV-1a, then a finaliser that
// spreads the bits, as sampling compares hashes with a threshold). It is
// part of the snapshot format: it must never change.
func hashIDs(ids []string) uint64 {
	h := uint64(14695981039346656037)
	for _, id := range ids {
		for i := 0; i < len(id); i++ {
			h ^= uint64(id[i])
			h *= 1099511628211
		}
		h ^= 0xff // a byte no UTF-8 string holds ends each id
		h *= 1099511628211
	}
	// splitmix64's finaliser.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// intern returns the index of id, adding the item if it is new.
func (s *state) intern(id string) uint32 {
	if i, ok := s.index[id]; ok {
		return i
	}
	var idx uint32
	if n := len(s.free); n > 0 {
		idx = s.free[n-1]
		s.free = s.free[:n-1]
		s.ids[idx], s.count[idx], s.cat[idx], s.sCount[idx] = id, 0, -1, 0
		s.rows[idx], s.post[idx] = nil, nil
	} else {
		idx = uint32(len(s.ids))
		s.ids = append(s.ids, id)
		s.count = append(s.count, 0)
		s.cat = append(s.cat, -1)
		s.sCount = append(s.sCount, 0)
		s.rows = append(s.rows, nil)
		s.post = append(s.post, nil)
		s.mark = append(s.mark, 0)
	}
	s.index[id] = idx
	return idx
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

// idsSet returns the distinct non-empty ids of ids, sorted.
func idsSet(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// learn applies one step of one visitor, whose basket was prior (sorted
// distinct ids, empty for a new visitor) and becomes prior ∪ add. It
// reports whether anything was learnt.
func (s *state) learn(prior, add []string) bool {
	var grown []string
	for _, id := range add {
		if _, in := slices.BinarySearch(prior, id); !in {
			grown = append(grown, id)
		}
	}
	if len(grown) == 0 {
		return false
	}
	next := make([]string, 0, len(prior)+len(grown))
	next = append(append(next, prior...), grown...)
	slices.Sort(next)

	hp, hn := uint64(0), hashIDs(next)
	from := int32(-1) // the sample's basket of prior
	if len(prior) > 0 {
		hp = hashIDs(prior)
		if hp <= s.thr {
			var ok bool
			if from, ok = s.byHash[hp]; !ok {
				// A basket that would be sampled and is not was never
				// taught (a snapshot older than the visitor, a basket
				// of merged profiles): learn the visitor as a new one,
				// so that every count stays a count of baskets.
				from, prior, grown, hp = -1, nil, next, 0
			}
		}
	}

	// Counts over all visitors.
	if len(prior) == 0 {
		s.baskets++
	}
	for _, id := range grown {
		idx := s.intern(id)
		s.count[idx]++
		// Past the bounds, a prior outside the sample is taken on trust:
		// one never taught shows when an item would be in more baskets
		// than there are, and then counts as a new basket.
		s.baskets = max(s.baskets, s.count[idx])
		s.popAll = s.popBump(s.popAll, idx)
		if c := s.cat[idx]; c >= 0 {
			s.popCat[c] = s.popBump(s.popCat[c], idx)
		}
	}

	// The sample.
	switch items := s.known(next); {
	case from >= 0 && hn <= s.thr:
		s.move(from, hn, items)
	case from >= 0:
		s.unsample(from)
	case hn <= s.thr:
		s.addSample(hn, items)
	}
	s.baskets = max(s.baskets, s.sTotal)
	s.bound()
	return true
}

// move moves one visitor from the sample's basket from to the basket of
// items (of hash h), a superset: the counts change by the items and pairs
// that the new items make, which is cheaper than removing the basket and
// adding the other.
func (s *state) move(from int32, h uint64, items []uint32) {
	if b, ok := s.byHash[h]; ok {
		items = s.sample[b].items
	}
	old := s.sample[from].items
	s.gen++
	if s.gen == 0 { // wrapped: old marks would match
		clear(s.mark)
		s.gen = 1
	}
	for _, idx := range old {
		s.mark[idx] = s.gen
	}
	kept := 0
	for _, idx := range items {
		if s.mark[idx] == s.gen {
			kept++
		}
	}
	if kept != len(old) {
		// Not a superset: an item was pruned and learnt again since one
		// of the two baskets was made.
		s.unsample(from)
		s.addSample(h, items)
		return
	}
	for _, g := range items {
		if s.mark[g] == s.gen {
			continue
		}
		s.sCount[g]++
		for _, q := range items {
			// Pairs of two new items are counted once, from the greater.
			if q == g || s.mark[q] != s.gen && q > g {
				continue
			}
			before := len(s.rows[g])
			s.rows[g] = add(s.rows[g], q, 1)
			s.rows[q] = add(s.rows[q], g, 1)
			s.rowsLen += 2 * int64(len(s.rows[g])-before)
		}
	}
	s.pairs.learn(s, old, -1)
	s.pairs.learn(s, items, 1)

	bk := &s.sample[from]
	bk.n--
	if bk.n == 0 {
		delete(s.byHash, bk.hash)
		s.sItems -= int64(len(bk.items))
		s.dead++
	}
	s.place(h, items)
}

// place adds one visitor to the sample's basket of hash h, making it with
// items if it is new, without counting.
func (s *state) place(h uint64, items []uint32) int32 {
	b, ok := s.byHash[h]
	if ok {
		s.sample[b].n++
		return b
	}
	b = int32(len(s.sample))
	s.sample = append(s.sample, basket{hash: h, items: items, n: 1})
	s.byHash[h] = b
	s.sItems += int64(len(items))
	for _, idx := range items {
		s.post[idx] = append(s.post[idx], b)
	}
	return b
}

// known returns the indices of the ids the model knows, sorted.
func (s *state) known(ids []string) []uint32 {
	out := make([]uint32, 0, len(ids))
	for _, id := range ids {
		if idx, ok := s.index[id]; ok {
			out = append(out, idx)
		}
	}
	slices.Sort(out)
	return out
}

// unsample removes one visitor from the sample's basket b.
func (s *state) unsample(b int32) {
	bk := &s.sample[b]
	s.count2(bk.items, -1)
	bk.n--
	if bk.n == 0 {
		delete(s.byHash, bk.hash)
		s.sItems -= int64(len(bk.items))
		s.dead++
	}
}

// addSample adds one visitor with basket items (of hash h) to the sample.
func (s *state) addSample(h uint64, items []uint32) {
	s.count2(s.sample[s.place(h, items)].items, 1)
}

// count2 adds d (±1) to the counts of the sample for one basket of items:
// its items, its pairs, and the consequents of the cached pairs it holds.
func (s *state) count2(items []uint32, d int32) {
	s.sTotal += int64(d)
	for i, a := range items {
		s.sCount[a] += int64(d)
		for _, b := range items[i+1:] {
			before := len(s.rows[a])
			s.rows[a] = add(s.rows[a], b, d)
			s.rows[b] = add(s.rows[b], a, d)
			s.rowsLen += 2 * int64(len(s.rows[a])-before)
		}
	}
	s.pairs.learn(s, items, d)
}

// bound enforces MaxItems, and MaxSample and MaxPairs by halving the share
// of baskets sampled until the sample is within them; it compacts the
// sample when most of its baskets are dead.
func (s *state) bound() {
	if len(s.index) > s.c.maxItems {
		s.pruneItems()
	}
	if s.sItems > int64(s.c.maxSample) || s.rowsLen/2 > int64(s.c.maxPairs) {
		for s.thr > 0 && (s.sItems > int64(s.c.maxSample) || s.rowsLen/2 > int64(s.c.maxPairs)) {
			s.thr >>= 1
			s.halvings++
			for i := range s.sample {
				if b := &s.sample[i]; b.n > 0 && b.hash > s.thr {
					delete(s.byHash, b.hash)
					b.n = 0
					s.dead++
				}
			}
			s.derive()
		}
		return
	}
	if s.dead > 1024 && s.dead > len(s.sample)/2 {
		s.compact()
	}
}

// pastBounds reports whether the live baskets of the sample hold more
// items than MaxSample, or one of them alone has more pairs than MaxPairs:
// what a model's own sample never holds, as learning keeps it within the
// bounds.
func (s *state) pastBounds() bool {
	var items int64
	for i := range s.sample {
		if b := &s.sample[i]; b.n > 0 {
			k := int64(len(b.items))
			items += k
			if k*(k-1)/2 > int64(s.c.maxPairs) {
				return true
			}
		}
	}
	return items > int64(s.c.maxSample)
}

// compact drops the dead baskets of the sample and renumbers the others,
// with their postings.
func (s *state) compact() {
	live := s.sample[:0]
	for _, b := range s.sample {
		if b.n > 0 {
			live = append(live, b)
		}
	}
	clear(s.sample[len(live):])
	s.sample = live
	s.dead = 0
	clear(s.byHash)
	for i := range s.post {
		s.post[i] = s.post[i][:0]
	}
	for i := range s.sample {
		b := &s.sample[i]
		s.byHash[b.hash] = int32(i)
		for _, idx := range b.items {
			s.post[idx] = append(s.post[idx], int32(i))
		}
	}
}

// derive recomputes from the live baskets of the sample everything that
// is derived from it: postings, counts, rows; it empties the cache of
// pairs. It compacts the sample first.
func (s *state) derive() {
	s.compact()
	clear(s.sCount)
	for i := range s.rows {
		s.rows[i] = nil
	}
	s.sTotal, s.sItems, s.rowsLen = 0, 0, 0
	s.pairs.clear()
	s.nbrs.mu.Lock()
	clear(s.nbrs.m)
	s.nbrs.mu.Unlock()
	// Count each row's length first, so that rows are built in place.
	lens := make([]int, len(s.ids))
	for i := range s.sample {
		b := &s.sample[i]
		s.sTotal += int64(b.n)
		s.sItems += int64(len(b.items))
		for _, a := range b.items {
			s.sCount[a] += int64(b.n)
			lens[a] += len(b.items) - 1
		}
	}
	acc := make([]int64, len(s.ids))
	var touched []uint32
	for a := range s.ids {
		if lens[a] == 0 {
			continue
		}
		touched = touched[:0]
		for _, bi := range s.post[a] {
			b := &s.sample[bi]
			for _, z := range b.items {
				if z != uint32(a) {
					if acc[z] == 0 {
						touched = append(touched, z)
					}
					acc[z] += int64(b.n)
				}
			}
		}
		slices.Sort(touched)
		row := make([]cnt, len(touched))
		for i, z := range touched {
			row[i] = cnt{z, uint32(acc[z])}
			acc[z] = 0
		}
		s.rows[a] = row
		s.rowsLen += int64(len(row))
	}
}

// quarter returns the count at or below which a quarter of counts lie:
// the element of rank len/4, found in linear time (counts is reordered).
func quarter(counts []int64) int64 {
	return selectRank(counts, len(counts)/4)
}

// selectRank returns the element that would be at index k if fs were
// sorted, reordering fs (Hoare's selection with a median-of-three pivot).
func selectRank[T int64 | float64](fs []T, k int) T {
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
// from the counts and from the sample's baskets (which keep their hash):
// at least a quarter of the items, and all the items seen once when they
// are the majority.
func (s *state) pruneItems() {
	var fs []int64
	for idx, id := range s.ids {
		if id != "" {
			fs = append(fs, s.count[idx])
		}
	}
	q := quarter(fs)
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
		s.post[idx] = nil
		s.free = append(s.free, uint32(idx))
		s.prunedItems++
	}
	for i := range s.sample {
		b := &s.sample[i]
		if slices.ContainsFunc(b.items, func(x uint32) bool { return gone[x] }) {
			b.items = slices.DeleteFunc(slices.Clone(b.items), func(x uint32) bool { return gone[x] })
		}
	}
	s.derive()
	s.rebuildPopular()
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
		return strings.Compare(s.ids[a], s.ids[b])
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

// rate is the share of baskets the sample holds: 1 while it holds them
// all.
func (s *state) rate() float64 {
	if s.thr == math.MaxUint64 {
		return 1
	}
	return (float64(s.thr) + 1) / (1 << 64)
}
