package experiment_test

import (
	"math"
	"testing"

	"github.com/tailorhq/tailor/rules/experiment"
)

func TestResults(t *testing.T) {
	t.Parallel()
	e := &experiment.Experiment{Key: "hero", Holdout: 0.1,
		Variants: []experiment.Variant{{"control", 1}, {"video", 1}, {"new", 0}}}
	counts := map[experiment.Cell]experiment.Counts{
		{Segment: "mobile", Variant: "video"}:                    {Visitors: 100, Conversions: 15},
		{Segment: "mobile", Variant: "control"}:                  {Visitors: 100, Conversions: 10},
		{Segment: "desktop", Variant: "retired"}:                 {Visitors: 20, Conversions: 1},
		{Segment: "desktop", Variant: "control"}:                 {Visitors: 1, Conversions: 0},
		{Segment: "desktop", Variant: "video"}:                   {Visitors: 1, Conversions: 1},
		{Segment: "desktop", Variant: "aaa"}:                     {Visitors: 3, Conversions: 1},
		{Segment: "mobile", Variant: experiment.HoldoutVariant}:  {Visitors: 50, Conversions: 5},
		{Segment: "desktop", Variant: experiment.HoldoutVariant}: {Visitors: 0, Conversions: 0},
	}
	rows := experiment.Results(e, counts)
	type key struct{ seg, v string }
	var order []key
	for _, r := range rows {
		order = append(order, key{r.Segment, r.Variant})
	}
	want := []key{
		{"desktop", "control"}, {"desktop", "video"}, {"desktop", "new"}, {"desktop", experiment.HoldoutVariant},
		{"desktop", "aaa"}, {"desktop", "retired"},
		{"mobile", "control"}, {"mobile", "video"}, {"mobile", "new"}, {"mobile", experiment.HoldoutVariant},
	}
	if len(order) != len(want) {
		t.Fatalf("rows %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("rows %v, want %v", order, want)
		}
	}
	// Same counts, same table.
	for range 5 {
		again := experiment.Results(e, counts)
		for i := range rows {
			if again[i] != rows[i] {
				t.Fatalf("row %d: %+v, then %+v", i, rows[i], again[i])
			}
		}
	}

	byKey := map[key]experiment.Row{}
	for _, r := range rows {
		byKey[key{r.Segment, r.Variant}] = r
	}
	c := byKey[key{"mobile", "control"}]
	if !c.Control || c.ProbBeatsControl != 0 || c.Visitors != 100 || c.Conversions != 10 || c.Rate != 0.1 {
		t.Errorf("control row %+v", c)
	}
	v := byKey[key{"mobile", "video"}]
	if v.Control || math.Abs(v.ProbBeatsControl-0.85328378993396614) > 1e-12 || v.Rate != 0.15 {
		t.Errorf("video row %+v", v)
	}
	if lo, hi := experiment.Interval(experiment.Counts{Visitors: 100, Conversions: 15}, 0.95); v.Lo != lo || v.Hi != hi {
		t.Errorf("video interval [%v, %v], want [%v, %v]", v.Lo, v.Hi, lo, hi)
	}
	n := byKey[key{"mobile", "new"}]
	if n.Visitors != 0 || n.Rate != 0 || n.Lo != 0 || n.Hi != 1 {
		t.Errorf("row without counts %+v", n)
	}
	h := byKey[key{"mobile", experiment.HoldoutVariant}]
	if want := experiment.ProbBeatsControl(experiment.Counts{Visitors: 100, Conversions: 10},
		experiment.Counts{Visitors: 50, Conversions: 5}); h.ProbBeatsControl != want {
		t.Errorf("holdout row %+v, want P %v", h, want)
	}

	if rows := experiment.Results(e, nil); len(rows) != 0 {
		t.Errorf("Results without counts: %v", rows)
	}
	// Without a holdout and its counts, no holdout row.
	e.Holdout = 0
	for _, r := range experiment.Results(e, map[experiment.Cell]experiment.Counts{{Variant: "control"}: {Visitors: 1}}) {
		if r.Variant == experiment.HoldoutVariant {
			t.Error("holdout row without holdout")
		}
	}
}
