package rules_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

const backtestSegments = `{"segments": [
	{"name": "pricing-curious", "priority": 9, "rule": {"pageVisited": {"path": "/pricing", "min": 2, "within": "7d"}}},
	{"name": "mobile", "priority": 8, "rule": {"context": {"device": "mobile"}}},
	{"name": "mobile-curious", "priority": 7, "rule": {"and": [{"inSegment": "mobile"}, {"inSegment": "pricing-curious"}]}},
	{"name": "hot", "priority": 6, "rule": {"and": [{"inSegment": "pricing-curious"}, {"visits": {"min": 2}}]}},
	{"name": "first", "group": "g", "priority": 5, "rule": {"pageVisited": {"path": "/docs", "within": "1d"}}},
	{"name": "second", "group": "g", "priority": 4, "rule": {"pageVisited": {"path": "/pricing"}}},
	{"name": "plan", "priority": 1, "rule": {"trait": {"path": "plan", "is": {"$gt": 3}}}},
	{"name": "visitor", "priority": 0, "rule": {"visits": {"min": 1}}}
]}`

// TestSetMember: Member agrees with Classify on every segment of a set
// with references and an exclusive group, and reports a failed rule and
// an unknown segment.
func TestSetMember(t *testing.T) {
	s, err := rules.Parse([]byte(backtestSegments))
	if err != nil {
		t.Fatal(err)
	}
	e := &rules.Engine{}
	e.Load(s)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var profs []*store.Profile
	for i := range 64 {
		p := store.New(fmt.Sprint("v", i))
		var evs []store.Event
		for k := range i % 5 {
			evs = append(evs, store.Event{ID: fmt.Sprint("p", k), Type: store.TypePage, Path: "/pricing", Time: now.Add(-time.Duration(i*k) * 12 * time.Hour)})
		}
		if i%3 == 0 {
			evs = append(evs, store.Event{ID: "d", Type: store.TypePage, Path: "/docs", Time: now.Add(-time.Hour)})
		}
		if i%4 == 0 {
			evs = append(evs, store.Event{ID: "i", Type: store.TypeIdentify, UserID: "u", Traits: []byte(fmt.Sprintf(`{"plan": %d}`, i%7)), Time: now.Add(-time.Minute)})
		}
		p.Apply(store.Limits{}, evs...)
		p.Visits = i % 3
		profs = append(profs, p)
	}
	in := map[string]int{}
	for _, p := range profs {
		for _, mobile := range []bool{false, true} {
			facts := rules.Facts{}
			if mobile {
				facts.Device = "mobile"
			}
			want := e.Classify(&rules.Input{Profile: p, Now: now, Request: facts})
			for _, seg := range s.Segments() {
				got, err := s.Member(&rules.Input{Profile: p, Now: now, Request: facts}, seg.Name)
				if err != nil {
					t.Fatalf("%s %s: %v", p.ID, seg.Name, err)
				}
				if got {
					in[seg.Name]++
				}
				if got != slices.Contains(want, seg.Name) {
					t.Errorf("%s (mobile %v): Member(%s) = %v, Classify says %q", p.ID, mobile, seg.Name, got, want)
				}
			}
		}
	}

	for _, seg := range s.Segments() {
		if in[seg.Name] == 0 || in[seg.Name] == 2*len(profs) {
			t.Errorf("segment %s: %d members of %d: the test does not tell in from out", seg.Name, in[seg.Name], 2*len(profs))
		}
	}
	// A rule that fails is no match, and its error is reported.
	failing, err := rules.NewSet(rules.Segment{Name: "bad", Rule: rules.RuleFunc(func(*rules.Input) (bool, error) {
		return true, fmt.Errorf("no crm")
	})})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := failing.Member(&rules.Input{Profile: profs[0], Now: now}, "bad")
	if ok || err == nil || !strings.Contains(err.Error(), "no crm") || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("failing rule: %v, %v; want false and an error naming the segment and the cause", ok, err)
	}
	if _, err := s.Member(&rules.Input{Now: now}, "nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown segment: %v", err)
	}
	var nilSet *rules.Set
	if _, err := nilSet.Member(&rules.Input{Now: now}, "x"); err == nil {
		t.Error("nil set: no error")
	}
}

// TestSetSegmentDependencies: a segment's dependencies include those of
// the segments it references and of those before it in its group.
func TestSetSegmentDependencies(t *testing.T) {
	s, err := rules.Parse([]byte(backtestSegments))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		time    bool
		request rules.Fields
	}{
		{"pricing-curious", true, 0},
		{"mobile", false, rules.FieldDevice},
		{"mobile-curious", true, rules.FieldDevice},
		{"hot", true, 0},
		{"first", true, 0},
		{"second", true, 0}, // after "first" in its group, which has a window
		{"plan", false, 0},
		{"visitor", false, 0},
	} {
		d, ok := s.SegmentDependencies(c.name)
		if !ok || d.Time != c.time || d.Request != c.request {
			t.Errorf("%s: %+v, %v; want time %v, request %b", c.name, d, ok, c.time, c.request)
		}
	}
	if _, ok := s.SegmentDependencies("nope"); ok {
		t.Error("unknown segment: ok")
	}
	plugin, err := rules.NewSet(rules.Segment{Name: "p", Rule: rules.RuleFunc(func(*rules.Input) (bool, error) { return true, nil })})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := plugin.SegmentDependencies("p"); !d.Time || d.Request != rules.AllFields {
		t.Errorf("a rule that does not say: %+v, want everything", d)
	}
}
