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

// TestEntryGolden: entries as this store has written them to files decode
// to the same purchases, and are written the same way: a change of the
// encoding breaks the journals of existing files, and fails here.
func TestEntryGolden(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 123456789, time.UTC)
	old := time.Date(1960, 1, 1, 0, 0, 0, 5, time.UTC)
	for _, c := range []struct {
		entry string
		at    time.Time
		p     store.Purchase
	}{
		{"\x18\xee\xf0`\xd9x\x0d\x15\x09visitor-1\x05\x95\x9a\xef:\x02\x09moneyball\x05books\x0bpotato-head\x00\x05\x00\x06banner\x00\x03cap\x03\x04sule\x00\x06\xe6\x97\xa5\xe6\x9c\xac\x06\x03\xe8\xaa\x9e",
			at, store.Purchase{ID: "visitor-1", Time: at.Add(-3 * time.Second),
				Items: []store.Item{{ID: "moneyball", Category: "books"}, {ID: "potato-head"}},
				Prior: []string{"banner", "cap", "capsule", "日本", "日本語"}}},
		{"\x18\xee\xf0`\xd9x\x0d\x15\x01v\xbf\xea\xc3\xaa\xdc\x03\x00\x01\x01x\x01c\x00",
			at, store.Purchase{ID: "v", Items: []store.Item{{ID: "x", Category: "c"}}}},
		{"\xfb\x9e\xb2\x02\x83\xb5\x00\x05\x01v\x01\xff\x93\xeb\xdc\x03\x01\x01x\x00\x01\x00\x01a",
			old, store.Purchase{ID: "v", Time: time.Date(1959, 12, 31, 23, 59, 59, 999999999, time.UTC),
				Items: []store.Item{{ID: "x"}}, Prior: []string{"a"}}},
	} {
		p, gotAt, err := decodeEntry([]byte(c.entry))
		if err != nil || !reflect.DeepEqual(p, c.p) || !gotAt.Equal(c.at) {
			t.Errorf("decode %q = %+v at %v, %v\nwant %+v at %v", c.entry, p, gotAt, err, c.p, c.at)
		}
		if b := appendEntry(nil, c.at.UnixNano(), &c.p); string(b) != c.entry {
			t.Errorf("encode %+v at %v = %q\nwant %q", c.p, c.at, b, c.entry)
		}
	}
}
