package store

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestChurnKeepsUsedTable: when the strings of the dropped events are
// still in use, a store's folds never decode the ring to encode it whole;
// when they are not, the table is rebuilt.
func TestChurnKeepsUsedTable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		refs    int // distinct referrers, strings that no map keeps
		rebuilt bool
	}{{refs: 10, rebuilt: false}, {refs: 1 << 20, rebuilt: true}} {
		lim := Limits{Recent: 20}
		t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		p := New("v")
		var base int64
		rebuilt := false
		for i := 1; i <= 200; i++ {
			p.Apply(lim, Event{ID: EventID("a", uint64(i)), Type: TypePage, Time: t0.Add(time.Duration(i) * time.Second),
				Path: "/", Referrer: fmt.Sprintf("https://r.example/%d", i%tc.refs)})
			b, err := Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			if p, err = Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			if i == 1 {
				base = p.Recent.base
			} else if p.Recent.base != base {
				rebuilt = true
			}
			if p.Recent.churn > p.Recent.Len() {
				t.Fatalf("refs %d, event %d: churn %d", tc.refs, i, p.Recent.churn)
			}
			if len(p.Recent.tab) > 2*min(lim.Recent, tc.refs)+4 {
				t.Fatalf("refs %d, event %d: table of %d", tc.refs, i, len(p.Recent.tab))
			}
		}
		if rebuilt != tc.rebuilt {
			t.Errorf("refs %d: rebuilt %v, want %v", tc.refs, rebuilt, tc.rebuilt)
		}
	}
}

// TestDamagedRingKeepsItsLength: events that do not decode are zero
// events, so that Len and At agree whatever the stored bytes.
func TestDamagedRingKeepsItsLength(t *testing.T) {
	t.Parallel()
	for _, r := range []Ring{
		{raw: "\x00\x00", rawN: 1},             // an empty event
		{raw: "\x05\x01", rawN: 3},             // a length past the end
		{raw: "\x02\x02\x09", rawN: 2},         // a ref past the table
		{raw: "\x03\x01\x00\x00", rawN: 1},     // a sequenced ID without its producer
		{raw: "\x04\x02\x00\x00\x00", rawN: 1}, // bytes left over
	} {
		n := r.Len()
		for i := range n {
			if e := r.At(i); e.ID != "" || !e.Time.IsZero() {
				t.Errorf("%q: At(%d) = %+v, want a zero event", r.raw, i, e)
			}
		}
		if r.Len() != n || len(r.Events()) != n {
			t.Errorf("%q: Len %d then %d, %d events", r.raw, n, r.Len(), len(r.Events()))
		}
	}
}

// TestLongProducer: the IDs of a producer longer than maxSeqProducer are
// stored inline, and a ref to such a producer does not decode.
func TestLongProducer(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("p", maxSeqProducer+1)
	p := New("v")
	p.Apply(Limits{}, Event{ID: EventID(long, 7), Type: TypePage, Path: "/"})
	b, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if id := q.Recent.At(0).ID; id != long+":7" {
		t.Fatalf("ID %q", id)
	}
	// A crafted ring: one event refers to the long producer, thousands of
	// others are empty. Decoding allocates in proportion to the events,
	// not to their number times the producer's length.
	var raw []byte
	raw = append(raw, 4, gSeqID, 0, 0, 7)
	for range 4096 {
		raw = append(raw, 0)
	}
	r := Ring{raw: string(raw), rawN: 4097, tab: []string{long}}
	if e := r.At(0); e.ID != "" {
		t.Fatalf("a ref to a long producer decoded as %q", e.ID)
	}
}
