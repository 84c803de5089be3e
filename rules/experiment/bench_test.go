package experiment_test

import (
	"strconv"
	"testing"

	"github.com/tailorhq/tailor/rules/experiment"
)

// benchIDs are 32-character hex ids, as a cookie carries them.
var benchIDs = func() []string {
	var out []string
	for i, id := range ids(512) {
		if i%2 == 1 {
			out = append(out, id)
		}
	}
	return out
}()

func BenchmarkAssign(b *testing.B) {
	for _, n := range []int{2, 3, 10} {
		e := &experiment.Experiment{Key: "hero-test", Salt: "2026-q1", Coverage: 0.9, Holdout: 0.05}
		for i := range n {
			e.Variants = append(e.Variants, experiment.Variant{Key: "variant-" + strconv.Itoa(i), Weight: 1})
		}
		b.Run(strconv.Itoa(n)+"variants", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				experiment.Assign(e, benchIDs[i&255])
				i++
			}
		})
	}
}

func BenchmarkAssignSticky(b *testing.B) {
	e := &experiment.Experiment{Key: "hero-test", Variants: []experiment.Variant{{"control", 1}, {"video", 1}, {"photo", 1}}}
	b.ReportAllocs()
	for b.Loop() {
		experiment.AssignSticky(e, benchIDs[0], "photo")
	}
}

func BenchmarkBanditAssign(b *testing.B) {
	e := &experiment.Experiment{Key: "cta", Variants: []experiment.Variant{{"control", 1}, {"bold", 1}, {"red", 1}}}
	bd, err := experiment.NewBandit(e, experiment.BanditConfig{Floor: 0.05})
	if err != nil {
		b.Fatal(err)
	}
	bd.Update(map[experiment.Cell]experiment.Counts{
		{Segment: "mobile", Variant: "control"}: {Visitors: 1000, Conversions: 50},
		{Segment: "mobile", Variant: "bold"}:    {Visitors: 1000, Conversions: 60},
	})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		bd.Assign("mobile", benchIDs[i&255], "")
		i++
	}
}

func BenchmarkBanditUpdate(b *testing.B) {
	e := &experiment.Experiment{Key: "cta", Variants: []experiment.Variant{{"control", 1}, {"bold", 1}, {"red", 1}}}
	bd, err := experiment.NewBandit(e, experiment.BanditConfig{Floor: 0.05})
	if err != nil {
		b.Fatal(err)
	}
	counts := map[experiment.Cell]experiment.Counts{
		{Segment: "mobile", Variant: "control"}: {Visitors: 100_000, Conversions: 5000},
		{Segment: "mobile", Variant: "bold"}:    {Visitors: 100_000, Conversions: 5100},
		{Segment: "mobile", Variant: "red"}:     {Visitors: 100_000, Conversions: 4900},
	}
	b.ReportAllocs()
	for b.Loop() {
		bd.Update(counts) // one segment, 10,000 draws
	}
}

func BenchmarkProbBeatsControl(b *testing.B) {
	for _, tc := range []struct {
		name string
		a, v experiment.Counts
	}{
		{"1k", experiment.Counts{Visitors: 1000, Conversions: 50}, experiment.Counts{Visitors: 1000, Conversions: 65}},
		{"1M", experiment.Counts{Visitors: 1_000_000, Conversions: 50_000}, experiment.Counts{Visitors: 1_000_000, Conversions: 50_500}},
		{"10M-normal", experiment.Counts{Visitors: 10_000_000, Conversions: 5_000_000}, experiment.Counts{Visitors: 10_000_000, Conversions: 5_001_000}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				experiment.ProbBeatsControl(tc.a, tc.v)
			}
		})
	}
}
