package experiment_test

import (
	"fmt"

	"github.com/tailorhq/tailor/rules/experiment"
)

func Example() {
	e := &experiment.Experiment{
		Key:     "hero-test",
		Segment: "returning",
		Goals:   []string{"purchase"},
		Variants: []experiment.Variant{
			{Key: "control", Weight: 1},
			{Key: "video", Weight: 1},
		},
	}
	if err := e.Validate(); err != nil {
		panic(err)
	}
	visitors := []struct {
		id       string
		segments []string
	}{
		{"visitor-1", []string{"returning"}},
		{"visitor-2", []string{"new"}},
		{"visitor-3", []string{"returning", "mobile"}},
		{"visitor-4", []string{"returning"}},
		{"visitor-5", []string{"returning"}},
	}
	for _, v := range visitors {
		// The caller checks the segment, then assigns.
		if !e.Eligible(v.segments...) {
			fmt.Println(v.id, "not eligible")
			continue
		}
		variant, in := experiment.Assign(e, v.id)
		fmt.Println(v.id, variant, in)
	}
	// Output:
	// visitor-1 control true
	// visitor-2 not eligible
	// visitor-3 control true
	// visitor-4 video true
	// visitor-5 video true
}

func ExampleAssignSticky() {
	e := &experiment.Experiment{Key: "cta", Variants: []experiment.Variant{
		{Key: "blue", Weight: 1},
		{Key: "green", Weight: 1},
	}}
	fresh, _ := experiment.Assign(e, "visitor-1")
	fmt.Println("assigned:", fresh)

	// Later, the visitor has been shown "green" (recorded in an exposure
	// event) and the weights change: the visitor stays.
	e.Variants[1].Weight = 0
	fmt.Println(experiment.AssignSticky(e, "visitor-1", "green"))
	// A variant that was removed is assigned afresh.
	e.Variants = e.Variants[:1]
	fmt.Println(experiment.AssignSticky(e, "visitor-1", "green"))
	// Output:
	// assigned: green
	// green true
	// blue true
}

func ExampleExperiment_Validate() {
	e := &experiment.Experiment{Key: "hero-test", Coverage: 1.5, Variants: []experiment.Variant{
		{Key: "a", Weight: 1}, {Key: "b", Weight: 1}, {Key: "c", Weight: -1},
	}}
	fmt.Println(e.Validate())
	// Output:
	// 2 problems:
	//	experiment "hero-test": variants[2].weight: negative
	//	experiment "hero-test": coverage: not in [0, 1]
}

func ExampleInterval() {
	lo, hi := experiment.Interval(experiment.Counts{Visitors: 100, Conversions: 50}, 0.95)
	fmt.Printf("[%.4f, %.4f]\n", lo, hi)
	lo, hi = experiment.Interval(experiment.Counts{Visitors: 20, Conversions: 0}, 0.95)
	fmt.Printf("[%.4f, %.4f]\n", lo, hi)
	// Output:
	// [0.4038, 0.5962]
	// [0.0000, 0.1611]
}

func ExampleProbBeatsControl() {
	control := experiment.Counts{Visitors: 1000, Conversions: 50}
	variant := experiment.Counts{Visitors: 1000, Conversions: 65}
	fmt.Printf("%.4f\n", experiment.ProbBeatsControl(control, variant))
	// Output: 0.9245
}

func ExampleResults() {
	e := &experiment.Experiment{Key: "hero", Variants: []experiment.Variant{
		{Key: "control", Weight: 1}, {Key: "video", Weight: 1},
	}}
	counts := map[experiment.Cell]experiment.Counts{
		{Segment: "mobile", Variant: "control"}:  {Visitors: 1000, Conversions: 50},
		{Segment: "mobile", Variant: "video"}:    {Visitors: 1000, Conversions: 65},
		{Segment: "desktop", Variant: "control"}: {Visitors: 400, Conversions: 40},
		{Segment: "desktop", Variant: "video"}:   {Visitors: 380, Conversions: 30},
	}
	for _, r := range experiment.Results(e, counts) {
		fmt.Printf("%-8s %-8s %4d %3d %.3f [%.3f, %.3f]", r.Segment, r.Variant, r.Visitors, r.Conversions, r.Rate, r.Lo, r.Hi)
		if !r.Control {
			fmt.Printf(" P(beats control) %.3f", r.ProbBeatsControl)
		}
		fmt.Println()
	}
	// Output:
	// desktop  control   400  40 0.100 [0.074, 0.133]
	// desktop  video     380  30 0.079 [0.056, 0.110] P(beats control) 0.154
	// mobile   control  1000  50 0.050 [0.038, 0.065]
	// mobile   video    1000  65 0.065 [0.051, 0.082] P(beats control) 0.924
}

func ExampleBandit() {
	e := &experiment.Experiment{Key: "cta", Variants: []experiment.Variant{
		{Key: "control", Weight: 1}, {Key: "bold", Weight: 1},
	}}
	b, err := experiment.NewBandit(e, experiment.BanditConfig{Floor: 0.05, Seed: 1})
	if err != nil {
		panic(err)
	}
	fmt.Printf("before: %.2f\n", b.Weights("mobile"))

	// Every few minutes, the counts so far.
	b.Update(map[experiment.Cell]experiment.Counts{
		{Segment: "mobile", Variant: "control"}: {Visitors: 2000, Conversions: 100},
		{Segment: "mobile", Variant: "bold"}:    {Visitors: 2000, Conversions: 160},
	})
	fmt.Printf("after: %.2f\n", b.Weights("mobile"))
	fmt.Printf("desktop: %.2f\n", b.Weights("desktop"))

	// Assignment follows the segment's weights; an exposed visitor stays.
	fmt.Println(b.Assign("mobile", "visitor-1", "control"))
	// Output:
	// before: [0.50 0.50]
	// after: [0.05 0.95]
	// desktop: [0.50 0.50]
	// control true
}
