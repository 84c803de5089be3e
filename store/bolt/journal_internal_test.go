package bolt

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

func TestEntryRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 123456789, time.UTC)
	var prior []string
	for i := range 100 {
		prior = append(prior, fmt.Sprintf("product-%04d", i))
	}
	for _, c := range []struct {
		name string
		at   time.Time
		p    store.Purchase
	}{
		{"typical", at, store.Purchase{ID: "visitor-1", Time: at.Add(-3 * time.Second),
			Items: []store.Item{{ID: "moneyball", Category: "books"}, {ID: "potato-head"}},
			Prior: []string{"banner", "cap", "capsule", "z"}}},
		{"no time, no prior", at, store.Purchase{ID: "v", Items: []store.Item{{ID: "x"}}}},
		{"an order from the future", at, store.Purchase{ID: "v", Time: at.AddDate(300, 0, 0), Items: []store.Item{{ID: "x"}}}},
		{"before 1970", time.Date(1960, 1, 1, 0, 0, 0, 5, time.UTC), store.Purchase{ID: "v", Time: time.Date(1959, 12, 31, 23, 59, 59, 999999999, time.UTC), Items: []store.Item{{ID: "x"}}}},
		{"unicode and empty ids", at, store.Purchase{ID: "visiteur-é", Time: at, Items: []store.Item{{ID: "", Category: "ç"}, {ID: "日本"}}, Prior: []string{"", "日", "日本", "日本語"}}},
		{"many priors", at, store.Purchase{ID: "v", Time: at, Items: []store.Item{{ID: "x", Category: "c"}}, Prior: prior}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := appendEntry([]byte("prefix"), c.at.UnixNano(), &c.p)
			if string(b[:6]) != "prefix" {
				t.Fatal("appendEntry overwrote what it appends to")
			}
			p, gotAt, err := decodeEntry(b[6:])
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(p, c.p) || !gotAt.Equal(c.at) {
				t.Fatalf("decoded %+v at %v\nwant    %+v at %v", p, gotAt, c.p, c.at)
			}
		})
	}
	// The sorted prior ids are front-coded: the 100 ids of 12 bytes share
	// their first 9 or 10.
	p := store.Purchase{ID: "v", Time: at, Items: []store.Item{{ID: "x"}}, Prior: prior}
	if n := len(appendEntry(nil, at.UnixNano(), &p)); n > 8+20+100*5 {
		t.Errorf("an entry with 100 prior ids of 12 bytes takes %d bytes", n)
	}
}

func TestEntryMalformed(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	p := store.Purchase{ID: "visitor", Time: at, Items: []store.Item{{ID: "a", Category: "b"}}, Prior: []string{"ab", "abc"}}
	b := appendEntry(nil, at.UnixNano(), &p)
	for n := range len(b) {
		if _, _, err := decodeEntry(b[:n]); err == nil {
			t.Errorf("an entry cut to %d of %d bytes decoded", n, len(b))
		}
	}
	if _, _, err := decodeEntry(append(b[:len(b):len(b)], 0)); err == nil {
		t.Error("an entry with a trailing byte decoded")
	}
	// A prior id sharing more than the one before has.
	bad := appendEntry(nil, at.UnixNano(), &store.Purchase{ID: "v", Prior: []string{"a"}})
	bad[len(bad)-3] = 2 // the shared length of "a", after its count
	if _, _, err := decodeEntry(bad); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("an entry whose first prior id shares 2 bytes: %v", err)
	}
	// Nanoseconds out of range.
	bad = appendEntry(nil, at.UnixNano(), &store.Purchase{ID: "v", Time: at})
	bad = append(binary.AppendUvarint(bad[:8+2+1], 1e9), 0, 0) // after the id and the seconds
	if _, _, err := decodeEntry(bad); err == nil {
		t.Error("an entry with 1e9 nanoseconds decoded")
	}
}
