package admin

import (
	"context"
	"time"

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

// A FileStatus is the state of the file an ExperimentSource reads its
// experiments from, when the site reloads it while it runs.
type FileStatus struct {
	// Source is the file's name, or "" when the experiments are defined
	// in Go.
	Source string
	// Loaded is when the experiments now running were loaded.
	Loaded time.Time
	// Attempted is when the file was last loaded or reloaded.
	Attempted time.Time
	// Err is why the last reload failed, or nil: the site kept the
	// experiments loaded before.
	Err error
}

// A FileSource is an ExperimentSource that also says how its file was
// loaded (slots.Tally is one). The experiments page shows it, with the
// errors of a reload that failed, so that whoever edits the file sees
// why their change is not live.
type FileSource interface {
	ExperimentSource
	FileStatus() FileStatus
}
