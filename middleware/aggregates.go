package middleware

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tailorhq/tailor/store"
)

// ErrNoAggregates is returned by Aggregates when the store keeps no
// aggregates (it does not implement store.Counter). Every store of tailor
// keeps them.
var ErrNoAggregates = errors.New("tailor: the store keeps no aggregates (store.Counter)")

// Aggregates are exact counts over every stored profile, which the store
// changes in the same write as the profile they come from (see
// store.Counter): reading them costs one small read of the store, whatever
// the number of profiles. They reflect what is written: events recorded on
// this instance are written within WriteBehindConfig.FlushInterval.
type Aggregates struct {
	// Profiles counts the stored profiles that are not merged into a
	// user's profile.
	Profiles int64
	// Segments counts the profiles per segment they were last classified
	// into (store.Profile.Segments), for the segments that have members.
	Segments map[string]int64
	// Counts holds every count by its key (see store.CountKeys), among
	// them the exposures and conversions of experiments.
	Counts map[string]int64
	// Backfill is the progress of the pass that classifies every stored
	// profile again after the segments' definitions changed: while it
	// runs, Segments count some profiles by the older definitions.
	Backfill Backfill
}

// Backfill is the progress of a backfill: the one pass, run by one
// instance of those sharing the store (the holder of the store's lease
// "tailor/segments"), that classifies every stored profile again when the
// definitions of the segments changed (rules.Set.Digest), so that the
// stored segments and their sizes follow the definitions. It resumes
// where it stopped after a restart, also on another instance.
type Backfill struct {
	Running bool
	// Done counts the profiles classified so far; Total the stored
	// profiles when the pass began (at least Done).
	Done, Total int64
	// Rate is the current pace in profiles per second, and Left the time
	// it needs at that pace to finish.
	Rate float64
	Left time.Duration
	// Started and Finished bound the last pass; Finished is zero while it
	// runs.
	Started, Finished time.Time
}

// Aggregates returns the store's aggregates, and the backfill's progress.
// It returns ErrNoAggregates for a store that keeps none.
func (p *Personalizer) Aggregates(ctx context.Context) (Aggregates, error) {
	c, ok := p.cfg.Store.(store.Counter)
	if !ok {
		return Aggregates{}, ErrNoAggregates
	}
	counts, err := c.Counts(ctx)
	if err != nil {
		return Aggregates{}, fmt.Errorf("tailor: aggregates: %w", err)
	}
	a := Aggregates{Profiles: counts[store.CountProfiles], Segments: map[string]int64{}, Counts: counts}
	for k, n := range counts {
		if kind, parts := store.ParseCountKey(k); kind == store.KindSegment && len(parts) == 1 {
			a.Segments[parts[0]] = n
		}
	}
	b, err := p.core.BackfillProgress(ctx)
	if err != nil {
		return a, fmt.Errorf("tailor: aggregates: backfill progress: %w", err)
	}
	a.Backfill = Backfill{Running: b.Running(), Done: b.Done, Total: b.Total, Rate: b.Rate, Left: b.Left(),
		Started: b.Started, Finished: b.Finished}
	return a, nil
}
