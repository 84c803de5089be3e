package store

import (
	"fmt"
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
