package redis

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

func TestPurchaseEncoding(t *testing.T) {
	prior := make([]string, 500)
	for i := range prior {
		prior[i] = fmt.Sprintf("sku-%03d", i)
	}
	for _, p := range []store.Purchase{
		{ID: "v", Items: []store.Item{{ID: "a"}}},
		{ID: "visitor-1", Time: time.Date(2026, 12, 7, 19, 31, 55, 123456789, time.UTC),
			Items: []store.Item{{ID: "sku-1041", Category: "books"}, {ID: "sku-1077", Category: "books"}, {ID: "tea", Category: ""}},
			Prior: []string{"banner", "moneyball", "moneyballs"}},
		{ID: "old", Time: time.Date(1901, 1, 1, 0, 0, 0, 1, time.UTC), Items: []store.Item{{ID: "x", Category: "c"}}, Prior: prior},
	} {
		enc := appendPurchase(nil, &p)
		got, err := decodePurchase(string(enc))
		if err != nil || !reflect.DeepEqual(got, p) {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", p, got, err)
		}
		// Every truncation, and a byte too many, is an error, not a panic
		// or another purchase.
		for n := range len(enc) {
			if _, err := decodePurchase(string(enc[:n])); err == nil {
				t.Fatalf("%d of the %d bytes of %q decoded", n, len(enc), enc)
			}
		}
		if _, err := decodePurchase(string(enc) + "\x00"); err == nil {
			t.Fatalf("%q with a byte more decoded", enc)
		}
	}
	// Front coding: 500 Prior ids of 7 bytes take 3 bytes each.
	enc := appendPurchase(nil, &store.Purchase{ID: "v", Items: []store.Item{{ID: "x"}}, Prior: prior})
	if len(enc) > 1600 {
		t.Errorf("500 prior ids encoded in %d bytes, want at most 1600", len(enc))
	}
}

func TestJournalCursorEncoding(t *testing.T) {
	if c := new(journalCursor); c.String() != "" {
		t.Fatalf("the empty cursor is %q, want \"\"", c.String())
	}
	if c, err := parseJournalCursor(""); err != nil || *c != (journalCursor{}) {
		t.Fatalf(`parseJournalCursor("") = %v, %v`, c, err)
	}
	now := uint64(time.Now().UnixMilli())
	for _, fill := range []int{1, 10, buckets} {
		var c journalCursor
		for range fill {
			c[rand.IntN(buckets)] = streamID{now - rand.Uint64N(3600_000), rand.Uint64N(3)}
		}
		if fill == buckets { // every bucket, the most a cursor holds
			for b := range c {
				c[b] = streamID{now - rand.Uint64N(3600_000), 0}
			}
		}
		c[buckets-1] = streamID{now, 0} // the last bucket too
		s := c.String()
		got, err := parseJournalCursor(s)
		if err != nil || *got != c {
			t.Fatalf("cursor of %d buckets: parse(%q) differs, %v", fill, s, err)
		}
		if fill == buckets && len(s) > 7<<10 {
			t.Errorf("a cursor through every bucket takes %d bytes, want at most 7 KB", len(s))
		}
		t.Logf("a cursor through %d buckets: %d bytes", fill, len(s))
	}
	var c journalCursor
	c[3] = streamID{5, 1}
	good := c.String()
	for _, bad := range []string{"x", "!!!", good[:len(good)-1], "Ag", "AQ", good + "AA",
		(&journalCursor{1023: {7, 0}}).String() + "AAAA"} {
		if _, err := parseJournalCursor(bad); err == nil || !strings.Contains(err.Error(), "journal cursor") {
			t.Errorf("parseJournalCursor(%q) = %v, want an error naming the cursor", bad, err)
		}
	}
}

// TestPurchaseGolden: entries as this store has written them to journals
// decode to the same purchases, and are written the same way: a change of
// the encoding breaks the journals already kept, and fails here.
func TestPurchaseGolden(t *testing.T) {
	for _, c := range []struct {
		entry string
		p     store.Purchase
	}{
		{"\x01\x01v\x00\x01\x00\x01a\x00\x00", store.Purchase{ID: "v", Items: []store.Item{{ID: "a"}}}},
		{"\x01\x09visitor-1\x01\xd6\xa6\xb8\xb1\x0d\x95\x9a\xef:\x03\x00\x08sku-1041\x05books\x06\x0277\x05books\x00\x03tea\x00\x05\x00\x06banner\x00\x09moneyball\x09\x01s\x00\x06\xe6\x97\xa5\xe6\x9c\xac\x06\x03\xe8\xaa\x9e",
			store.Purchase{ID: "visitor-1", Time: time.Date(2026, 12, 7, 19, 31, 55, 123456789, time.UTC),
				Items: []store.Item{{ID: "sku-1041", Category: "books"}, {ID: "sku-1077", Category: "books"}, {ID: "tea"}},
				Prior: []string{"banner", "moneyball", "moneyballs", "日本", "日本語"}}},
		{"\x01\x03old\x01\xff\xab\xca\x9c\x10\x01\x01\x00\x01x\x01c\x01\x00\x01a",
			store.Purchase{ID: "old", Time: time.Date(1901, 1, 1, 0, 0, 0, 1, time.UTC),
				Items: []store.Item{{ID: "x", Category: "c"}}, Prior: []string{"a"}}},
	} {
		if p, err := decodePurchase(c.entry); err != nil || !reflect.DeepEqual(p, c.p) {
			t.Errorf("decode %q = %+v, %v\nwant %+v", c.entry, p, err, c.p)
		}
		if b := appendPurchase(nil, &c.p); string(b) != c.entry {
			t.Errorf("encode %+v = %q\nwant %q", c.p, b, c.entry)
		}
	}
}
