package store_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

var m0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

func page(id string, at time.Duration, path, cat string) store.Event {
	return store.Event{ID: id, Type: store.TypePage, Time: m0.Add(at), Path: path, Category: cat, Item: path}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	v := store.New("visitor")
	v.Apply(store.Limits{},
		page("a:1", 0, "/p/x", "books"),
		page("a:2", time.Minute, "/p/y", "books"),
		store.Event{ID: "a:3", Type: store.TypeTrack, Name: store.EventPurchase, Time: m0.Add(2 * time.Minute),
			Items: []store.Item{{ID: "x", Category: "books", Price: 10, Quantity: 2}}},
		store.Event{ID: "a:4", Type: store.TypeIdentify, Time: m0.Add(3 * time.Minute), Traits: json.RawMessage(`{"plan":"free","color":"red"}`)},
	)
	u := store.New("user:ana")
	u.Apply(store.Limits{},
		page("b:1", -time.Hour, "/p/x", "red-sox"),
		store.Event{ID: "b:2", Type: store.TypeIdentify, Time: m0.Add(-30 * time.Minute), UserID: "ana", Traits: json.RawMessage(`{"plan":"pro","crm_stage":"lead"}`)},
		store.Event{ID: "b:3", Type: store.TypeTrack, Name: store.EventPurchase, Time: m0.Add(-20 * time.Minute),
			Items: []store.Item{{ID: "cap", Category: "red-sox", Price: 5}}},
	)
	u.Merge(store.Limits{}, v)

	if u.Visits != 2 || u.Counts["page"] != 3 || u.Counts["identify"] != 2 || u.Counts[store.EventPurchase] != 2 {
		t.Errorf("visits %d counts %v", u.Visits, u.Counts)
	}
	if u.Pages["/p/x"] != 2 || u.Pages["/p/y"] != 1 || u.Categories["books"] != 2 || u.Categories["red-sox"] != 1 {
		t.Errorf("pages %v categories %v", u.Pages, u.Categories)
	}
	pu := u.Purchases
	if pu.Count != 2 || pu.Revenue != 25 || pu.Items["x"] != 2 || pu.Items["cap"] != 1 || pu.Months[4] != 2 ||
		!pu.First.Equal(m0.Add(-20*time.Minute)) || !pu.Last.Equal(m0.Add(2*time.Minute)) {
		t.Errorf("purchases %+v", pu)
	}
	if !u.FirstSeen.Equal(m0.Add(-time.Hour)) || !u.LastSeen.Equal(m0.Add(3*time.Minute)) {
		t.Errorf("first %v last %v", u.FirstSeen, u.LastSeen)
	}
	// The visitor was seen last: its traits win.
	if got := string(u.Traits); got != `{"color":"red","crm_stage":"lead","plan":"free"}` {
		t.Errorf("traits %s", got)
	}
	if u.UserID != "ana" || u.ID != "user:ana" || strings.Join(u.Aliases, ",") != "visitor" {
		t.Errorf("ids %q %q %v", u.UserID, u.ID, u.Aliases)
	}
	var ids []string
	for _, e := range u.Recent.Events() {
		ids = append(ids, e.ID)
	}
	if got := strings.Join(ids, " "); got != "b:1 b:2 b:3 a:1 a:2 a:3 a:4" {
		t.Errorf("recent %s", got)
	}
	// The applied marks of the user are its own.
	if u.Applied.Has("a:1") || !u.Applied.Has("b:3") {
		t.Errorf("applied %+v", u.Applied)
	}
}

func TestMergeBounds(t *testing.T) {
	t.Parallel()
	lim := store.Limits{Recent: 3, Pages: 2, Aliases: 2}
	u := store.New("user:u")
	u.Apply(lim, page("u:1", 0, "/a", ""), page("u:2", 2*time.Second, "/b", ""))
	for i, id := range []string{"v1", "v2", "v3"} {
		v := store.New(id)
		v.Apply(lim, page("v:1", time.Duration(2*i+1)*time.Second, "/c", ""))
		u.Merge(lim, v)
	}
	if len(u.Pages) != 2 || u.Counts["page"] != 5 {
		t.Errorf("pages %v counts %v", u.Pages, u.Counts)
	}
	// Aliases are complete, whatever Limits.Aliases says: erasing the
	// user must reach every merged profile.
	if strings.Join(u.Aliases, ",") != "v1,v2,v3" {
		t.Errorf("aliases %v", u.Aliases)
	}
	if u.Recent.Len() != 3 || !u.Recent.At(2).Time.Equal(m0.Add(5*time.Second)) {
		t.Errorf("recent %+v", u.Recent.Events())
	}
	if u.Truncated == 0 {
		t.Error("truncation not counted")
	}
	// Merging a profile into itself, or nil, changes nothing.
	before, _ := json.Marshal(u)
	u.Merge(lim, u)
	u.Merge(lim, nil)
	if after, _ := json.Marshal(u); string(after) != string(before) {
		t.Errorf("self merge changed the profile")
	}
}

func TestAliasFreezes(t *testing.T) {
	t.Parallel()
	v := store.New("v")
	n := v.Apply(store.Limits{},
		page("a:1", 0, "/", ""),
		store.Event{ID: "a:2", Type: store.TypeAlias, UserID: "ana", Time: m0},
		page("a:3", time.Second, "/after", ""),
		store.Event{ID: "a:4", Type: store.TypeAlias, UserID: "bob", Time: m0},
	)
	if n != 2 || v.MergedInto != "user:ana" || v.UserID != "ana" || v.Counts["page"] != 1 || v.Applied.Has("a:3") {
		t.Errorf("applied %d, merged into %q, counts %v", n, v.MergedInto, v.Counts)
	}
	// A user's profile aliased to itself is not frozen.
	u := store.New("user:ana")
	u.Apply(store.Limits{}, store.Event{ID: "x:1", Type: store.TypeAlias, UserID: "ana"}, page("x:2", 0, "/", ""))
	if u.MergedInto != "" || u.Counts["page"] != 1 {
		t.Errorf("self alias: %q %v", u.MergedInto, u.Counts)
	}
	// A merge event is applied once.
	w := store.New("user:w")
	m := store.Event{ID: "#merge>v", Type: store.TypeMerge, Merge: store.New("v0")}
	m.Merge.Apply(store.Limits{}, page("z:1", 0, "/", ""))
	if got := w.Apply(store.Limits{}, m, m); got != 1 || w.Counts["page"] != 1 || w.Recent.Len() != 1 {
		t.Errorf("merge applied %d times: %v", got, w.Counts)
	}
}

func TestVisitsCountedFromPages(t *testing.T) {
	t.Parallel()
	p := store.New("user:crm")
	p.Apply(store.Limits{}, store.Event{ID: "c:1", Type: store.TypeIdentify, Time: m0, Traits: json.RawMessage(`{"crm_stage":"opportunity"}`)},
		store.Event{ID: "c:2", Type: store.TypeTrack, Name: "email_opened", Time: m0})
	if p.Visits != 0 {
		t.Errorf("server-side events counted %d visits", p.Visits)
	}
	p.Apply(store.Limits{}, page("c:3", time.Minute, "/", ""), page("c:4", 2*time.Minute, "/a", ""))
	if p.Visits != 1 {
		t.Errorf("visits %d, want 1", p.Visits)
	}
	p.Apply(store.Limits{}, store.Event{ID: "c:5", Type: store.TypeTrack, Name: "x", NewVisit: true, Time: m0.Add(time.Hour)})
	if p.Visits != 2 {
		t.Errorf("visits %d, want 2", p.Visits)
	}
}

func TestOpaqueIDs(t *testing.T) {
	t.Parallel()
	// A message id that looks like a producer's sequence number is
	// remembered as it is.
	p := store.New("v")
	n := p.Apply(store.Limits{}, page(store.OpaqueID("web:5"), 0, "/", ""), page(store.OpaqueID("web:3"), 0, "/", ""),
		page(store.OpaqueID("web:5"), 0, "/", ""))
	if n != 2 || len(p.Applied.Seq) != 0 || len(p.Applied.IDs) != 2 {
		t.Errorf("applied %d: %+v", n, p.Applied)
	}
	if _, _, ok := store.SplitID("#a:1"); ok {
		t.Error("SplitID split an opaque id")
	}
}

func TestUserProfileID(t *testing.T) {
	t.Parallel()
	if id, err := store.UserProfileID("ana@example.com"); err != nil || id != "user:ana@example.com" {
		t.Errorf("%q %v", id, err)
	}
	for _, bad := range []string{"", strings.Repeat("x", store.MaxUserIDLength+1), "a\nb", "\xff"} {
		if _, err := store.UserProfileID(bad); !errors.Is(err, store.ErrInvalidID) {
			t.Errorf("UserProfileID(%q): %v", bad, err)
		}
	}
	if _, err := store.UserProfileID(strings.Repeat("x", store.MaxUserIDLength)); err != nil {
		t.Error(err)
	}
}

func TestCodecMergedAndVersion1(t *testing.T) {
	t.Parallel()
	p := richProfile()
	p.MergedInto = "user:ana"
	p.Aliases = []string{"a", "b"}
	b, _ := store.Marshal(p)
	got, err := store.Unmarshal(b)
	if err != nil || got.MergedInto != "user:ana" || strings.Join(got.Aliases, ",") != "a,b" {
		t.Fatalf("%+v %v", got, err)
	}
	// Earlier encodings still decode: version 3 (strings inline), version
	// 2 (events without lengths,
	// testdata/profile-v2.hex was written by the version 2 encoder), and
	// version 1 (the same without the merge fields).
	q := richProfile()
	want, _ := json.Marshal(q)
	hx, err := os.ReadFile("testdata/profile-v2.hex")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := hex.DecodeString(strings.TrimSpace(string(hx)))
	if err != nil {
		t.Fatal(err)
	}
	v1 := append([]byte{0xB1}, v2[1:len(v2)-2]...)
	hx, err = os.ReadFile("testdata/profile-v3.hex") // written by the version 3 encoder
	if err != nil {
		t.Fatal(err)
	}
	v3, err := hex.DecodeString(strings.TrimSpace(string(hx)))
	if err != nil {
		t.Fatal(err)
	}
	for name, enc := range map[string][]byte{"version 3": v3, "version 2": v2, "version 1": v1} {
		got, err := store.Unmarshal(enc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if have, _ := json.Marshal(got); string(want) != string(have) {
			t.Fatalf("%s:\n got %s\nwant %s", name, have, want)
		}
	}
}

// TestMergeOnce: a merge event for a profile the user holds already is
// skipped, whatever its id and however many other events came between,
// so that "identify on every login" merges the anonymous history once.
func TestMergeOnce(t *testing.T) {
	t.Parallel()
	lim := store.Limits{RememberedIDs: 4}
	v := store.New("v1")
	v.Apply(lim, store.Event{ID: "v:1", Type: store.TypeTrack, Name: store.EventPurchase, Revenue: 100, Time: m0})
	u := store.New("user:u")
	u.Apply(lim, store.Event{ID: "#merge>v1", Type: store.TypeMerge, Time: m0, Merge: v.Clone()})
	for i := range 10 { // more opaque ids than the profile remembers
		u.Apply(lim, store.Event{ID: fmt.Sprintf("#m%d", i), Type: store.TypeTrack, Name: "click", Time: m0})
	}
	u.Apply(lim, store.Event{ID: "#merge>v1", Type: store.TypeMerge, Time: m0, Merge: v.Clone()})
	u.Apply(lim, store.Event{ID: "#merge>v1-again", Type: store.TypeMerge, Time: m0, Merge: v.Clone()})
	if u.Purchases.Count != 1 || u.Purchases.Revenue != 100 {
		t.Fatalf("purchases %+v after merging v1 three times", u.Purchases)
	}
}

// TestSegmentsEvents: the fold decides entries and exits against the
// stored segments, once, and ignores a classification of a stale copy.
func TestSegmentsEvents(t *testing.T) {
	t.Parallel()
	seg := func(id string, was, now []string) store.Event {
		return store.Event{ID: id, Type: store.TypeSegments, Time: m0, Classified: &store.Classification{Visitor: "v", Was: was, Segments: now}}
	}
	p := store.New("v")
	p.Apply(store.Limits{}, seg("a:1", nil, []string{"x", "y"}))
	if c, ok := p.SegmentChange("a:1"); !ok || fmt.Sprint(c.Entered, c.Exited) != "[x y] []" || c.Visitor != "v" {
		t.Fatalf("first change %+v %v", c, ok)
	}
	// Another producer saw the profile before a:1 and classifies it
	// into x alone: its copy was stale, nothing changes.
	p.Apply(store.Limits{}, seg("b:1", nil, []string{"x"}))
	if _, ok := p.SegmentChange("b:1"); ok || fmt.Sprint(p.Segments) != "[x y]" {
		t.Fatalf("a stale classification applied: %v", p.Segments)
	}
	// The same segments in another order are no change.
	p.Apply(store.Limits{}, seg("b:2", []string{"y", "x"}, []string{"y", "x"}))
	if _, ok := p.SegmentChange("b:2"); ok {
		t.Fatal("a reordering is a change")
	}
	p.Apply(store.Limits{}, seg("b:3", []string{"x", "y"}, []string{"z", "x"}))
	c, ok := p.SegmentChange("b:3")
	if !ok || fmt.Sprint(c.Entered, c.Exited) != "[z] [y]" {
		t.Fatalf("change %+v %v", c, ok)
	}
	// Segments events are not what rules see: no count, no recent event,
	// no change of the value a cached classification depends on.
	if p.Recent.Len() != 0 || len(p.Counts) != 0 || p.Changes() != 0 {
		t.Fatalf("recent %d counts %v changes %d", p.Recent.Len(), p.Counts, p.Changes())
	}
	// They survive the encoding.
	q := recoded(t, p)
	if fmt.Sprint(q.Segments) != "[z x]" || len(q.SegmentChanges) != 2 || fmt.Sprintf("%+v", q.SegmentChanges[1]) != fmt.Sprintf("%+v", p.SegmentChanges[1]) {
		t.Fatalf("decoded %v %+v", q.Segments, q.SegmentChanges)
	}
	// The log keeps the newest MaxSegmentChanges.
	for i := range store.MaxSegmentChanges + 5 {
		was := p.Segments
		now := []string{fmt.Sprint(i)}
		p.Apply(store.Limits{}, seg(fmt.Sprintf("c:%d", i+1), was, now))
	}
	if len(p.SegmentChanges) != store.MaxSegmentChanges {
		t.Fatalf("log of %d", len(p.SegmentChanges))
	}
}

// TestMayHaveRecent: for every event left in Recent, MayHaveRecent of
// its key holds, whatever bounds dropped counts on the way: random
// streams of events with few names allowed, merges included, and after
// an encoding round trip.
func TestMayHaveRecent(t *testing.T) {
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	names := []string{"add_to_cart", "Product Added", "experiment_viewed", "email_open", "signup"}
	for seed := range 200 {
		lim := store.Limits{EventNames: 1 + seed%4, Recent: 5 + seed%20}
		p, other := store.New("v"), store.New("w")
		for i := range 60 {
			e := store.Event{ID: store.EventID("t", uint64(seed*100+i+1)), Time: at.Add(time.Duration(i) * time.Minute)}
			switch (seed + i*7) % 5 {
			case 0:
				e.Type, e.Path = store.TypePage, "/"
			default:
				e.Type, e.Name = store.TypeTrack, names[(seed*3+i)%len(names)]
			}
			if i%3 == 0 {
				other.Apply(lim, e)
			} else {
				p.Apply(lim, e)
			}
		}
		p.Apply(lim, store.Event{ID: "m:1", Type: store.TypeMerge, Merge: other, Time: at})
		q := recoded(t, p)
		for _, pr := range []*store.Profile{p, q} {
			for i := range pr.Recent.Len() {
				e := pr.Recent.At(i)
				key := e.Type
				if e.Type == store.TypeTrack {
					key = e.Name
				}
				if !pr.MayHaveRecent(key) {
					t.Fatalf("seed %d: Recent holds %q, but MayHaveRecent says no (counts %v, truncated %d)", seed, key, pr.Counts, pr.Truncated)
				}
			}
		}
	}
	if store.New("v").MayHaveRecent("add_to_cart") {
		t.Error("an empty profile may have an add_to_cart")
	}
}
