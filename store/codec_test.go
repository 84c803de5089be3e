package store_test

import (
	"encoding/json"
	"fmt"
	"reflect"
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

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	for _, p := range []*store.Profile{store.New("x"), richProfile()} {
		b, err := store.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := store.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
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
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := store.Unmarshal(in)
		if err != nil {
			return
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
