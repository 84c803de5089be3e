package postgres

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

func TestPurchaseEncoding(t *testing.T) {
	for _, p := range []store.Purchase{
		{ID: "v", Time: time.Date(2026, 12, 7, 19, 31, 55, 123456789, time.UTC)},
		{ID: "", Time: time.Time{}, Items: []store.Item{{ID: ""}}},
		{ID: "a\x00b\xff", Time: time.Unix(-1<<40, 999_999_999).UTC(),
			Items: []store.Item{{ID: "sku-1041", Category: "books"}, {ID: "sku-1042", Category: "books"}, {ID: "sku-2", Category: ""},
				{ID: "sku-20", Category: "toys\x00"}, {ID: "ü", Category: "toys\x00"}},
			Prior: []string{"", "sku-1", "sku-10", "sku-10", "sku-100", "t"}},
		// Unsorted ids still round-trip (only less compactly).
		{ID: "x", Time: time.Unix(1<<40, 0).UTC(), Items: []store.Item{{ID: "b", Category: "c"}, {ID: "a", Category: "c"}},
			Prior: []string{"zz", "a", "zzz"}},
	} {
		b := appendPurchase(nil, &p)
		got, err := decodePurchase(b)
		if err != nil {
			t.Fatalf("decode %+v: %v", p, err)
		}
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", p) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", got, p)
		}
		// Every cut of the encoding is an error, not a panic or a
		// shorter purchase.
		for n := range len(b) {
			if _, err := decodePurchase(b[:n]); !errors.Is(err, errEntry) {
				t.Fatalf("%+v cut to %d of %d bytes: %v, want errEntry", p, n, len(b), err)
			}
		}
		if _, err := decodePurchase(append(slices.Clip(b), 0)); !errors.Is(err, errEntry) {
			t.Fatalf("%+v with a byte after its end: %v, want errEntry", p, err)
		}
	}
}

// TestPurchaseEncodingCompact: ids sharing prefixes, as sorted item ids
// do, and categories repeated from item to item are kept once.
func TestPurchaseEncodingCompact(t *testing.T) {
	p := store.Purchase{ID: "0d9f6c52-3b1e-4c7a-9a51-5c2f3e0b7d41", Time: time.Now()}
	for i := range 3 {
		p.Items = append(p.Items, store.Item{ID: fmt.Sprintf("sku-%05d", 100+i), Category: "garden"})
	}
	for i := range 200 {
		p.Prior = append(p.Prior, fmt.Sprintf("sku-%05d", 1000+i*7))
	}
	b := appendPurchase(nil, &p)
	plain := len(p.ID) + 8
	for _, it := range p.Items {
		plain += len(it.ID) + len(it.Category)
	}
	for _, id := range p.Prior {
		plain += len(id)
	}
	if len(b) > plain/2 {
		t.Fatalf("%d bytes for %d bytes of ids, categories and time; want at most half", len(b), plain)
	}
	t.Logf("%d bytes for %d of ids, categories and time", len(b), plain)
}

func TestDecodePurchaseRejectsOtherFormats(t *testing.T) {
	for _, b := range [][]byte{nil, {}, {0}, {2, 0}, []byte(`{"id":"v"}`)} {
		if _, err := decodePurchase(b); !errors.Is(err, errEntry) {
			t.Errorf("decode %q: %v, want errEntry", b, err)
		}
	}
	// A count larger than what follows fails before allocating it.
	b := []byte{journalFormat, 1, 'v', 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, err := decodePurchase(b); !errors.Is(err, errEntry) {
		t.Errorf("a huge item count: %v, want errEntry", err)
	}
}

// TestPurchaseGolden: entries as this store has written them to journal
// tables decode to the same purchases, and are written the same way: a
// change of the encoding breaks the journals already kept, and fails
// here.
func TestPurchaseGolden(t *testing.T) {
	for _, c := range []struct {
		entry string
		p     store.Purchase
	}{
		{"\x01\x01v\xff\xdb\x8f\xf9\xce\x03\x00\x01\x00\x01a\x00\x00", store.Purchase{ID: "v", Items: []store.Item{{ID: "a"}}}},
		{"\x01\x09visitor-1\xd6\xa6\xb8\xb1\x0d\x95\x9a\xef:\x05\x00\x08sku-1041\x06books\x07\x012\x00\x04\x012\x01\x05\x010\x05toys\x00\x02\xc3\xbc\x00\x05\x00\x06banner\x00\x09moneyball\x09\x01s\x00\x06\xe6\x97\xa5\xe6\x9c\xac\x06\x03\xe8\xaa\x9e",
			store.Purchase{ID: "visitor-1", Time: time.Date(2026, 12, 7, 19, 31, 55, 123456789, time.UTC),
				Items: []store.Item{{ID: "sku-1041", Category: "books"}, {ID: "sku-1042", Category: "books"}, {ID: "sku-2"},
					{ID: "sku-20", Category: "toys"}, {ID: "ü", Category: "toys"}},
				Prior: []string{"banner", "moneyball", "moneyballs", "日本", "日本語"}}},
		{"\x01\x03old\xff\xab\xca\x9c\x10\x01\x01\x00\x01x\x02c\x01\x00\x01a",
			store.Purchase{ID: "old", Time: time.Date(1901, 1, 1, 0, 0, 0, 1, time.UTC),
				Items: []store.Item{{ID: "x", Category: "c"}}, Prior: []string{"a"}}},
	} {
		if p, err := decodePurchase([]byte(c.entry)); err != nil || fmt.Sprintf("%#v", p) != fmt.Sprintf("%#v", c.p) {
			t.Errorf("decode %q = %#v, %v\nwant %#v", c.entry, p, err, c.p)
		}
		if b := appendPurchase(nil, &c.p); string(b) != c.entry {
			t.Errorf("encode %+v = %q\nwant %q", c.p, b, c.entry)
		}
	}
}
