package admin

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// A sample is one measurement of the site: the Personalizer's counters and
// the size of every segment among the stored profiles.
type sample struct {
	Time     time.Time
	Events   uint64 // Stats.Events at Time
	Requests uint64 // Stats.Requests at Time
	// Ranged is false when the store cannot list its profiles: then
	// Profiles and Sizes are unknown.
	Ranged bool
	// Profiles is how many profiles were classified; Complete is false
	// when the store held more than SampleLimit.
	Profiles int
	Complete bool
	// Sizes counts the classified profiles in each segment.
	Sizes map[string]int
	Err   string
	Took  time.Duration
	// Counted is set when the sizes are the store's aggregates (see
	// middleware.Aggregates): exact over every profile, as classified when
	// last written; Backfill says whether some still await the current
	// definitions.
	Counted  bool
	Backfill middleware.Backfill
}

// aggregator is the optional ability of a Source to read the store's
// aggregates (middleware.Personalizer has it).
type aggregator interface {
	Aggregates(ctx context.Context) (middleware.Aggregates, error)
}

// history is a ring of the last samples.
type history struct {
	mu   sync.RWMutex
	buf  []sample
	next int
}

func newHistory(n int) *history { return &history{buf: make([]sample, 0, n)} }

func (h *history) add(s sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.buf) < cap(h.buf) {
		h.buf = append(h.buf, s)
		return
	}
	h.buf[h.next] = s
	h.next = (h.next + 1) % len(h.buf)
}

// all returns the samples, oldest first.
func (h *history) all() []sample {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]sample, 0, len(h.buf))
	out = append(out, h.buf[h.next:]...)
	return append(out, h.buf[:h.next]...)
}

// last returns the newest sample.
func (h *history) last() (sample, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if len(h.buf) == 0 {
		return sample{}, false
	}
	i := h.next - 1
	if i < 0 {
		i = len(h.buf) - 1
	}
	return h.buf[i], true
}

// counted reports whether segment sizes come from the store's aggregates.
func (h *Handler) counted() bool {
	if _, ok := h.p.(aggregator); !ok {
		return false
	}
	_, ok := h.p.Store().(store.Counter)
	return ok
}

// current returns the newest sizes: read now from the store's aggregates
// when it keeps them (one small read, so that every page shows the counts
// of when it was loaded); otherwise the last measurement, if any.
func (h *Handler) current(ctx context.Context) (sample, bool) {
	if h.counted() {
		return h.measure(ctx), true
	}
	return h.hist.last()
}

// withCurrent returns samples with cur appended when it is newer than the
// last of them: the charts then end at the counts the page shows.
func withCurrent(samples []sample, cur sample, ok bool) []sample {
	if !ok || len(samples) > 0 && !cur.Time.After(samples[len(samples)-1].Time) {
		return samples
	}
	return append(samples, cur)
}

func (h *Handler) sampleLoop(ctx context.Context) {
	defer close(h.done)
	h.hist.add(h.measure(ctx))
	t := time.NewTicker(h.cfg.SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s := h.measure(ctx)
			if ctx.Err() != nil {
				return
			}
			h.hist.add(s)
		}
	}
}

// measure takes a sample: it reads the store's aggregates when it keeps
// them (every tailor store does); otherwise it ranges over at most SampleLimit profiles of
// the store and classifies each one with the engine, as of now and
// without request facts. Profiles merged into a user's profile are
// skipped: the user's profile counts for them.
func (h *Handler) measure(ctx context.Context) sample {
	start := time.Now()
	now := h.cfg.Now()
	st := h.p.Stats()
	s := sample{Time: now, Events: st.Events, Requests: st.Requests, Sizes: map[string]int{}}
	if h.counted() {
		a, err := h.p.(aggregator).Aggregates(ctx)
		s.Ranged, s.Counted, s.Complete = true, true, err == nil
		if err != nil {
			s.Err = err.Error()
			if ctx.Err() == nil { // not the dashboard closing
				h.cfg.Logger.Warn("tailor/admin: reading the segment sizes failed", "err", err)
			}
		}
		s.Profiles, s.Backfill = int(a.Profiles), a.Backfill
		for name, n := range a.Segments {
			s.Sizes[name] = int(n)
		}
		s.Took = time.Since(start)
		return s
	}
	rg, ok := h.p.Store().(store.Ranger)
	if !ok {
		return s
	}
	s.Ranged = true
	// A measurement never runs into the next one.
	ctx, cancel := context.WithTimeout(ctx, max(h.cfg.SampleInterval, time.Second))
	defer cancel()
	engine := h.p.Engine()
	complete := true
	err := rg.Range(ctx, func(p *store.Profile) bool {
		if p.MergedInto != "" {
			return true // counted in the user's profile
		}
		if s.Profiles >= h.cfg.SampleLimit {
			complete = false
			return false
		}
		s.Profiles++
		for _, seg := range engine.Classify(&rules.Input{Profile: p, Now: now}) {
			s.Sizes[seg]++
		}
		return true
	})
	s.Complete = complete && err == nil
	if err != nil {
		s.Err = err.Error()
		if !errors.Is(err, context.Canceled) {
			h.cfg.Logger.Warn("tailor/admin: measuring segment sizes failed", "err", err, "profiles", s.Profiles)
		}
	}
	s.Took = time.Since(start)
	return s
}
