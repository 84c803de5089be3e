package assoc

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
)

// ErrSnapshot is wrapped by the errors of ReadFrom for data that is not a
// valid snapshot.
var ErrSnapshot = errors.New("tailor/assoc: invalid snapshot")

// snapMagic starts every snapshot; its last byte is the format version.
const snapMagic = "tailor-assoc\x01"

// WriteTo writes a snapshot of the model's counts to w, for ReadFrom. The
// snapshot is canonical: two models with the same counts write the same
// bytes, whatever order they learnt in. It is encoded in memory under the
// read lock, then written, so a slow w does not hold up learning.
func (m *Model) WriteTo(w io.Writer) (int64, error) {
	m.mu.RLock()
	b := m.st.encode()
	m.mu.RUnlock()
	n, err := w.Write(b)
	return int64(n), err
}

// ReadFrom replaces the model's counts with the snapshot read from r, to
// the end. The snapshot may come from a model with another Config: lists
// longer than TopK keep their TopK largest counts, and MaxItems and MaxPairs
// are enforced by pruning. On error the model is unchanged; errors for
// malformed data wrap ErrSnapshot.
func (m *Model) ReadFrom(r io.Reader) (int64, error) {
	b, err := io.ReadAll(r)
	n := int64(len(b))
	if err != nil {
		return n, err
	}
	st, err := decode(b, &m.c)
	if err != nil {
		return n, err
	}
	m.mu.Lock()
	m.st = st
	m.mu.Unlock()
	return n, nil
}

type encoder struct{ b []byte }

func (e *encoder) uv(x uint64)   { e.b = binary.AppendUvarint(e.b, x) }
func (e *encoder) f64(x float64) { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(x)) }
func (e *encoder) str(s string)  { e.uv(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) f32(x float32) { e.b = binary.LittleEndian.AppendUint32(e.b, math.Float32bits(x)) }
func (e *encoder) list(l []entry, ord []uint32) {
	l = slices.Clone(l)
	slices.SortFunc(l, func(a, b entry) int { return cmp.Compare(ord[a.item], ord[b.item]) })
	e.uv(uint64(len(l)))
	for _, x := range l {
		e.uv(uint64(ord[x.item]))
		e.f64(x.count)
		e.f32(x.err)
	}
}

func (s *state) encode() []byte {
	// Items and categories in id order.
	var live []uint32
	for idx, id := range s.ids {
		if id != "" {
			live = append(live, uint32(idx))
		}
	}
	slices.SortFunc(live, func(a, b uint32) int { return cmp.Compare(s.ids[a], s.ids[b]) })
	ord := make([]uint32, len(s.ids))
	for o, idx := range live {
		ord[idx] = uint32(o)
	}
	catUsed := make([]bool, len(s.cats))
	for _, idx := range live {
		if c := s.cat[idx]; c >= 0 {
			catUsed[c] = true
		}
	}
	var cats []string
	for c, name := range s.cats {
		if catUsed[c] {
			cats = append(cats, name)
		}
	}
	slices.Sort(cats)

	e := &encoder{b: make([]byte, 0, 1<<16)}
	e.b = append(e.b, snapMagic...)
	e.f64(s.baskets)
	for _, x := range []uint64{s.prunedItems, s.prunedPairs, s.evicted, s.truncated} {
		e.uv(x)
	}
	e.uv(uint64(len(cats)))
	for _, c := range cats {
		e.str(c)
	}
	e.uv(uint64(len(live)))
	for _, idx := range live {
		e.str(s.ids[idx])
		e.f64(s.count[idx])
		c := 0
		if s.cat[idx] >= 0 {
			c, _ = slices.BinarySearch(cats, s.cats[s.cat[idx]])
			c++
		}
		e.uv(uint64(c))
	}
	for _, idx := range live {
		e.list(s.adj[idx], ord)
	}
	type pr struct {
		a, b uint32
		p    *pairSlot
	}
	ps := make([]pr, 0, s.pairs.n)
	for i := range s.pairs.slots {
		p := &s.pairs.slots[i]
		if p.key == 0 {
			continue
		}
		a, b := unkey(p.key)
		a, b = ord[a], ord[b]
		if a > b {
			a, b = b, a
		}
		ps = append(ps, pr{a, b, p})
	}
	slices.SortFunc(ps, func(x, y pr) int {
		if c := cmp.Compare(x.a, y.a); c != 0 {
			return c
		}
		return cmp.Compare(x.b, y.b)
	})
	e.uv(uint64(len(ps)))
	for _, p := range ps {
		e.uv(uint64(p.a))
		e.uv(uint64(p.b - p.a))
		e.f64(p.p.count)
		e.list(p.p.cons, ord)
	}
	return binary.LittleEndian.AppendUint32(e.b, crc32.ChecksumIEEE(e.b))
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrSnapshot}, args...)...)
	}
}

func (d *decoder) uv() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad number")
		return 0
	}
	d.b = d.b[n:]
	return x
}

// size reads a length of elements taking at least minBytes each.
func (d *decoder) size(minBytes int) int {
	x := d.uv()
	if x > uint64(len(d.b)/minBytes) {
		d.fail("length %d exceeds the data", x)
		return 0
	}
	return int(x)
}

func (d *decoder) f64() float64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail("truncated")
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		d.fail("bad count %v", f)
	}
	return f
}

func (d *decoder) f32() float32 {
	if d.err != nil || len(d.b) < 4 {
		d.fail("truncated")
		return 0
	}
	f := math.Float32frombits(binary.LittleEndian.Uint32(d.b))
	d.b = d.b[4:]
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) || f < 0 {
		d.fail("bad count %v", f)
	}
	return f
}

func (d *decoder) str() string {
	n := d.size(1)
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// list reads a consequent list; items are ordinals, which are the indices
// of the decoded state. not are items the list may not hold.
func (d *decoder) list(nItems int, topK int, not ...uint32) []entry {
	n := d.size(13)
	if n == 0 {
		return nil
	}
	l := make([]entry, n)
	for i := range l {
		o := d.uv()
		l[i] = entry{item: uint32(o), count: d.f64(), err: d.f32()}
		switch {
		case d.err != nil:
			return nil
		case o >= uint64(nItems) || slices.Contains(not, uint32(o)):
			d.fail("bad consequent %d", o)
		case i > 0 && l[i].item <= l[i-1].item:
			d.fail("consequents out of order")
		case float64(l[i].err) > l[i].count+1e-6*l[i].count:
			d.fail("error bound above count")
		}
	}
	// Lists are kept sorted by count, largest first.
	slices.SortStableFunc(l, func(a, b entry) int { return -cmp.Compare(a.count, b.count) })
	if len(l) > topK {
		l = slices.Clip(l[:topK])
	}
	return l
}

func decode(b []byte, c *config) (*state, error) {
	name := snapMagic[:len(snapMagic)-1]
	switch {
	case !bytes.HasPrefix(b, []byte(name)):
		return nil, fmt.Errorf("%w: not a snapshot", ErrSnapshot)
	case len(b) < len(snapMagic)+4:
		return nil, fmt.Errorf("%w: truncated", ErrSnapshot)
	case b[len(name)] != snapMagic[len(name)]:
		return nil, fmt.Errorf("%w: unknown version %d", ErrSnapshot, b[len(name)])
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrSnapshot)
	}
	d := &decoder{b: body[len(snapMagic):]}
	s := newState(c)
	s.baskets = d.f64()
	s.prunedItems, s.prunedPairs, s.evicted, s.truncated = d.uv(), d.uv(), d.uv(), d.uv()
	nc := d.size(1)
	for i := range nc {
		name := d.str()
		if d.err == nil && (name == "" || i > 0 && name <= s.cats[i-1]) {
			d.fail("categories out of order")
		}
		s.cats = append(s.cats, name)
		s.catIndex[name] = int32(i)
	}
	s.catItems = make([]int, nc)
	s.popCat = make([][]uint32, nc)
	ni := d.size(10)
	s.ids = make([]string, 0, ni)
	s.count = make([]float64, 0, ni)
	s.cat = make([]int32, 0, ni)
	for i := range ni {
		id := d.str()
		cnt := d.f64()
		cat := d.uv()
		if d.err != nil {
			break
		}
		switch {
		case id == "" || i > 0 && id <= s.ids[i-1]:
			d.fail("items out of order")
		case cnt > s.baskets*(1+1e-9):
			d.fail("item %q counted in more baskets than there are", id)
		case cat > uint64(nc):
			d.fail("bad category of item %q", id)
		}
		s.ids = append(s.ids, id)
		s.index[id] = uint32(i)
		s.count = append(s.count, cnt)
		s.cat = append(s.cat, int32(cat)-1)
		if cat > 0 && d.err == nil {
			s.catItems[cat-1]++
		}
	}
	s.adj = make([][]entry, ni)
	for i := range ni {
		if d.err != nil {
			break
		}
		s.adj[i] = d.list(ni, c.topK, uint32(i))
	}
	np := d.size(11)
	s.pairs.reserve(np)
	var prev uint64
	for i := range np {
		a := d.uv()
		b := a + d.uv()
		cnt := d.f64()
		if d.err != nil {
			break
		}
		k := a<<32 | b
		switch {
		case b >= uint64(ni) || a == b:
			d.fail("bad pair %d, %d", a, b)
		case i > 0 && k <= prev:
			d.fail("pairs out of order")
		}
		prev = k
		cons := d.list(ni, c.topK, uint32(a), uint32(b))
		if d.err == nil {
			s.pairs.reserve(1)
			p := &s.pairs.slots[s.pairs.add(k)]
			p.count, p.cons = cnt, cons
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the end", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	s.rebuildPopular()
	for len(s.index) > c.maxItems {
		s.pruneItems()
	}
	for s.pairs.n > c.maxPairs {
		s.prunePairs()
	}
	return s, nil
}
