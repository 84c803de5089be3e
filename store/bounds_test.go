package store_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tailorhq/tailor/store"
)

func TestTruncate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abc", 5, "abc"},
		{"abcd", 3, "abc"},
		{"aé", 2, "a"},   // é is 2 bytes: not split
		{"aé", 3, "aé"},  // fits
		{"a€b", 3, "a"},  // € is 3 bytes
		{"a€b", 4, "a€"}, // cut after it
		{"𝄞x", 3, ""},    // a 4-byte character
		{"abc", 0, ""},
		{"ab\x80\x80\x80\x80", 3, "ab\x80"}, // invalid bytes may be cut
	} {
		if got := store.Truncate(c.s, c.n); got != c.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}

// TestApplyBoundsEvents checks that an event of the Go API with oversized
// strings and JSON enters the profile bounded, in its counts and in its
// copy in Recent, without changing the caller's event.
func TestApplyBoundsEvents(t *testing.T) {
	t.Parallel()
	lim := store.DefaultLimits
	long := func(n int) string { return strings.Repeat("é", n/2) } // valid UTF-8, 2 bytes a character
	bigJSON := func(n int) json.RawMessage {
		return json.RawMessage(`{"x":"` + strings.Repeat("a", n) + `"}`)
	}
	for _, c := range []struct {
		name  string
		ev    store.Event
		check func(t *testing.T, p *store.Profile, e *store.Event)
	}{
		{"path", store.Event{Type: store.TypePage, Path: "/" + long(200_002)}, func(t *testing.T, p *store.Profile, e *store.Event) {
			if len(e.Path) > lim.PathBytes || len(e.Path) < lim.PathBytes-1 || !strings.HasPrefix("/"+long(200_002), e.Path) {
				t.Errorf("path of %d bytes kept, want the first %d", len(e.Path), lim.PathBytes)
			}
			if p.Pages[e.Path] != 1 || len(p.Pages) != 1 {
				t.Errorf("pages %d keys, want the cut path", len(p.Pages))
			}
		}},
		{"referrer and UTM", store.Event{Type: store.TypePage, Path: "/", Referrer: long(10_000), Source: long(1000),
			Medium: long(1000), Campaign: long(1000), Device: long(1000), Category: long(1000), Item: long(1000)},
			func(t *testing.T, p *store.Profile, e *store.Event) {
				if len(e.Referrer) > lim.ReferrerBytes || len(e.Referrer) < lim.ReferrerBytes-1 {
					t.Errorf("referrer of %d bytes, want %d", len(e.Referrer), lim.ReferrerBytes)
				}
				for _, s := range []string{e.Source, e.Medium, e.Campaign, e.Device, e.Category, e.Item} {
					if len(s) > lim.StringBytes || s == "" {
						t.Errorf("string of %d bytes, want at most %d", len(s), lim.StringBytes)
					}
				}
				if _, ok := p.Categories[e.Category]; !ok || len(p.Categories) != 1 {
					t.Errorf("categories %v", len(p.Categories))
				}
			}},
		{"name and props", store.Event{Type: store.TypeTrack, Name: long(5000), Props: bigJSON(10_000)},
			func(t *testing.T, p *store.Profile, e *store.Event) {
				if len(e.Name) > lim.StringBytes || p.Counts[e.Name] != 1 {
					t.Errorf("name of %d bytes, counted %d", len(e.Name), p.Counts[e.Name])
				}
				if e.Props != nil {
					t.Errorf("props of %d bytes kept, want dropped", len(e.Props))
				}
			}},
		{"small props kept", store.Event{Type: store.TypeTrack, Name: "signup", Props: bigJSON(100), Device: long(1000)},
			func(t *testing.T, p *store.Profile, e *store.Event) {
				if !bytes.Equal(e.Props, bigJSON(100)) {
					t.Errorf("props %s, want them kept", e.Props)
				}
			}},
		{"traits", store.Event{Type: store.TypeIdentify, Traits: bigJSON(8000), UserID: strings.Repeat("u", store.MaxUserIDLength+1)},
			func(t *testing.T, p *store.Profile, e *store.Event) {
				if e.Traits != nil {
					t.Errorf("traits of %d bytes kept in Recent", len(e.Traits))
				}
				if !bytes.Equal(p.Traits, bigJSON(8000)) {
					t.Errorf("traits of %d bytes merged, want the event's", len(p.Traits))
				}
				if e.UserID != "" || p.UserID != "" {
					t.Errorf("user id of %d bytes kept", len(p.UserID))
				}
			}},
		{"items", store.Event{Type: store.TypeTrack, Name: store.EventPurchase, Items: func() []store.Item {
			var its []store.Item
			for i := range 150 {
				its = append(its, store.Item{ID: fmt.Sprint(i, long(1000)), Category: "c", Price: 2, Quantity: 1})
			}
			return its
		}()}, func(t *testing.T, p *store.Profile, e *store.Event) {
			if len(e.Items) != lim.EventItems || len(e.Items[0].ID) > lim.StringBytes {
				t.Errorf("%d items, the first of %d bytes", len(e.Items), len(e.Items[0].ID))
			}
			if p.Purchases.Revenue != 300 || e.Revenue != 300 {
				t.Errorf("revenue %v (event %v), want 300 from every item", p.Purchases.Revenue, e.Revenue)
			}
			for k := range p.Purchases.Items {
				if len(k) > lim.StringBytes {
					t.Errorf("item key of %d bytes", len(k))
				}
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ev := c.ev
			ev.ID, ev.Time = "p1:1", m0
			orig := ev
			p := store.New("v")
			if n := p.Apply(store.Limits{}, ev); n != 1 {
				t.Fatalf("applied %d", n)
			}
			if fmt.Sprint(ev) != fmt.Sprint(orig) {
				t.Error("the caller's event was changed")
			}
			if p.Truncated != 1 {
				t.Errorf("Truncated = %d, want 1", p.Truncated)
			}
			e := p.Recent.At(0)
			for _, s := range []string{e.Path, e.Referrer, e.Name, e.Category, e.Item, e.Source, e.Medium, e.Campaign, e.Device} {
				if !utf8.ValidString(s) {
					t.Errorf("%q is not valid UTF-8 any more", s)
				}
			}
			c.check(t, p, e)
			// The bounded profile encodes and decodes as it is.
			b, err := p.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			q, err := store.Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, q, q.Recent.At(0))
		})
	}
}

// TestApplyBoundsLongID checks that an event with an oversized ID is still
// applied exactly once.
func TestApplyBoundsLongID(t *testing.T) {
	t.Parallel()
	id := store.OpaqueID(strings.Repeat("m", 10_000))
	ev := store.Event{ID: id, Type: store.TypeTrack, Name: "x", Time: m0}
	p := store.New("v")
	if n := p.Apply(store.Limits{}, ev, ev); n != 1 {
		t.Fatalf("applied %d of the same event twice, want 1", n)
	}
	if n := p.Apply(store.Limits{}, ev); n != 0 {
		t.Fatalf("applied the same event again")
	}
	if got := p.Recent.At(0).ID; len(got) > store.DefaultLimits.StringBytes {
		t.Errorf("id of %d bytes kept", len(got))
	}
	if len(p.Applied.IDs) != 1 || len(p.Applied.IDs[0]) > store.DefaultLimits.StringBytes {
		t.Errorf("applied ids %d, want one short one", len(p.Applied.IDs))
	}
	other := ev
	other.ID = id + "2"
	if n := p.Apply(store.Limits{}, other); n != 1 {
		t.Errorf("another long id was taken for the first")
	}
}

// TestOldLongStringsDecode checks that a profile stored before the bounds,
// with long strings, decodes as it is and folds new events.
func TestOldLongStringsDecode(t *testing.T) {
	t.Parallel()
	long := "/" + strings.Repeat("a", 100_000)
	old := store.New("v")
	old.Apply(store.Limits{PathBytes: 1 << 20}, store.Event{ID: "p:1", Type: store.TypePage, Path: long, Time: m0})
	b, err := old.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := store.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.Pages[long] != 1 {
		t.Fatalf("old long path lost: %d pages", len(p.Pages))
	}
	p.Apply(store.Limits{}, store.Event{ID: "p:2", Type: store.TypePage, Path: long, Time: m0.Add(time.Minute)})
	if p.Pages[long] != 1 || p.Pages[long[:512]] != 1 || p.Recent.Len() != 2 || p.Recent.At(0).Path != long {
		t.Errorf("pages %d, recent %d", len(p.Pages), p.Recent.Len())
	}
}

// heapOf returns the heap bytes that one value made by mk keeps alive,
// averaged over several, the least of three measurements: anything else
// the process allocates meanwhile only adds to one.
func heapOf(mk func() *store.Profile) int {
	least := heapOnce(mk)
	for range 2 {
		least = min(least, heapOnce(mk))
	}
	return least
}

func heapOnce(mk func() *store.Profile) int {
	const k = 8
	keep := make([]*store.Profile, k)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range keep {
		keep[i] = mk()
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(keep)
	return int(after.HeapAlloc-before.HeapAlloc) / k
}

// TestSizeTracksMemory checks that Size is within a factor of 2 of the
// heap that profiles of very different shapes hold: live ones, folded from
// events, and the same decoded, with their events still encoded or not.
// It is not parallel: it measures the heap.
func TestSizeTracksMemory(t *testing.T) {
	fresh := func(s string) string { return strings.Clone(s) }
	shapes := map[string]func() *store.Profile{
		"one page": func() *store.Profile {
			p := store.New("visitor")
			p.Apply(store.Limits{}, store.Event{ID: "p:1", Type: store.TypePage, Path: fresh("/"), Time: m0, Device: "desktop"})
			return p
		},
		"many long paths": func() *store.Profile {
			p := store.New("visitor")
			for i := range 200 {
				path := fmt.Sprintf("/%03d/%s", i, strings.Repeat("p", 500))
				p.Apply(store.Limits{}, store.Event{ID: store.EventID("p", uint64(i+1)), Type: store.TypePage, Path: path,
					Time: m0.Add(time.Duration(i) * time.Second), Device: "desktop"})
			}
			return p
		},
		"one long path repeated": func() *store.Profile {
			p := store.New("visitor")
			for i := range 200 {
				p.Apply(store.Limits{}, store.Event{ID: store.EventID("p", uint64(i+1)), Type: store.TypePage,
					Path: fresh("/" + strings.Repeat("p", 500)), Time: m0.Add(time.Duration(i) * time.Second)})
			}
			return p
		},
		"four huge pages": func() *store.Profile {
			p := store.New("visitor")
			for i := range 4 {
				p.Apply(store.Limits{PathBytes: 1 << 20}, store.Event{ID: store.EventID("p", uint64(i+1)), Type: store.TypePage,
					Path: fmt.Sprintf("/%d%s", i, strings.Repeat("h", 200_000)), Time: m0})
			}
			return p
		},
		"big ring": func() *store.Profile {
			p := store.New("visitor")
			for i := range 200 {
				props := json.RawMessage(fmt.Sprintf(`{"n":%d,"s":%q}`, i, strings.Repeat("x", 3000)))
				p.Apply(store.Limits{}, store.Event{ID: store.EventID("p", uint64(i+1)), Type: store.TypeTrack,
					Name: "clicked", Props: props, Time: m0.Add(time.Duration(i) * time.Second)})
			}
			return p
		},
		"big traits": func() *store.Profile {
			p := store.New("visitor")
			traits := json.RawMessage(fmt.Sprintf(`{"bio":%q}`, strings.Repeat("t", 15_000)))
			p.Apply(store.Limits{}, store.Event{ID: "p:1", Type: store.TypeIdentify, Traits: traits, Time: m0})
			return p
		},
		"many keys": func() *store.Profile {
			p := store.New("visitor")
			for i := range 500 {
				p.Apply(store.Limits{}, store.Event{ID: store.EventID("p", uint64(i+1)), Type: store.TypePage,
					Path: fmt.Sprint("/p/", i), Category: fmt.Sprint("c", i%100), Item: fmt.Sprint("i", i),
					Time: m0.Add(time.Duration(i) * time.Second)})
			}
			return p
		},
	}
	for name, mk := range shapes {
		enc, err := mk().AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		forms := map[string]func() *store.Profile{
			"live": mk,
			"decoded": func() *store.Profile {
				p, err := store.Unmarshal(enc)
				if err != nil {
					panic(err)
				}
				return p
			},
			"decoded and read": func() *store.Profile {
				p, err := store.Unmarshal(enc)
				if err != nil {
					panic(err)
				}
				if p.Recent.Len() > 0 {
					p.Recent.At(0) // decodes the events
				}
				return p
			},
		}
		for form, mk := range forms {
			heap, size := heapOf(mk), mk().Size()
			t.Logf("%s, %s: Size %d, heap %d, encoded %d", name, form, size, heap, len(enc))
			if size < heap/2 || size > 2*heap {
				t.Errorf("%s, %s: Size %d, not within a factor of 2 of the heap, %d", name, form, size, heap)
			}
			if size < len(enc) {
				t.Errorf("%s, %s: Size %d, less than the %d bytes encoded", name, form, size, len(enc))
			}
		}
	}
}
