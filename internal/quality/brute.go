package quality

import (
	"cmp"
	"slices"
)

// BruteForce holds exact counts of baskets: for every item, the sorted
// list of the baskets that hold it, so that the baskets holding a set of
// items are the intersection of their lists.
type BruteForce struct {
	ids      []string
	index    map[string]int32
	postings [][]int32 // item → sorted basket numbers
	baskets  [][]int32 // basket → item indices
	nonEmpty int
}

// NewBruteForce indexes baskets (each a set of item ids, as in a Dataset).
func NewBruteForce(baskets [][]string) *BruteForce {
	bf := &BruteForce{index: make(map[string]int32), baskets: make([][]int32, len(baskets))}
	for b, items := range baskets {
		if len(items) > 0 {
			bf.nonEmpty++
		}
		row := make([]int32, 0, len(items))
		for _, id := range set(slices.Clone(items)) {
			i, ok := bf.index[id]
			if !ok {
				i = int32(len(bf.ids))
				bf.index[id] = i
				bf.ids = append(bf.ids, id)
				bf.postings = append(bf.postings, nil)
			}
			bf.postings[i] = append(bf.postings[i], int32(b))
			row = append(row, i)
		}
		bf.baskets[b] = row
	}
	return bf
}

// Baskets returns the number of baskets that hold at least one item: an
// empty basket teaches a model nothing, so it is not one of the baskets
// that supports are fractions of.
func (bf *BruteForce) Baskets() int { return bf.nonEmpty }

// Items returns every item that occurs, the most frequent first, then by
// id.
func (bf *BruteForce) Items() []string {
	out := slices.Clone(bf.ids)
	slices.SortFunc(out, func(a, b string) int {
		if c := cmp.Compare(bf.Count(b), bf.Count(a)); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return out
}

// Count returns the number of baskets holding every one of items; with
// no items, Baskets(). Repeated items count once.
func (bf *BruteForce) Count(items ...string) int {
	if len(items) == 0 {
		return bf.nonEmpty
	}
	l, ok := bf.holding(items)
	if !ok {
		return 0
	}
	return len(l)
}

// holding returns the baskets holding every one of items; ok is false
// when an item never occurs.
func (bf *BruteForce) holding(items []string) (baskets []int32, ok bool) {
	lists := make([][]int32, 0, len(items))
	for _, id := range items {
		i, ok := bf.index[id]
		if !ok {
			return nil, false
		}
		lists = append(lists, bf.postings[i])
	}
	slices.SortFunc(lists, func(a, b []int32) int { return cmp.Compare(len(a), len(b)) })
	out := lists[0]
	for _, l := range lists[1:] {
		out = intersect(out, l)
	}
	return out, true
}

// intersect returns the numbers in both sorted lists, in a new slice; a
// is the shorter.
func intersect(a, b []int32) []int32 {
	out := make([]int32, 0, len(a))
	j := 0
	for _, x := range a {
		// b is longer: skip ahead by binary search.
		k, found := slices.BinarySearch(b[j:], x)
		j += k
		if found {
			out = append(out, x)
		}
		if j == len(b) {
			break
		}
	}
	return out
}

// Consequents returns, for every item z not in ante that occurs with
// ante, the number of baskets holding ante and z. With no ante, it
// returns every item's count.
func (bf *BruteForce) Consequents(ante ...string) map[string]int {
	var baskets []int32
	if len(ante) == 0 {
		baskets = make([]int32, len(bf.baskets))
		for i := range baskets {
			baskets[i] = int32(i)
		}
	} else {
		var ok bool
		if baskets, ok = bf.holding(ante); !ok {
			return map[string]int{}
		}
	}
	counts := make([]int, len(bf.ids))
	for _, b := range baskets {
		for _, i := range bf.baskets[b] {
			counts[i]++
		}
	}
	out := make(map[string]int)
	for i, n := range counts {
		if n > 0 && !slices.Contains(ante, bf.ids[i]) {
			out[bf.ids[i]] = n
		}
	}
	return out
}
