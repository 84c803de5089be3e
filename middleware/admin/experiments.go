package admin

import (
	"context"

	"github.com/tailorhq/tailor/rules/experiment"
)

// ExperimentResults are an experiment and its counts so far.
type ExperimentResults struct {
	// Experiment is the experiment as it runs now. Required.
	Experiment *experiment.Experiment
	// Counts are the exposed visitors and conversions per segment and
	// variant (see experiment.Results). A cell with an empty Segment
	// stands for all visitors.
	Counts map[experiment.Cell]experiment.Counts
	// Note, if set, is shown under the experiment's name ("counts since
	// 1 March, from the events table", say).
	Note string
}

// An ExperimentSource provides the experiments shown on the experiments
// page. It is called on every view of the page, with the request's
// context.
type ExperimentSource interface {
	ExperimentResults(ctx context.Context) ([]ExperimentResults, error)
}

// ExperimentFunc adapts a function to an ExperimentSource.
type ExperimentFunc func(ctx context.Context) ([]ExperimentResults, error)

// ExperimentResults calls f.
func (f ExperimentFunc) ExperimentResults(ctx context.Context) ([]ExperimentResults, error) {
	return f(ctx)
}
