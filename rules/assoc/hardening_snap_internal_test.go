package assoc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"runtime"
	"testing"
)

type snapB struct {
	hash  uint64
	n     uint64
	items []uint64 // raw varints as written (first absolute, then deltas)
}

func buildSnap(baskets uint64, thr uint64, items []string, counts []uint64, bs []snapB) []byte {
	e := &encoder{}
	e.b = append(e.b, snapMagic...)
	e.uv(baskets)
	e.uv(0)
	e.uv(0)
	e.u64(thr)
	e.uv(0) // no categories
	e.uv(uint64(len(items)))
	for i, id := range items {
		e.str(id)
		e.uv(counts[i])
		e.uv(0)
	}
	e.uv(uint64(len(bs)))
	for _, b := range bs {
		e.u64(b.hash)
		e.uv(b.n)
		e.uv(uint64(len(b.items)))
		for _, o := range b.items {
			e.uv(o)
		}
	}
	return binary.LittleEndian.AppendUint32(e.b, crc32.ChecksumIEEE(e.b))
}

// Corrupt baskets are refused: a delta that wraps around (unsorted or
// repeated items), a basket of more than 2^32 visitors, item counts that
// disagree with the baskets when all are kept.
func TestDecodeRefusesCorruptBaskets(t *testing.T) {
	cfg := &config{maxItems: 100, maxSample: 100, maxPairs: 100, maxCache: 100}
	huge := uint64(1)<<32 + 1
	for name, snap := range map[string][]byte{
		"wrapping delta": buildSnap(1, math.MaxUint64, []string{"a", "b", "c"}, []uint64{1, 1, 1},
			[]snapB{{hash: 1, n: 1, items: []uint64{2, math.MaxUint64 - 2}}}),
		"repeated item": buildSnap(1, math.MaxUint64, []string{"a", "b", "c"}, []uint64{1, 1, 1},
			[]snapB{{hash: 1, n: 1, items: []uint64{1, math.MaxUint64}}}),
		"2^32 visitors": buildSnap(huge, math.MaxUint64, []string{"a", "b"}, []uint64{huge, huge},
			[]snapB{{hash: 1, n: huge, items: []uint64{0, 0}}}),
		"counts": buildSnap(3, math.MaxUint64, []string{"a", "b"}, []uint64{0, 3},
			[]snapB{{hash: 1, n: 3, items: []uint64{0, 0}}}),
	} {
		if _, err := decode(snap, cfg); !errors.Is(err, ErrSnapshot) {
			t.Errorf("%s: error %v, want ErrSnapshot", name, err)
		}
	}
}

// A small snapshot holding one big basket is sampled before its pairs are
// counted: reading it costs what the bounds allow, not the square of its
// size.
func TestDecodeSamplesBigBaskets(t *testing.T) {
	for _, k := range []int{2000, 8000} {
		ids := make([]string, k)
		counts := make([]uint64, k)
		its := make([]uint64, k)
		for i := range ids {
			ids[i] = fmt.Sprintf("%05d", i)
			counts[i] = 1
		}
		snap := buildSnap(1, math.MaxUint64, ids, counts, []snapB{{hash: 1, n: 1, items: its}})
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		st, err := decode(snap, &config{maxItems: 1 << 20, maxSample: 100, maxPairs: 100, maxCache: 100})
		runtime.ReadMemStats(&ms1)
		if err != nil {
			t.Fatal(err)
		}
		if mb := (ms1.TotalAlloc - ms0.TotalAlloc) >> 20; mb > 64 || st.sItems > 100 || st.rowsLen/2 > 100 {
			t.Errorf("k=%d: %d MB allocated, %d items and %d pairs kept", k, mb, st.sItems, st.rowsLen/2)
		}
	}
}
