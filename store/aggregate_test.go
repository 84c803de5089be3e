package store_test

import (
	"slices"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

func TestRecheckEncoded(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 5, time.UTC)
	for _, segs := range [][]string{nil, {"fans"}} {
		p := store.New("v")
		p.Apply(store.Limits{}, store.Event{ID: "a:1", Type: store.TypeSegments, Time: at,
			Classified: &store.Classification{Visitor: "v", Segments: segs, Until: at}})
		if !p.Recheck.Equal(at) {
			t.Fatalf("Recheck = %v after a classification until %v", p.Recheck, at)
		}
		q := recoded(t, p)
		if !q.Recheck.Equal(at) || !slices.Equal(q.Segments, p.Segments) {
			t.Fatalf("decoded Recheck %v segments %v, want %v %v", q.Recheck, q.Segments, at, p.Segments)
		}
		// A classification without a time clears it.
		p.Apply(store.Limits{}, store.Event{ID: "a:2", Type: store.TypeSegments, Time: at,
			Classified: &store.Classification{Visitor: "v", Was: p.Segments, Segments: segs}})
		if q = recoded(t, p); !q.Recheck.IsZero() {
			t.Fatalf("Recheck = %v after a classification without a time", q.Recheck)
		}
	}
}

func TestCountKeys(t *testing.T) {
	p := store.New("v")
	if got := store.CountKeys(nil, nil); got != nil {
		t.Fatalf("CountKeys(nil) = %q", got)
	}
	p.Segments = []string{"b", "a", "a", "bad\x1fname"}
	p.Traits = []byte(`{"plan":"pro","experiment:hero":{"variant":"B","segment":"a","goals":{"signup":1,"buy":0}},` +
		`"experiment:cta":{"variant":"A","goals":{"signup":2}},"experiment:bad":{"segment":"a"},"experiment:":{"variant":"X"}}`)
	p.Counts = map[string]int{"signup": 2}
	p.Counted = true
	want := []string{store.CountProfiles, store.ExposureKey("cta", "A", "", false),
		store.ExposureKey("hero", "B", "a", true), store.ExposureKey("hero", "B", "a", false),
		store.SegmentKey("a"), store.SegmentKey("b")}
	got := store.CountKeys(nil, p)
	if slices.Sort(want); !slices.Equal(got, want) {
		t.Fatalf("CountKeys = %q\nwant %q", got, want)
	}
	kind, parts := store.ParseCountKey(store.ExposureKey("hero", "B", "a", true))
	if kind != store.KindConverted || !slices.Equal(parts, []string{"hero", "B", "a"}) {
		t.Fatalf("ParseCountKey = %q %q", kind, parts)
	}
	if kind, parts := store.ParseCountKey(store.CountProfiles); kind != store.CountProfiles || parts != nil {
		t.Fatalf("ParseCountKey(profiles) = %q %q", kind, parts)
	}
	q := p.Clone()
	q.Segments = []string{"a", "c"}
	q.Counts = nil
	d := store.CountDelta(p, q)
	wantD := []store.Delta{{store.ExposureKey("hero", "B", "a", true), -1}, {store.SegmentKey("b"), -1}, {store.SegmentKey("c"), 1}}
	if !slices.Equal(d, wantD) {
		t.Fatalf("CountDelta = %v\nwant %v", d, wantD)
	}
	q.MergedInto = "user:u"
	if d := store.CountDelta(p, q); len(d) != len(got) {
		t.Fatalf("merging takes away every key: %v", d)
	}
}

func BenchmarkCountKeys(b *testing.B) {
	p := store.New("v")
	p.Segments = []string{"fans", "buyers", "loyal"}
	p.Traits = []byte(`{"plan":"pro","experiment:hero":{"variant":"B","segment":"fans","goals":{"signup":1}}}`)
	b.ReportAllocs()
	var buf [16]string
	for b.Loop() {
		store.CountKeys(buf[:0], p)
	}
}

func TestCountDeltaUncounted(t *testing.T) {
	old := store.New("v")
	old.Segments = []string{"a"}
	now := old.Clone()
	now.Segments = []string{"b"}
	// old was written before its store kept aggregates: it counted for
	// nothing, so all of now's keys are added.
	want := []store.Delta{{store.CountProfiles, 1}, {store.SegmentKey("b"), 1}}
	if d := store.CountDelta(old, now); !slices.Equal(d, want) {
		t.Fatalf("CountDelta from an uncounted profile = %v, want %v", d, want)
	}
	old.Counted = true
	b, _ := store.Marshal(old)
	if q, _ := store.Unmarshal(b); !q.Counted || len(q.Segments) != 1 {
		t.Fatalf("Counted not kept by the encoding: %+v", q)
	}
	if d := store.CountDelta(old, nil); len(d) != 2 || d[0].N != -1 {
		t.Fatalf("CountDelta of a deletion = %v", d)
	}
}
