package assoc

import (
	"cmp"
	"math"
	"slices"
	"sync"
)

// A pairEntry holds the consequents of the two-item antecedent {a, b}: n
// sampled baskets hold both, and cons counts, for every other item, the
// sampled baskets that hold it too.
type pairEntry struct {
	a, b uint32
	n    int64
	cons []cnt
	used uint64  // the cache's clock when last read
	nbrs nbrList // for Recommend, under the cache's mu
}

// pairCache keeps the consequents of the two-item antecedents that queries
// asked for, computed from the sample on the first query and then kept up
// to date by learning, so that they stay exact: a pair is computed again
// only after it was evicted. Its size is bounded by Config.MaxCache
// consequents; past it, the least recently read half is dropped.
//
// Queries hold the Model's read lock and mu: several may compute and
// insert at once. Learning holds the Model's write lock, so no query runs
// then; it takes mu too, which costs nothing uncontended.
type pairCache struct {
	mu       sync.Mutex
	m        map[uint64]*pairEntry
	partners [][]uint32 // item → the items it has a cached pair with
	clock    uint64
	size     int // consequents held
	computed uint64

	// scratch of learn, under the write lock
	mark []uint32
	gen  uint32
}

func (c *pairCache) clear() {
	c.mu.Lock()
	clear(c.m)
	c.partners = nil
	c.size = 0
	c.mu.Unlock()
}

// get returns the entry of {a, b}, computing it from s's sample if it is
// not cached. The caller holds the Model's read lock.
func (c *pairCache) get(s *state, a, b uint32) *pairEntry {
	k := pkey(a, b)
	c.mu.Lock()
	e := c.m[k]
	if e != nil {
		c.clock++
		e.used = c.clock
		c.mu.Unlock()
		return e
	}
	c.mu.Unlock()
	e = s.computePair(a, b)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[k]; old != nil { // computed by another query meanwhile
		return old
	}
	c.clock++
	e.used = c.clock
	c.m[k] = e
	for len(c.partners) <= int(max(a, b)) {
		c.partners = append(c.partners, nil)
	}
	c.partners[a] = append(c.partners[a], b)
	c.partners[b] = append(c.partners[b], a)
	c.size += len(e.cons) + 1
	c.computed++
	if c.size > s.c.maxCache {
		c.evict()
	}
	return e
}

// evict drops the least recently read half of the entries. The caller
// holds mu.
func (c *pairCache) evict() {
	used := make([]int64, 0, len(c.m))
	for _, e := range c.m {
		used = append(used, int64(e.used))
	}
	// The entries read before the median go: about half, never the one
	// just computed, whose clock is the largest.
	median := selectRank(used, len(used)/2)
	for k, e := range c.m {
		if int64(e.used) < median {
			delete(c.m, k)
			c.size -= len(e.cons) + 1
			c.partners[e.a] = slices.DeleteFunc(c.partners[e.a], func(x uint32) bool { return x == e.b })
			c.partners[e.b] = slices.DeleteFunc(c.partners[e.b], func(x uint32) bool { return x == e.a })
		}
	}
}

// learn adds d (±1) to the entries of the pairs of items, one sampled
// basket. The caller holds the Model's write lock.
func (c *pairCache) learn(s *state, items []uint32, d int32) {
	if len(c.m) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if c.gen == 0 { // wrapped: old marks would match
		clear(c.mark)
		c.gen = 1
	}
	for len(c.mark) < len(s.ids) {
		c.mark = append(c.mark, 0)
	}
	for _, x := range items {
		c.mark[x] = c.gen
	}
	for _, a := range items {
		if int(a) >= len(c.partners) {
			continue
		}
		for _, b := range c.partners[a] {
			if b < a || c.mark[b] != c.gen {
				continue
			}
			e := c.m[pkey(a, b)]
			e.n += int64(d)
			before := len(e.cons)
			for _, z := range items {
				if z != a && z != b {
					e.cons = add(e.cons, z, d)
				}
			}
			c.size += len(e.cons) - before
		}
	}
}

// An acc is a count per item index, all zero between uses.
type acc struct{ n []uint32 }

// accPool reuses the counts of computePair, which may run in several
// queries at once.
type accPool struct{ p sync.Pool }

var accs accPool

func (p *accPool) get(n int) *acc {
	a, _ := p.p.Get().(*acc)
	if a == nil {
		a = &acc{}
	}
	if len(a.n) < n {
		a.n = make([]uint32, n+n/4)
	}
	return a
}

func (p *accPool) put(a *acc) { p.p.Put(a) }

// computePair counts the consequents of {a, b} over the sample, walking
// the postings of the rarer item. The caller holds the Model's read lock.
func (s *state) computePair(a, b uint32) *pairEntry {
	e := &pairEntry{a: min(a, b), b: max(a, b)}
	from, other := a, b
	if len(s.post[b]) < len(s.post[a]) {
		from, other = b, a
	}
	ac := accs.get(len(s.ids))
	defer accs.put(ac)
	var touched []uint32
	for _, bi := range s.post[from] {
		bk := &s.sample[bi]
		if bk.n == 0 {
			continue
		}
		if _, ok := slices.BinarySearch(bk.items, other); !ok {
			continue
		}
		e.n += int64(bk.n)
		for _, z := range bk.items {
			if z != a && z != b {
				if ac.n[z] == 0 {
					touched = append(touched, z)
				}
				ac.n[z] += bk.n
			}
		}
	}
	slices.Sort(touched)
	e.cons = make([]cnt, len(touched))
	for i, z := range touched {
		e.cons[i] = cnt{z, ac.n[z]}
		ac.n[z] = 0
	}
	return e
}

// nbrLen is how many of an antecedent's consequents Recommend scores: the
// most similar ones.
const nbrLen = 64

// A nbr is a consequent of an antecedent, with its similarity to it.
type nbr struct {
	item uint32
	sim  float32
}

// similarity is what a consequent in n sampled baskets adds to the score of
// Recommend, from an antecedent in ante of them, the consequent being in
// z: the square of the asymmetric cosine n / (ante^0.6 · z^0.4). The
// asymmetry leans towards confidence (n / ante) over the symmetric cosine,
// and the square lets a few strong associations outweigh many weak ones
// (the "locality" of item-based collaborative filtering). Both were chosen
// on the data sets of internal/quality (see the README).
func similarity(n uint32, ante, z int64) float64 {
	s := float64(n) / (math.Pow(float64(ante), 0.6) * math.Pow(float64(z), 0.4))
	return s * s
}

// nbrList holds the nbrLen most similar consequents of an antecedent, made
// when its count of sampled baskets was at.
type nbrList struct {
	items []nbr
	at    int64
}

// stale reports whether the list made at count at should be made again
// now that the antecedent's count is now: it moved by a tenth.
func (l *nbrList) stale(now int64) bool {
	return l.items == nil && l.at == 0 || now > l.at+l.at/10+4 || now < l.at-l.at/10-4
}

// nbrCache keeps the lists of one-item antecedents. Queries hold the
// Model's read lock and mu; derive, under the write lock, empties it.
type nbrCache struct {
	mu sync.Mutex
	m  map[uint32]*nbrList
}

// top returns the nbrLen consequents of list (whose antecedent is in ante
// sampled baskets) most similar to it, among those in at least minSupport
// baskets (scaled to the sample).
func (s *state) top(list []cnt, ante int64) []nbr {
	minN := uint32(1)
	if ms := s.c.minSupport * float64(s.sTotal) / float64(max(s.baskets, 1)); ms > 1 {
		minN = uint32(math.Ceil(ms - 1e-9))
	}
	out := make([]nbr, 0, min(len(list), 2*nbrLen))
	for _, e := range list {
		if e.n < minN || s.sCount[e.item] <= 0 {
			continue
		}
		out = append(out, nbr{e.item, float32(similarity(e.n, ante, s.sCount[e.item]))})
	}
	if len(out) > nbrLen {
		slices.SortFunc(out, func(x, y nbr) int {
			if x.sim != y.sim {
				return cmp.Compare(y.sim, x.sim)
			}
			return cmp.Compare(x.item, y.item)
		})
		out = slices.Clip(out[:nbrLen])
	}
	return out
}

// neighbours returns the list of the antecedent {a} (b == noItem) or
// {a, b}, making it if it is stale. The caller holds the read lock.
func (s *state) neighbours(a, b uint32) []nbr {
	if b != noItem {
		e := s.pairs.get(s, a, b)
		s.pairs.mu.Lock()
		defer s.pairs.mu.Unlock()
		if e.nbrs.stale(e.n) {
			e.nbrs = nbrList{items: s.top(e.cons, e.n), at: e.n}
		}
		return e.nbrs.items
	}
	c := &s.nbrs
	c.mu.Lock()
	l := c.m[a]
	c.mu.Unlock()
	if l != nil && !l.stale(s.sCount[a]) {
		return l.items
	}
	l = &nbrList{items: s.top(s.rows[a], s.sCount[a]), at: s.sCount[a]}
	c.mu.Lock()
	c.m[a] = l
	c.mu.Unlock()
	return l.items
}
