package rules_test

import (
	"slices"
	"testing"
	"time"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// TestReclassify: a profile classified without a request keeps the
// memberships that depend on the request and re-evaluates the others, and
// says when they may next change.
func TestReclassify(t *testing.T) {
	e, err := rules.NewEngine()
	if err != nil {
		t.Fatal(err)
	}
	err = e.Reload([]byte(`{"segments": [
		{"name": "pricing-curious", "priority": 9, "rule": {"pageVisited": {"path": "/pricing", "min": 2, "within": "7d"}}},
		{"name": "mobile", "priority": 8, "rule": {"context": {"device": "mobile"}}},
		{"name": "mobile-curious", "priority": 7, "rule": {"and": [{"inSegment": "mobile"}, {"inSegment": "pricing-curious"}]}},
		{"name": "first", "group": "g", "priority": 6, "rule": {"context": {"visitor": "new"}}},
		{"name": "second", "group": "g", "priority": 5, "rule": {"pageVisited": {"path": "/pricing"}}},
		{"name": "visitor", "priority": 1, "rule": {"pageVisited": {"path": "/pricing"}}}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	p := store.New("v")
	p.Apply(store.Limits{}, store.Event{ID: "a", Type: store.TypePage, Path: "/pricing", Time: t0},
		store.Event{ID: "b", Type: store.TypePage, Path: "/pricing", Time: t0.Add(time.Hour)})
	was := []string{"pricing-curious", "mobile", "mobile-curious", "second", "visitor"}

	got, until := e.Reclassify(p, was, t0.Add(2*time.Hour))
	if !slices.Equal(got, was) {
		t.Fatalf("within the week: %q, want %q", got, was)
	}
	if want := t0.Add(7 * 24 * time.Hour); !until.Equal(want) {
		t.Fatalf("until %v, want %v (the first view leaving the window)", until, want)
	}
	// A week later the first view has left the window: out of
	// pricing-curious; mobile-curious reads the request through mobile,
	// so it keeps what it was; so does the group g, whose first segment
	// reads the request.
	got, until = e.Reclassify(p, was, t0.Add(7*24*time.Hour+time.Second))
	if want := []string{"mobile", "mobile-curious", "second", "visitor"}; !slices.Equal(got, want) {
		t.Fatalf("a week later: %q, want %q", got, want)
	}
	if want := t0.Add(7*24*time.Hour + time.Hour); !until.Equal(want) {
		t.Fatalf("until %v, want %v", until, want)
	}
	got, _ = e.Reclassify(p, nil, t0.Add(30*24*time.Hour))
	if want := []string{"visitor"}; !slices.Equal(got, want) {
		t.Fatalf("with no segments before: %q, want %q", got, want)
	}
}
