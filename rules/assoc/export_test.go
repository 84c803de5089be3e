package assoc

import (
	"fmt"
	"slices"
)

// CheckInvariants reports the first broken invariant of m's counts, for
// tests: every reference is to a live item, lists are sorted and bounded,
// the pair table and popularity lists agree with the counts.
func CheckInvariants(m *Model) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.st
	live := func(idx uint32) bool { return int(idx) < len(s.ids) && s.ids[idx] != "" }
	checkList := func(what string, l []entry, not ...uint32) error {
		if len(l) > s.c.topK {
			return fmt.Errorf("%s: %d consequents, more than %d", what, len(l), s.c.topK)
		}
		for i, e := range l {
			switch {
			case !live(e.item) || slices.Contains(not, e.item):
				return fmt.Errorf("%s: bad consequent %d", what, e.item)
			case i > 0 && l[i-1].count < e.count:
				return fmt.Errorf("%s: not sorted by count", what)
			case e.count <= 0 || float64(e.err) > e.count*(1+1e-6):
				return fmt.Errorf("%s: count %g, error %g", what, e.count, e.err)
			}
			for _, f := range l[:i] {
				if f.item == e.item {
					return fmt.Errorf("%s: %s twice", what, s.ids[e.item])
				}
			}
		}
		return nil
	}
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
		if s.count[idx] > s.baskets*(1+1e-9) {
			return fmt.Errorf("item %s in %g baskets of %g", id, s.count[idx], s.baskets)
		}
		if c := s.cat[idx]; c >= 0 {
			catItems[c]++
		}
		if err := checkList("item "+id, s.adj[idx], uint32(idx)); err != nil {
			return err
		}
	}
	if n != len(s.index) || n > s.c.maxItems {
		return fmt.Errorf("%d live items, %d indexed, at most %d", n, len(s.index), s.c.maxItems)
	}
	if !slices.Equal(catItems, s.catItems) {
		return fmt.Errorf("items per category %v, recorded %v", catItems, s.catItems)
	}
	pairs := 0
	for i := range s.pairs.slots {
		p := &s.pairs.slots[i]
		if p.key == 0 {
			continue
		}
		pairs++
		a, b := unkey(p.key)
		if a >= b || !live(a) || !live(b) {
			return fmt.Errorf("pair %d, %d", a, b)
		}
		if j, ok := s.pairs.find(p.key); !ok || int(j) != i {
			return fmt.Errorf("pair %s, %s not found in its slot", s.ids[a], s.ids[b])
		}
		if err := checkList(fmt.Sprintf("pair %s, %s", s.ids[a], s.ids[b]), p.cons, a, b); err != nil {
			return err
		}
	}
	if pairs != s.pairs.n || pairs > s.c.maxPairs {
		return fmt.Errorf("%d pairs, %d recorded, at most %d", pairs, s.pairs.n, s.c.maxPairs)
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
