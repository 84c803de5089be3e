package slots

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/tailorhq/tailor/internal/watched"
	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/rules/experiment"
)

// An Engine picks the content of slots from its current Set, which Load,
// Reload, ReloadFile and Watch replace atomically while it picks, as
// rules.Engine does with segments. It is safe for concurrent use. The zero
// Engine has no slots.
type Engine struct {
	// Logger receives the reloads of Watch that fail; nil is
	// slog.Default(). Set it before calling Watch.
	Logger *slog.Logger

	set watched.Holder[Set]

	mu      sync.Mutex                                       // guards learned
	learned map[string]map[experiment.Cell]experiment.Counts // what each experiment's bandit was last updated with
}

// NewEngine returns an engine for slots, or every problem found in them,
// as Errors.
func NewEngine(slots ...Slot) (*Engine, error) {
	s, err := NewSet(slots...)
	if err != nil {
		return nil, err
	}
	e := &Engine{}
	e.Load(s)
	return e, nil
}

// Load makes s the engine's set of slots. The bandit of an experiment whose
// key the engine already had starts from what the previous one had learned.
func (e *Engine) Load(s *Set) {
	e.seed(s)
	e.set.Load(s, s.Source())
}

// seed updates the bandits of s with what the engine's learned.
func (e *Engine) seed(s *Set) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, sl := range s.experiments() {
		if sl.bandit != nil && e.learned[sl.Experiment.Key] != nil {
			sl.bandit.Update(e.learned[sl.Experiment.Key])
		}
	}
}

// Reload parses data as a slots file (see Parse) and, only if it is valid,
// makes it the engine's set, as Load does. Otherwise the engine keeps its
// set, and the error, which lists every problem, is also kept for Status.
func (e *Engine) Reload(data []byte, opts ...ParseOption) error {
	var cfg parseConfig
	for _, o := range opts {
		o(&cfg)
	}
	return e.set.Reload(data, cfg.file, e.parser(opts))
}

// ReloadFile reads the slots file at path and reloads it as Reload does;
// problems are reported with the file's name.
func (e *Engine) ReloadFile(path string, opts ...ParseOption) error {
	return e.set.ReloadFile("slots", path, e.parser(opts))
}

// Watch reloads the slots file at path whenever its content changes,
// checking every interval (2 seconds if interval is not positive), until
// ctx is done; then it returns ctx.Err(). It reloads the file within one
// interval if its content is not the last it read (a content is read
// twice, an interval apart, so that a half-written file is never loaded).
// A bad file, or one that cannot be read, leaves the engine's slots as
// they were: Status reports why, and so does the engine's Logger.
func (e *Engine) Watch(ctx context.Context, path string, interval time.Duration, opts ...ParseOption) error {
	return e.set.Watch(ctx, "slots", path, interval, e.Logger, e.parser(opts))
}

// parser parses slots files with opts, the bandits of their experiments
// starting from what the engine's learned.
func (e *Engine) parser(opts []ParseOption) watched.Parser[Set] {
	return func(data []byte, file string) (*Set, error) {
		if file != "" {
			opts = append(slices.Clip(opts), Filename(file))
		}
		s, err := Parse(data, opts...)
		if err == nil {
			e.seed(s)
		}
		return s, err
	}
}

// Status returns the state of the engine's slots.
func (e *Engine) Status() rules.Status { return e.set.Status() }

// Set returns the engine's current set.
func (e *Engine) Set() *Set { return e.set.Get() }

// Pick returns the content of the named slot for the visitor: the variant
// of highest priority that matches them, else the default, unless the
// visitor takes part in the slot's experiment (see Experiment), which then
// decides. A nil visitor (outside a wrapped request) gets what matches no
// segment. An unknown slot gives a Choice with an empty Variant.
//
// Pick records the visitor's exposure to the experiment, if any: call it
// when the content is rendered. A visitor already exposed to the same
// variant records nothing (two Picks racing in goroutines of one request
// may both record, which the results do not count twice). For a slot with
// an experiment, or a variant with a condition, Pick reads a copy of the
// visitor's profile: call it once per slot and page.
func (e *Engine) Pick(v *middleware.Visitor, name string) Choice {
	return e.Set().pick(v, name)
}

// BanditWeights returns the current shares of traffic of the variants of
// the named slot's experiment in a results segment (see
// Experiment.Breakdown), aligned with its variants, when it runs as a
// bandit; else nil.
func (e *Engine) BanditWeights(slot, segment string) []float64 {
	sl := e.Set().slot(slot)
	if sl == nil || sl.bandit == nil {
		return nil
	}
	return sl.bandit.Weights(segment)
}

// learn notes what the bandit of the experiment key was updated with, for
// the bandit of a reloaded set.
func (e *Engine) learn(key string, cells map[experiment.Cell]experiment.Counts) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.learned == nil {
		e.learned = map[string]map[experiment.Cell]experiment.Counts{}
	}
	e.learned[key] = cells
}

// experiments returns the set's slots that have an experiment.
func (s *Set) experiments() []*slot {
	if s == nil {
		return nil
	}
	var out []*slot
	for _, name := range s.names {
		if sl := s.slots[name]; sl.Experiment != nil {
			out = append(out, sl)
		}
	}
	return out
}
