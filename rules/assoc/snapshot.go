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
const snapMagic = "tailor-assoc\x02"

// errOldSnapshot is wrapped by the error of ReadFrom for a snapshot of an
// earlier format, which kept counts this version cannot take over.
var errOldSnapshot = errors.New("a snapshot of an earlier format, which this version cannot read")

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
// the end. The snapshot holds the baskets the model counts from; the
// counts are made again from them as they are read (a few seconds for a
// million baskets of 20 items). It may come from a model with another
// Config: MaxItems, MaxSample and MaxPairs are enforced by pruning and
// halving the sample. On error the model is unchanged; errors for
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

func (e *encoder) uv(x uint64)  { e.b = binary.AppendUvarint(e.b, x) }
func (e *encoder) u64(x uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, x) }
func (e *encoder) str(s string) { e.uv(uint64(len(s))); e.b = append(e.b, s...) }

// encode writes the items (in id order), the categories and the sample
// (in hash order, items as ordinals of the item list): a canonical form.
func (s *state) encode() []byte {
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

	e := &encoder{b: make([]byte, 0, 64+16*len(live)+int(s.sItems)*2+len(s.sample)*12)}
	e.b = append(e.b, snapMagic...)
	e.uv(uint64(s.baskets))
	e.uv(s.prunedItems)
	e.uv(uint64(s.halvings))
	e.u64(s.thr)
	e.uv(uint64(len(cats)))
	for _, c := range cats {
		e.str(c)
	}
	e.uv(uint64(len(live)))
	for _, idx := range live {
		e.str(s.ids[idx])
		e.uv(uint64(s.count[idx]))
		c := 0
		if s.cat[idx] >= 0 {
			c, _ = slices.BinarySearch(cats, s.cats[s.cat[idx]])
			c++
		}
		e.uv(uint64(c))
	}
	var bs []int32
	for i := range s.sample {
		if s.sample[i].n > 0 {
			bs = append(bs, int32(i))
		}
	}
	slices.SortFunc(bs, func(a, b int32) int { return cmp.Compare(s.sample[a].hash, s.sample[b].hash) })
	e.uv(uint64(len(bs)))
	var os []uint32
	for _, bi := range bs {
		b := &s.sample[bi]
		e.u64(b.hash)
		e.uv(uint64(b.n))
		os = os[:0]
		for _, idx := range b.items {
			os = append(os, ord[idx])
		}
		slices.Sort(os)
		e.uv(uint64(len(os)))
		prev := uint32(0)
		for i, o := range os {
			if i == 0 {
				e.uv(uint64(o))
			} else {
				e.uv(uint64(o - prev - 1))
			}
			prev = o
		}
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

func (d *decoder) u64() uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail("truncated")
		return 0
	}
	x := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
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

func (d *decoder) str() string {
	n := d.size(1)
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func decode(b []byte, c *config) (*state, error) {
	name := snapMagic[:len(snapMagic)-1]
	switch {
	case !bytes.HasPrefix(b, []byte(name)):
		return nil, fmt.Errorf("%w: not a snapshot", ErrSnapshot)
	case len(b) < len(snapMagic)+4:
		return nil, fmt.Errorf("%w: truncated", ErrSnapshot)
	case b[len(name)] < snapMagic[len(name)]:
		return nil, fmt.Errorf("%w: version %d: %w", ErrSnapshot, b[len(name)], errOldSnapshot)
	case b[len(name)] != snapMagic[len(name)]:
		return nil, fmt.Errorf("%w: unknown version %d", ErrSnapshot, b[len(name)])
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrSnapshot)
	}
	d := &decoder{b: body[len(snapMagic):]}
	s := newState(c)
	s.baskets = int64(d.uv())
	s.prunedItems = d.uv()
	s.halvings = uint32(d.uv())
	s.thr = d.u64()
	if d.err == nil && s.baskets < 0 {
		d.fail("%d baskets", s.baskets)
	}
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
	ni := d.size(3)
	for i := range ni {
		id := d.str()
		count := d.uv()
		cat := d.uv()
		if d.err != nil {
			break
		}
		switch {
		case id == "" || i > 0 && id <= s.ids[i-1]:
			d.fail("items out of order")
		case count > uint64(s.baskets):
			d.fail("item %q counted in more baskets than there are", id)
		case cat > uint64(nc):
			d.fail("bad category of item %q", id)
		}
		idx := s.intern(id)
		s.count[idx] = int64(count)
		if cat > 0 && d.err == nil {
			s.cat[idx] = int32(cat) - 1
			s.catItems[cat-1]++
		}
	}
	nb := d.size(11)
	var prev uint64
	var total uint64
	for i := range nb {
		h := d.u64()
		n := d.uv()
		k := d.size(1)
		if d.err != nil {
			break
		}
		switch {
		case i > 0 && h <= prev:
			d.fail("baskets out of order")
		case h > s.thr:
			d.fail("a basket above the sampling threshold")
		case n == 0 || n > math.MaxUint32 || n > uint64(s.baskets) || total+n > uint64(s.baskets):
			d.fail("%d visitors of a basket", n)
		case k > ni:
			d.fail("a basket of %d items, of %d", k, ni)
		}
		prev, total = h, total+n
		items := make([]uint32, k)
		for j := range items {
			o := d.uv()
			if j > 0 {
				if o >= uint64(ni) { // and the sum would be too, or wrap
					d.fail("bad item in a basket")
					break
				}
				o += uint64(items[j-1]) + 1
			}
			if d.err == nil && o >= uint64(ni) {
				d.fail("bad item %d in a basket", o)
			}
			items[j] = uint32(o)
		}
		if d.err != nil {
			break
		}
		s.byHash[h] = int32(len(s.sample))
		s.sample = append(s.sample, basket{hash: h, items: items, n: uint32(n)})
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the end", len(d.b))
	}
	if d.err == nil && s.thr == math.MaxUint64 && total != uint64(s.baskets) {
		d.fail("%d baskets sampled of %d, with all sampled", total, s.baskets)
	}
	if d.err != nil {
		return nil, d.err
	}
	// Sample before counting pairs, if the snapshot is past this model's
	// bounds, so that reading never counts more than they allow.
	for s.thr > 0 && s.pastBounds() {
		s.thr >>= 1
		s.halvings++
		kept := s.sample[:0]
		clear(s.byHash)
		for _, b := range s.sample {
			if b.hash <= s.thr {
				s.byHash[b.hash] = int32(len(kept))
				kept = append(kept, b)
			}
		}
		s.sample = kept
	}
	s.derive()
	if s.thr == math.MaxUint64 && s.prunedItems == 0 {
		for idx, id := range s.ids {
			if s.count[idx] != s.sCount[idx] {
				return nil, fmt.Errorf("%w: item %q counted in %d baskets, in %d of the baskets", ErrSnapshot, id, s.count[idx], s.sCount[idx])
			}
		}
	}
	s.rebuildPopular()
	for len(s.index) > c.maxItems {
		s.pruneItems()
	}
	s.bound()
	return s, nil
}
