package store_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

func richProfile() *store.Profile {
	p := store.New("visitor-ü")
	t0 := time.Date(2026, 4, 1, 12, 30, 0, 123456789, time.UTC)
	p.Apply(store.Limits{Recent: 5},
		store.Event{ID: "a:1", Type: store.TypePage, Time: t0, Path: "/", Referrer: "news.example", Source: "nl", Medium: "email", Campaign: "spring", Device: "mobile"},
		store.Event{ID: "a:2", Type: store.TypePage, Time: t0.Add(time.Minute), Path: "/products/moneyball", Category: "books", Item: "moneyball"},
		store.Event{ID: "m-1", Type: store.TypeTrack, Name: store.EventPurchase, Time: t0.Add(2 * time.Minute), Revenue: 40.5,
			Items: []store.Item{{ID: "moneyball", Category: "books", Price: 16.99, Quantity: 2}, {ID: "cap", Category: "red-sox"}}, Props: json.RawMessage(`{"coupon":"X"}`)},
		store.Event{ID: "m-2", Type: store.TypeIdentify, Time: t0.Add(3 * time.Minute), UserID: "ana@example.com", Traits: json.RawMessage(`{"crm_stage":"opportunity"}`)},
		store.Event{ID: "a:3", Type: store.TypePage, Time: t0.Add(4 * time.Minute), Path: "/a", NewVisit: true},
		store.Event{ID: "a:4", Type: store.TypePage, Time: t0.Add(5 * time.Minute), Path: "/b"},
		store.Event{ID: "a:5", Type: store.TypePage, Time: t0.Add(6 * time.Minute), Path: "/c"},
	)
	p.Version = 7
	return p
}

// recoded returns p encoded and decoded again, as a store keeps it.
func recoded(t testing.TB, p *store.Profile) *store.Profile {
	t.Helper()
	b, err := store.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := store.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	for _, p := range []*store.Profile{store.New("x"), richProfile()} {
		got := recoded(t, p)
		// Compare through JSON: it shows every exported field and the
		// ring in order.
		want, _ := json.Marshal(p)
		have, _ := json.Marshal(got)
		if string(want) != string(have) {
			t.Fatalf("round trip:\n got %s\nwant %s", have, want)
		}
		if !reflect.DeepEqual(got.Recent.Events(), p.Recent.Events()) && p.Recent.Len() > 0 {
			t.Fatalf("ring differs")
		}
		// The JSON form is accepted too.
		fromJSON, err := store.Unmarshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := json.Marshal(fromJSON); string(again) != string(want) {
			t.Fatalf("JSON form: %s", again)
		}
	}
}

func TestCodecRejectsGarbage(t *testing.T) {
	t.Parallel()
	b, _ := store.Marshal(richProfile())
	for _, in := range [][]byte{nil, {0xB1}, b[:len(b)-1], append(append([]byte{}, b...), 0), []byte("nope"), []byte("{bad json")} {
		if _, err := store.Unmarshal(in); err == nil {
			t.Errorf("Unmarshal(%q) accepted garbage", in)
		}
	}
}

// FuzzUnmarshal: no input panics or allocates without bound, and what
// decodes encodes and decodes to the same profile.
func FuzzUnmarshal(f *testing.F) {
	b, _ := store.Marshal(richProfile())
	f.Add(b)
	e, _ := store.Marshal(store.New("x"))
	f.Add(e)
	f.Add([]byte(`{"id":"x"}`))
	// A ring that stays encoded through a fold.
	q, _ := store.Unmarshal(b)
	q.Apply(store.Limits{Recent: 5}, store.Event{ID: "z:9", Type: store.TypePage, Path: "/new"})
	k, _ := store.Marshal(q)
	f.Add(k)
	if hx, err := os.ReadFile("testdata/profile-v3.hex"); err == nil {
		if v3, err := hex.DecodeString(strings.TrimSpace(string(hx))); err == nil {
			f.Add(v3)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := store.Unmarshal(in)
		ps, errs := store.UnmarshalString(string(in))
		if (err == nil) != (errs == nil) {
			t.Fatalf("Unmarshal: %v; UnmarshalString: %v", err, errs)
		}
		if err != nil {
			return
		}
		if a, b := jsonOrError(p), jsonOrError(ps); a != b {
			t.Fatalf("Unmarshal and UnmarshalString differ:\n%s\n%s", a, b)
		}
		if n, evs := ps.Recent.Len(), ps.Recent.Events(); len(evs) != n || ps.Recent.Len() != n {
			t.Fatalf("Len %d, then %d events and Len %d", n, len(evs), ps.Recent.Len())
		}
		out, err := store.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := store.Unmarshal(out)
		if err != nil {
			t.Fatalf("re-encoded profile does not decode: %v", err)
		}
		a, _ := json.Marshal(p)
		c, _ := json.Marshal(q)
		if string(a) != string(c) {
			t.Fatalf("not stable:\n%s\n%s", a, c)
		}
	})
}

// TestLazyRing: a decoded profile folds new events into a ring whose older
// events stay encoded, and ends exactly as the same fold in memory.
func TestLazyRing(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := func(i int) store.Event {
		return store.Event{ID: store.EventID("p", uint64(i)), Type: store.TypePage, Time: t0.Add(time.Duration(i) * time.Minute),
			Path: fmt.Sprintf("/p/%d", i%30)}
	}
	for _, tc := range []struct{ before, after, limit int }{{250, 7, 200}, {40, 7, 200}, {200, 300, 200}, {10, 3, 5}} {
		lim := store.Limits{Recent: tc.limit}
		ref := store.New("v")
		lazy := store.New("v")
		for i := 1; i <= tc.before; i++ {
			ref.Apply(lim, ev(i))
			lazy.Apply(lim, ev(i))
		}
		b, _ := store.Marshal(lazy)
		lazy, _ = store.Unmarshal(b)
		for i := tc.before + 1; i <= tc.before+tc.after; i++ {
			ref.Apply(lim, ev(i))
			lazy.Apply(lim, ev(i))
			if lazy.Recent.Len() != ref.Recent.Len() {
				t.Fatalf("%+v: Len %d, want %d", tc, lazy.Recent.Len(), ref.Recent.Len())
			}
		}
		c := lazy.Clone()
		b, _ = store.Marshal(lazy)
		again, err := store.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(ref.Recent.Events())
		for name, p := range map[string]*store.Profile{"folded": lazy, "clone": c, "re-decoded": again} {
			if got, _ := json.Marshal(p.Recent.Events()); string(got) != string(want) {
				t.Fatalf("%+v %s: ring\n got %s\nwant %s", tc, name, got, want)
			}
		}
		if lazy.Recent.At(0).ID != ref.Recent.At(0).ID {
			t.Fatalf("%+v: At(0) %s, want %s", tc, lazy.Recent.At(0).ID, ref.Recent.At(0).ID)
		}
	}
}

// TestCodecChurn folds events into a profile the way a store does, decoding
// and encoding it around every fold, with events of every kind, with and
// without a new referrer each time. The profile always equals the same fold
// in memory, and its string table keeps no more than about one ring's worth
// of strings of events already dropped.
func TestCodecChurn(t *testing.T) {
	t.Parallel()
	for _, newStrings := range []bool{true, false} {
		t.Run(fmt.Sprintf("new-strings=%v", newStrings), func(t *testing.T) {
			testChurn(t, newStrings)
		})
	}
}

func testChurn(t *testing.T, newStrings bool) {
	lim := store.Limits{Recent: 50}
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	ev := func(i int) store.Event {
		e := store.Event{ID: store.EventID(fmt.Sprintf("prod-%d", i%3), uint64(i)), Type: store.TypePage,
			Time: t0.Add(time.Duration(i) * 7 * time.Second), Path: fmt.Sprintf("/p/%d", i%20),
			Referrer: fmt.Sprintf("https://ref.example/%d", i%5), Device: "mobile"}
		if newStrings {
			e.Referrer = fmt.Sprintf("https://ref.example/%d", i)
		}
		switch i % 10 {
		case 1:
			e.Time = e.Time.Add(123456789 * time.Nanosecond)
			e.NewVisit, e.Source, e.Medium, e.Campaign = true, "nl", "email", fmt.Sprintf("c-%d", i%4)
		case 3:
			e.Type, e.Name, e.Path, e.Revenue = store.TypeTrack, store.EventPurchase, "", 12.5
			e.Items = []store.Item{{ID: fmt.Sprintf("sku-%d", i%7), Category: "paint", Price: 6.25, Quantity: 2}, {ID: "brush"}}
			e.Props = json.RawMessage(`{"coupon":"X"}`)
		case 5:
			e.ID, e.Type, e.Path = store.OpaqueID(fmt.Sprintf("msg-%d", i)), store.TypeIdentify, ""
			e.UserID, e.Traits = "ana@example.com", json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))
		case 7:
			e.Time = time.Time{}
		}
		return e
	}
	ref, p := store.New("v"), store.New("v")
	for i := 1; i <= 400; i += 3 {
		evs := []store.Event{ev(i), ev(i + 1), ev(i + 2)}
		ref.Apply(lim, evs...)
		p.Apply(lim, evs...)
		p.Version, ref.Version = p.Version+1, ref.Version+1
		b, err := store.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if p, err = store.Unmarshal(b); err != nil {
			t.Fatalf("after event %d: %v", i+2, err)
		}
		fresh, err := store.Marshal(ref)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 2*len(fresh) {
			t.Fatalf("after event %d: %d bytes, %d encoded whole", i+2, len(b), len(fresh))
		}
		if i%30 == 1 {
			if got, want := mustJSON(t, p.Clone()), mustJSON(t, ref); got != want {
				t.Fatalf("after event %d:\n got %s\nwant %s", i+2, got, want)
			}
		}
	}
	if got, want := mustJSON(t, p), mustJSON(t, ref); got != want {
		t.Fatalf("end:\n got %s\nwant %s", got, want)
	}
}

// TestCodecCompact: a visitor's 200 recent page views, over 40 products,
// take about 4 KB (14.5 KB with the strings inline, as in version 3).
func TestCodecCompact(t *testing.T) {
	t.Parallel()
	p := store.New("bench-visitor-0001")
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for seq := uint64(1); seq <= 1000; seq++ {
		p.Apply(store.Limits{}, store.Event{ID: store.EventID("bench", seq*1000), Type: store.TypePage,
			Path: fmt.Sprintf("/products/item-%d", seq%40), Category: "books", Item: fmt.Sprintf("item-%d", seq%40),
			Device: "desktop", Time: t0.Add(time.Duration(seq*1000) * time.Second)})
	}
	b, err := store.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 4600 {
		t.Errorf("%d bytes, want at most 4600", len(b))
	}
	// AppendBinary appends the same encoding (maps are written in their
	// iteration order, so the bytes may differ).
	c, err := p.AppendBinary([]byte("prefix"))
	if err != nil || string(c[:6]) != "prefix" || len(c) != 6+len(b) {
		t.Fatalf("AppendBinary: %d bytes after the prefix, Marshal %d (%v)", len(c)-6, len(b), err)
	}
	q, err := store.Unmarshal(c[6:])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mustJSON(t, q), mustJSON(t, p); got != want {
		t.Errorf("AppendBinary:\n got %s\nwant %s", got, want)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jsonOrError(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

// TestCodecWideNumbers: quantities and counts beyond 32 bits survive a
// store's round trip (they once made the event, or the whole profile,
// undecodable).
func TestCodecWideNumbers(t *testing.T) {
	t.Parallel()
	p := store.New("v")
	p.Apply(store.Limits{}, store.Event{ID: "a:1", Type: store.TypeTrack, Name: store.EventPurchase,
		Items: []store.Item{{ID: "x", Quantity: 1 << 31}, {ID: "x", Quantity: 1 << 31}}})
	q := recoded(t, p)
	if q.Recent.Len() != 1 || q.Recent.At(0).Items[0].Quantity != 1<<31 || q.Purchases.Items["x"] != 1<<32 {
		t.Fatalf("got %d events, %+v, %v", q.Recent.Len(), q.Recent.Events(), q.Purchases.Items)
	}
}
