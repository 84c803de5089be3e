package assoc

import "math/bits"

// A pairSlot is a two-item antecedent: how many baskets hold both items,
// and its consequents. key is pkey of the two items, 0 for an empty slot (a
// pair has two different items, so its key is never 0).
type pairSlot struct {
	key   uint64
	count float64
	cons  []entry
}

// pairTable is a hash table of pairs with linear probing, whose slots hold
// the records themselves: finding a pair costs one memory access where a Go
// map and a separate array of records cost two or three, and learning is
// bound by memory accesses. Slot indices stay valid until the table grows
// (see reserve) or is filtered. The table grows up to the size MaxPairs
// needs, and never shrinks.
type pairTable struct {
	slots []pairSlot // len is 0 or a power of two
	n     int
	shift uint // 64 - log2(len(slots))
}

// maxLoad is the load factor the table grows at, in quarters.
const maxLoad = 3

func (t *pairTable) home(k uint64) uint64 { return (k * 0x9E3779B97F4A7C15) >> t.shift }

// find returns the slot of k, or the empty slot where k would go.
func (t *pairTable) find(k uint64) (int32, bool) {
	if len(t.slots) == 0 {
		return -1, false
	}
	mask := uint64(len(t.slots) - 1)
	for i := t.home(k); ; i = (i + 1) & mask {
		switch t.slots[i].key {
		case k:
			return int32(i), true
		case 0:
			return int32(i), false
		}
	}
}

// get returns the slot of k, or nil.
func (t *pairTable) get(k uint64) *pairSlot {
	if i, ok := t.find(k); ok {
		return &t.slots[i]
	}
	return nil
}

// add returns the slot of k, creating it; the table must have room (see
// reserve).
func (t *pairTable) add(k uint64) int32 {
	i, ok := t.find(k)
	if !ok {
		t.slots[i] = pairSlot{key: k}
		t.n++
	}
	return i
}

// reserve makes room for extra more pairs, so that adding them moves no
// slot.
func (t *pairTable) reserve(extra int) {
	need := t.n + extra
	if need*4 <= len(t.slots)*maxLoad {
		return
	}
	t.resize(need)
}

// resize moves the pairs into a table sized for n pairs.
func (t *pairTable) resize(n int) {
	size := 16
	if n*4 > size*maxLoad {
		size = 1 << bits.Len(uint(n*4/maxLoad))
	}
	old := t.slots
	t.slots = make([]pairSlot, size)
	t.shift = uint(64 - bits.TrailingZeros(uint(size)))
	t.n = 0
	for i := range old {
		if old[i].key != 0 {
			j, _ := t.find(old[i].key)
			t.slots[j] = old[i]
			t.n++
		}
	}
}

// filter keeps the pairs for which keep returns true; keep may change the
// slot's consequents, and may be called twice for a pair that a removal
// moves. The table keeps its size: it never holds more than it did.
func (t *pairTable) filter(keep func(*pairSlot) bool) (dropped int) {
	for i := 0; i < len(t.slots); {
		if p := &t.slots[i]; p.key == 0 || keep(p) {
			i++
			continue
		}
		t.remove(uint64(i))
		dropped++
		// Slot i is empty now, or holds a pair moved back from further on:
		// look at it again.
	}
	return dropped
}

// remove empties slot i, moving back the pairs after it that would no
// longer be found (Knuth's algorithm R for linear probing), so that removals
// need no tombstones and no rehashing.
func (t *pairTable) remove(i uint64) {
	mask := uint64(len(t.slots) - 1)
	for j := i; ; {
		j = (j + 1) & mask
		if t.slots[j].key == 0 {
			break
		}
		// The pair at j stays if its home is cyclically in (i, j].
		k := t.home(t.slots[j].key)
		if i <= j && i < k && k <= j || i > j && (i < k || k <= j) {
			continue
		}
		t.slots[i] = t.slots[j]
		i = j
	}
	t.slots[i] = pairSlot{}
	t.n--
}
