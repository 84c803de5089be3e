package slots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/rules/experiment"
	"github.com/tailorhq/tailor/store"
)

// DefaultTallyLimit is TallyConfig.Limit when it is zero.
const DefaultTallyLimit = 100_000

// TallyConfig configures a Tally.
type TallyConfig struct {
	// Store is where the profiles are counted. Required.
	Store store.Ranger
	// Limit is the most profiles one count reads; past it, counts are
	// those of the first Limit profiles the store yields, and the results'
	// note says so. Default DefaultTallyLimit.
	Limit int
	// MaxAge is how old counts may be when ExperimentResults serves them;
	// older ones are counted again first. Default 1 minute.
	MaxAge time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// A Tally counts the results of an Engine's experiments from the stored
// profiles: per experiment, segment and variant, the visitors exposed and
// those who converted. A visitor counts in the variant and segment of their
// exposure trait (see the package documentation), and has converted when
// the count of one of the experiment's goal events (Profile.Counts) is
// above its count at exposure. Goals added to an experiment after a
// visitor's exposure do not count for that visitor. Profiles merged into a
// user's profile are skipped: the user's profile counts for them.
//
// Counts are exact, the same on every instance, and survive restarts;
// they miss the events not yet written to the store (see
// middleware.WriteBehindConfig.FlushInterval). When the store keeps
// aggregates (store.Counter: every tailor store), they are read from them,
// which the store keeps as it writes profiles (store.ExposureKey): every
// profile counts, and a Refresh costs one small read. Otherwise the
// profiles are read, up to TallyConfig.Limit.
//
// A Tally is an admin.ExperimentSource, and an admin.FileSource. It is safe
// for concurrent use.
type Tally struct {
	engine *Engine
	cfg    TallyConfig

	refresh sync.Mutex // one count at a time
	mu      sync.Mutex
	counts  map[string]map[experiment.Cell]experiment.Counts // by experiment key
	at      time.Time
	read    int
	cut     bool
	counted bool // from the store's aggregates
}

// FileStatus returns the state of the engine's slots (see Engine.Status),
// for the dashboard. It implements admin.FileSource.
func (t *Tally) FileStatus() rules.Status { return t.engine.Status() }

// NewTally returns a Tally of the experiments of engine's current set.
func NewTally(engine *Engine, cfg TallyConfig) (*Tally, error) {
	if engine == nil {
		return nil, errors.New("slots: NewTally needs an Engine")
	}
	if cfg.Store == nil {
		return nil, errors.New("slots: TallyConfig.Store is required")
	}
	if cfg.Limit <= 0 {
		cfg.Limit = DefaultTallyLimit
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Tally{engine: engine, cfg: cfg}, nil
}

// Refresh counts the profiles of the store again, then updates the
// bandits of the experiments that have one with the new counts. On an
// error the previous counts are kept.
func (t *Tally) Refresh(ctx context.Context) error {
	t.refresh.Lock()
	defer t.refresh.Unlock()
	exps := t.engine.Set().experiments()
	counts := make(map[string]map[experiment.Cell]experiment.Counts, len(exps))
	for _, sl := range exps {
		counts[sl.Experiment.Key] = map[experiment.Cell]experiment.Counts{}
	}
	read, cut, counted := 0, false, false
	var err error
	if c, ok := t.cfg.Store.(store.Counter); ok {
		read, err = fromAggregates(ctx, c, counts)
		counted = true
	} else {
		read, cut, err = t.scan(ctx, exps, counts)
	}
	if err != nil {
		return fmt.Errorf("slots: counting experiments: %w", err)
	}
	for _, sl := range exps {
		if sl.bandit != nil {
			cells := banditCells(sl.Experiment, counts[sl.Experiment.Key])
			sl.bandit.Update(cells)
			t.engine.learn(sl.Experiment.Key, cells)
		}
	}
	t.mu.Lock()
	t.counts, t.at, t.read, t.cut, t.counted = counts, t.cfg.Now(), read, cut, counted
	t.mu.Unlock()
	return nil
}

// fromAggregates fills counts, which has a map per experiment counted,
// from the store's aggregates (store.ExposureKey), and returns the number
// of profiles stored.
func fromAggregates(ctx context.Context, c store.Counter, counts map[string]map[experiment.Cell]experiment.Counts) (int, error) {
	all, err := c.Counts(ctx)
	if err != nil {
		return 0, err
	}
	for k, n := range all {
		kind, parts := store.ParseCountKey(k)
		if kind != store.KindExposed && kind != store.KindConverted || len(parts) != 3 {
			continue
		}
		m := counts[parts[0]]
		if m == nil {
			continue // not an experiment of the set
		}
		cells := []experiment.Cell{{Segment: parts[2], Variant: parts[1]}}
		if parts[2] != "" {
			cells = append(cells, experiment.Cell{Variant: parts[1]})
		}
		for _, cell := range cells {
			x := m[cell]
			if kind == store.KindExposed {
				x.Visitors += int(n)
			} else {
				x.Conversions += int(n)
			}
			m[cell] = x
		}
	}
	return int(all[store.CountProfiles]), nil
}

// scan fills counts by reading up to Limit profiles of the store.
func (t *Tally) scan(ctx context.Context, exps []*slot, counts map[string]map[experiment.Cell]experiment.Counts) (read int, cut bool, err error) {
	err = t.cfg.Store.Range(ctx, func(p *store.Profile) bool {
		if read >= t.cfg.Limit {
			cut = true
			return false
		}
		read++
		if p.MergedInto != "" || len(p.Traits) == 0 {
			return true
		}
		var traits map[string]json.RawMessage
		if json.Unmarshal(p.Traits, &traits) != nil {
			return true
		}
		for _, sl := range exps {
			e := sl.Experiment
			raw := traits[TraitPrefix+e.Key]
			if raw == nil {
				continue
			}
			var x exposure
			if json.Unmarshal(raw, &x) != nil || x.Variant == "" {
				continue
			}
			converted := false
			for _, g := range e.Goals {
				if base, ok := x.Goals[g]; ok && p.Counts[g] > base {
					converted = true
					break
				}
			}
			add(counts[e.Key], experiment.Cell{Segment: x.Segment, Variant: x.Variant}, converted)
			if x.Segment != "" {
				add(counts[e.Key], experiment.Cell{Variant: x.Variant}, converted)
			}
		}
		return true
	})
	return read, cut, err
}

func add(m map[experiment.Cell]experiment.Counts, c experiment.Cell, converted bool) {
	n := m[c]
	n.Visitors++
	if converted {
		n.Conversions++
	}
	m[c] = n
}

// banditCells returns the cells a bandit is updated with: those of the
// breakdown segments, without the totals of all visitors (segment "")
// when there is a breakdown.
func banditCells(e *Experiment, counts map[experiment.Cell]experiment.Counts) map[experiment.Cell]experiment.Counts {
	if len(e.Breakdown) == 0 {
		return counts
	}
	out := make(map[experiment.Cell]experiment.Counts, len(counts))
	for c, n := range counts {
		if c.Segment != "" {
			out[c] = n
		}
	}
	return out
}

// Run refreshes the counts every interval (and once at once) until ctx is
// done, logging nothing: errors are returned by the next Refresh the
// caller makes, and the previous counts are kept meanwhile. Run it in a
// goroutine when the set has bandits, so that they learn.
func (t *Tally) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = t.cfg.MaxAge
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		_ = t.Refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Counts returns the counts of the experiment of the given key, per
// segment and variant, as of the last Refresh: nil before the first. A
// cell with an empty Segment holds all visitors; with a breakdown, the
// others hold each breakdown segment's and OtherSegment's.
func (t *Tally) Counts(key string) map[experiment.Cell]experiment.Counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.counts[key])
}

// ExperimentResults returns the set's experiments with their counts,
// counting again first when the counts are older than TallyConfig.MaxAge.
// It implements admin.ExperimentSource.
func (t *Tally) ExperimentResults(ctx context.Context) ([]experiment.Report, error) {
	t.mu.Lock()
	stale := t.counts == nil || t.cfg.Now().Sub(t.at) > t.cfg.MaxAge
	t.mu.Unlock()
	if stale {
		if err := t.Refresh(ctx); err != nil {
			return nil, err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []experiment.Report
	for _, sl := range t.engine.Set().experiments() {
		e := sl.Experiment
		note := fmt.Sprintf("slot %q; counted from %d stored profiles at %s", sl.Name, t.read, t.at.Format(time.RFC3339))
		if t.counted {
			note = fmt.Sprintf("slot %q; counted by the store over all %d profiles, as written, at %s", sl.Name, t.read, t.at.Format(time.RFC3339))
		}
		if t.cut {
			note += fmt.Sprintf(" (the first %d only: TallyConfig.Limit)", t.cfg.Limit)
		}
		if sl.bandit != nil {
			note += "; bandit"
		}
		out = append(out, experiment.Report{
			Experiment: new(e.Experiment),
			Counts:     maps.Clone(t.counts[e.Key]),
			Note:       note,
		})
	}
	return out, nil
}
