package experiment

import (
	"slices"
	"strings"
)

// A Cell names the counts of one variant in one segment. Segment is
// whatever breakdown the caller counts by, such as the segment the visitor
// was in at exposure; "" can stand for all visitors.
type Cell struct {
	Segment string `json:"segment"`
	Variant string `json:"variant"`
}

// A Row is the result of one variant in one segment.
type Row struct {
	Segment string `json:"segment"`
	Variant string `json:"variant"`
	// Control is true on the row of the control, e.Variants[0].
	Control     bool `json:"control"`
	Visitors    int  `json:"visitors"`
	Conversions int  `json:"conversions"`
	// Rate is Conversions / Visitors, 0 without visitors.
	Rate float64 `json:"rate"`
	// Lo and Hi bound the rate's 95% Wilson score interval (see Interval).
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
	// ProbBeatsControl is the probability that the variant's rate is above
	// the control's in the same segment (see ProbBeatsControl); 0 on the
	// control's own row.
	ProbBeatsControl float64 `json:"probBeatsControl"`
}

// Results computes the table of results of e from the counts per segment
// and variant.
//
// There are rows for every segment that has counts, in increasing order of
// segment name. Within a segment come the variants of e in their order
// (control first, with zero counts when it has none), then HoldoutVariant
// when e has a holdout or it has counts, then, in increasing order of key,
// the variants that have counts but are no longer in e.
func Results(e *Experiment, counts map[Cell]Counts) []Row {
	var segments []string
	extra := map[string][]string{}
	for c := range counts {
		segments = append(segments, c.Segment)
		if c.Variant != HoldoutVariant && e.variantIndex(c.Variant) < 0 {
			extra[c.Segment] = append(extra[c.Segment], c.Variant)
		}
	}
	slices.Sort(segments)
	segments = slices.Compact(segments)

	control := e.Control()
	rows := make([]Row, 0, len(segments)*(len(e.Variants)+1))
	for _, seg := range segments {
		keys := make([]string, 0, len(e.Variants)+1+len(extra[seg]))
		for _, v := range e.Variants {
			keys = append(keys, v.Key)
		}
		if _, ok := counts[Cell{seg, HoldoutVariant}]; ok || e.Holdout > 0 {
			keys = append(keys, HoldoutVariant)
		}
		more := extra[seg]
		slices.SortFunc(more, strings.Compare)
		keys = append(keys, more...)

		base := counts[Cell{seg, control}]
		for _, key := range keys {
			c := counts[Cell{seg, key}]
			n, k := c.clamp()
			lo, hi := Interval(c, 0.95)
			r := Row{
				Segment:     seg,
				Variant:     key,
				Control:     control != "" && key == control,
				Visitors:    n,
				Conversions: k,
				Rate:        c.Rate(),
				Lo:          lo,
				Hi:          hi,
			}
			if !r.Control {
				r.ProbBeatsControl = ProbBeatsControl(base, c)
			}
			rows = append(rows, r)
		}
	}
	return rows
}

// A Report is an experiment and its counts so far, as a dashboard shows
// them.
type Report struct {
	// Experiment is the experiment as it runs now. Required.
	Experiment *Experiment
	// Counts are the exposed visitors and conversions per segment and
	// variant (see Results). A cell with an empty Segment stands for all
	// visitors.
	Counts map[Cell]Counts
	// Note, if set, is shown under the experiment's name ("counts since
	// 1 March, from the events table", say).
	Note string
}
