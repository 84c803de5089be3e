package admin

import (
	"context"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/rules/experiment"
)

// An ExperimentSource provides the experiments shown on the experiments
// page. It is called on every view of the page, with the request's
// context.
type ExperimentSource interface {
	ExperimentResults(ctx context.Context) ([]experiment.Report, error)
}

// ExperimentFunc adapts a function to an ExperimentSource.
type ExperimentFunc func(ctx context.Context) ([]experiment.Report, error)

// ExperimentResults calls f.
func (f ExperimentFunc) ExperimentResults(ctx context.Context) ([]experiment.Report, error) {
	return f(ctx)
}

// A FileSource is an ExperimentSource that also says how the file it reads
// its experiments from was loaded, when the site reloads it while it runs
// (slots.Tally is one; Source is "" when the experiments are defined in
// Go). The experiments page shows it, with the errors of a reload that
// failed, so that whoever edits the file sees why their change is not
// live.
type FileSource interface {
	ExperimentSource
	FileStatus() rules.Status
}
