package assoc

import (
	"fmt"
	"math"
	"slices"
)

// CheckInvariants reports the first broken invariant of m's counts, for
// tests: every reference is to a live item, and everything derived from
// the sample (counts, rows, cached pairs, postings) equals what the
// sample's baskets give when counted again.
func CheckInvariants(m *Model) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.st
	live := func(idx uint32) bool { return int(idx) < len(s.ids) && s.ids[idx] != "" }
	n, catItems := 0, make([]int, len(s.cats))
	for idx, id := range s.ids {
		if id == "" {
			if !slices.Contains(s.free, uint32(idx)) {
				return fmt.Errorf("slot %d neither live nor free", idx)
			}
			continue
		}
		n++
		if s.index[id] != uint32(idx) {
			return fmt.Errorf("item %s: index %d, slot %d", id, s.index[id], idx)
		}
		if s.count[idx] > s.baskets {
			return fmt.Errorf("item %s in %d baskets of %d", id, s.count[idx], s.baskets)
		}
		if c := s.cat[idx]; c >= 0 {
			catItems[c]++
		}
	}
	if n != len(s.index) || n > s.c.maxItems {
		return fmt.Errorf("%d live items, %d indexed, at most %d", n, len(s.index), s.c.maxItems)
	}
	if !slices.Equal(catItems, s.catItems) {
		return fmt.Errorf("items per category %v, recorded %v", catItems, s.catItems)
	}

	// The sample, counted again.
	sCount := make([]int64, len(s.ids))
	rows := make([]map[uint32]uint32, len(s.ids))
	var total, items int64
	liveBaskets := 0
	for bi, b := range s.sample {
		if b.n == 0 {
			continue
		}
		liveBaskets++
		if s.byHash[b.hash] != int32(bi) {
			return fmt.Errorf("basket %d: not indexed by its hash", bi)
		}
		if b.hash > s.thr {
			return fmt.Errorf("basket %d above the threshold", bi)
		}
		if !slices.IsSorted(b.items) || len(slices.Compact(slices.Clone(b.items))) != len(b.items) {
			return fmt.Errorf("basket %d: items %v not sorted and distinct", bi, b.items)
		}
		total += int64(b.n)
		items += int64(len(b.items))
		for i, a := range b.items {
			if !live(a) {
				return fmt.Errorf("basket %d: dead item %d", bi, a)
			}
			if !slices.Contains(s.post[a], int32(bi)) {
				return fmt.Errorf("basket %d: not in the postings of %s", bi, s.ids[a])
			}
			sCount[a] += int64(b.n)
			for _, z := range b.items[i+1:] {
				for _, x := range [][2]uint32{{a, z}, {z, a}} {
					if rows[x[0]] == nil {
						rows[x[0]] = make(map[uint32]uint32)
					}
					rows[x[0]][x[1]] += b.n
				}
			}
		}
	}
	if len(s.byHash) != liveBaskets {
		return fmt.Errorf("%d hashes indexed, %d live baskets", len(s.byHash), liveBaskets)
	}
	if total != s.sTotal || items != s.sItems {
		return fmt.Errorf("sample of %d baskets and %d items, recorded %d and %d", total, items, s.sTotal, s.sItems)
	}
	if s.thr == math.MaxUint64 && total != s.baskets {
		return fmt.Errorf("all %d baskets sampled, but %d in the sample", s.baskets, total)
	}
	var rowsLen int64
	for idx := range s.ids {
		if sCount[idx] != s.sCount[idx] {
			return fmt.Errorf("item %s in %d sampled baskets, recorded %d", s.ids[idx], sCount[idx], s.sCount[idx])
		}
		row := s.rows[idx]
		rowsLen += int64(len(row))
		if len(row) != len(rows[idx]) {
			return fmt.Errorf("row of %s: %d items, want %d", s.ids[idx], len(row), len(rows[idx]))
		}
		for i, e := range row {
			if i > 0 && row[i-1].item >= e.item || rows[idx][e.item] != e.n {
				return fmt.Errorf("row of %s: %s %d, want %d", s.ids[idx], s.ids[e.item], e.n, rows[idx][e.item])
			}
		}
	}
	if rowsLen != s.rowsLen {
		return fmt.Errorf("rows of %d entries, recorded %d", rowsLen, s.rowsLen)
	}
	s.pairs.mu.Lock()
	defer s.pairs.mu.Unlock()
	size := 0
	for k, e := range s.pairs.m {
		if k != pkey(e.a, e.b) || !live(e.a) || !live(e.b) {
			return fmt.Errorf("cached pair %d, %d under key %x", e.a, e.b, k)
		}
		want := s.computePair(e.a, e.b)
		if want.n != e.n || !slices.Equal(want.cons, e.cons) {
			return fmt.Errorf("cached pair %s, %s: %d baskets %v, want %d %v", s.ids[e.a], s.ids[e.b], e.n, e.cons, want.n, want.cons)
		}
		size += len(e.cons) + 1
		if !slices.Contains(s.pairs.partners[e.a], e.b) || !slices.Contains(s.pairs.partners[e.b], e.a) {
			return fmt.Errorf("cached pair %s, %s: not partners", s.ids[e.a], s.ids[e.b])
		}
	}
	if size != s.pairs.size {
		return fmt.Errorf("cache of %d consequents, recorded %d", size, s.pairs.size)
	}
	checkPop := func(what string, l []uint32, cat int32) error {
		if len(l) > popLen {
			return fmt.Errorf("%s: %d items", what, len(l))
		}
		for i, idx := range l {
			if !live(idx) || cat >= 0 && s.cat[idx] != cat || i > 0 && !s.better(l[i-1], idx) {
				return fmt.Errorf("%s: bad item %d at %d", what, idx, i)
			}
		}
		// Nothing outside ranks before the last.
		if len(l) == 0 {
			return nil
		}
		for idx, id := range s.ids {
			if id != "" && s.count[idx] > 0 && (cat < 0 || s.cat[idx] == cat) && !slices.Contains(l, uint32(idx)) &&
				(len(l) < popLen || s.better(uint32(idx), l[len(l)-1])) {
				return fmt.Errorf("%s: misses %s", what, id)
			}
		}
		return nil
	}
	if err := checkPop("popular", s.popAll, -1); err != nil {
		return err
	}
	for c, l := range s.popCat {
		if err := checkPop("popular in "+s.cats[c], l, int32(c)); err != nil {
			return err
		}
	}
	return nil
}
