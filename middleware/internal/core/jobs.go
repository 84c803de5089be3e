package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tailorhq/tailor/store"
)

// Site-wide segment jobs, run by the one instance that holds segmentsLease
// (or by every instance when the store has no leases: both jobs write
// segments events, which the store's fold applies only against the
// segments it holds, so that running them twice changes nothing twice):
//
//   - the recheck: every RecheckEvery, the profiles whose segments may have
//     changed without them doing anything (store.Rechecker.Due: a window
//     of time moved past an event) are classified again without a request
//     (rules.Engine.Reclassify), which records the exits and entries, the
//     aggregates, and when to look again;
//   - the backfill: when the definitions of the segments differ from those
//     the stored segments were computed with (rules.Set.Digest), one pass
//     over every stored profile (store.Scanner) classifies them again, in
//     pages, throttled, resumable from the cursor kept in the store's
//     document BackfillDocument, so that a restart or another instance goes
//     on where it stopped.
//
// The segment changes these writes make are reported to the observers as
// a request's are, exactly once: an event whose write failed is written
// again with the same id (store.Apply is exactly-once), and its change is
// reported once the write is acknowledged.

const (
	segmentsLease = "tailor/segments"
	// BackfillDocument is the name of the store document that holds the
	// backfill's progress (a Backfill in JSON).
	BackfillDocument = "tailor/backfill"
	// RecheckEvery is how often, by default, the holder of the lease looks
	// for profiles whose time has come, and renews the lease.
	RecheckEvery = 5 * time.Second
	// recheckPage bounds the profiles rechecked in one write.
	recheckPage = 256
	// backfillPage is the size of a backfill's page, and backfillRate
	// bounds its pace, in profiles per second, so that it leaves the store
	// room for the site's requests.
	backfillPage = 500
	backfillRate = 20000
	// boundary is how long after a window's edge a profile is looked at
	// again, when the rules say its segments may change at the edge itself
	// (an event exactly as old as a window is still in it).
	boundary = time.Second
)

// Backfill is the progress of a backfill, as kept in the store.
type Backfill struct {
	// Digest identifies the definitions the pass classifies with.
	Digest string `json:"digest"`
	// Cursor is where the next page starts (store.Scanner).
	Cursor string `json:"cursor,omitempty"`
	// Done counts the profiles classified; Total is the number of stored
	// profiles when the pass began, as counted (store.CountProfiles),
	// or Done if more.
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
	// Started and Finished bound the pass; Finished is zero while it
	// runs.
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Rate is the pace of the last page, in profiles per second.
	Rate float64 `json:"rate,omitempty"`
	// Holder is the instance that runs it.
	Holder string `json:"holder,omitempty"`
}

// Running reports whether the pass is under way.
func (b Backfill) Running() bool { return !b.Started.IsZero() && b.Finished.IsZero() }

// Left estimates the time until the pass ends, at its current rate; zero
// when unknown.
func (b Backfill) Left() time.Duration {
	if !b.Running() || b.Rate <= 0 || b.Total <= b.Done {
		return 0
	}
	return time.Duration(float64(b.Total-b.Done) / b.Rate * float64(time.Second))
}

// jobsFor reports whether the segment jobs can run over st.
func (p *Core) runsJobs() bool {
	_, rc := p.store.(store.Rechecker)
	return p.cfg.Engine != nil && rc
}

// jobs runs the segment jobs until Close.
func (p *Core) jobs(ctx context.Context) {
	t := time.NewTicker(p.recheckEvery())
	defer t.Stop()
	for {
		if p.holdJobs(ctx) {
			p.recheck(ctx)
			p.backfill(ctx)
		}
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

func (p *Core) recheckEvery() time.Duration {
	if d := p.cfg.RecheckInterval; d > 0 {
		return d
	}
	return RecheckEvery
}

// holdJobs takes or renews the segments lease; without leases, every
// instance runs the jobs.
func (p *Core) holdJobs(ctx context.Context) bool {
	l, ok := p.store.(store.Leaser)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StoreTimeout)
	defer cancel()
	// The lease outlives a few missed renewals.
	ctx, sp := p.startStore(ctx, "Lease")
	held, err := l.Lease(ctx, segmentsLease, p.producer, max(6*p.recheckEvery(), 10*time.Second))
	sp.end(err)
	if err != nil {
		p.jobFailed("taking the segments lease", err)
		return false
	}
	if held {
		p.leased.Store(true)
	}
	return held
}

// jobFailed logs a job's failure, at most once a minute.
func (p *Core) jobFailed(what string, err error) {
	if ctxErr(err) {
		return
	}
	now := time.Now().UnixNano()
	if last := p.jobLogged.Load(); now-last < int64(time.Minute) || !p.jobLogged.CompareAndSwap(last, now) {
		return
	}
	p.cfg.Logger.Warn("tailor: segments job: "+what+" failed; retrying", "err", err)
}

func ctxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, store.ErrClosed)
}

// recheck classifies again the profiles whose time has come.
func (p *Core) recheck(ctx context.Context) {
	rc := p.store.(store.Rechecker)
	for range 64 { // bounded per tick; the rest waits for the next
		if !p.retryJobWrites(ctx) {
			return
		}
		now := p.cfg.Now()
		sctx, cancel := context.WithTimeout(ctx, p.cfg.StoreTimeout)
		sctx, sp := p.startStore(sctx, "Due")
		ids, err := rc.Due(sctx, now, recheckPage)
		sp.end(err)
		cancel()
		if err != nil {
			p.jobFailed("finding the profiles to recheck", err)
			return
		}
		if len(ids) == 0 {
			return
		}
		var batches []store.Batch
		for _, id := range ids {
			sctx, cancel := context.WithTimeout(ctx, p.cfg.StoreTimeout)
			prof, err := p.storeLoad(sctx, id)
			cancel()
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted since
			}
			if err != nil {
				p.jobFailed("loading a profile to recheck", err)
				return
			}
			if b, ok := p.reclassify(prof, now, true); ok {
				batches = append(batches, b)
			}
		}
		if !p.writeJob(ctx, batches) {
			return
		}
		p.stats.Rechecked.Add(uint64(len(batches)))
		if len(ids) < recheckPage {
			return
		}
	}
}

// reclassify returns the segments event that classifies prof again at now
// without a request, if it must be written: always when force (the
// profile's time has come, so its Recheck must move), else when the
// segments or the time to look again differ from those stored, or the
// profile is not counted yet.
func (p *Core) reclassify(prof *store.Profile, now time.Time, force bool) (store.Batch, bool) {
	if prof.MergedInto != "" {
		return store.Batch{}, false // frozen: the fold applies nothing
	}
	segs, until := p.cfg.Engine.Reclassify(prof, prof.Segments, now)
	if !until.IsZero() && !until.After(now) {
		until = now.Add(boundary)
	}
	if !force && prof.Counted && prof.Segments != nil && store.SameSegments(segs, prof.Segments) && until.Equal(prof.Recheck) {
		return store.Batch{}, false
	}
	if segs == nil {
		segs = []string{}
	}
	ev := store.Event{ID: p.jobID(), Type: store.TypeSegments, Time: now,
		Classified: &store.Classification{Visitor: prof.ID, Was: prof.Segments, Segments: segs, Until: until,
			Version: max(prof.Version, 1)}}
	return store.Batch{ID: prof.ID, Events: []store.Event{ev}}, true
}

// writeJob writes the batches of a job and reports the changes they made;
// on failure it keeps them to write again, with the same event ids, before
// anything else (retryJobWrites). It reports whether they were written.
func (p *Core) writeJob(ctx context.Context, batches []store.Batch) bool {
	if len(batches) == 0 {
		return true
	}
	sctx, cancel := context.WithTimeout(ctx, 4*p.cfg.StoreTimeout)
	profs, err := p.applyBatch(sctx, batches)
	cancel()
	if err != nil {
		p.jobMu.Lock()
		p.jobRetry = append(p.jobRetry, batches...)
		p.jobMu.Unlock()
		p.jobFailed("writing segments", err)
		return false
	}
	if !p.cfg.Hooks.WantsSegments() {
		return true
	}
	var changes []SegmentChange
	for i, b := range batches {
		prof := profs[i]
		if prof == nil {
			continue
		}
		for _, e := range b.Events {
			if c, ok := prof.SegmentChange(e.ID); ok {
				changes = append(changes, SegmentChange{VisitorID: c.Visitor, UserID: userOf(prof),
					Entered: c.Entered, Exited: c.Exited, Time: c.Time})
			}
		}
	}
	for _, c := range changes {
		p.cfg.Hooks.SegmentChange(c) // no lock held
	}
	return true
}

// retryJobWrites writes again the batches whose write failed, and reports
// whether none is left.
func (p *Core) retryJobWrites(ctx context.Context) bool {
	p.jobMu.Lock()
	bs := p.jobRetry
	p.jobRetry = nil
	p.jobMu.Unlock()
	return p.writeJob(ctx, bs)
}

// userOf returns the user id of prof: its UserID, or the id of a user's
// profile without its prefix.
func userOf(prof *store.Profile) string {
	if prof.UserID != "" {
		return prof.UserID
	}
	if u, ok := strings.CutPrefix(prof.ID, store.UserPrefix); ok {
		return u
	}
	return ""
}

// backfill goes on with the pass over every profile when the definitions
// changed since the last one, a page at a time, until it ends or the
// instance stops.
func (p *Core) backfill(ctx context.Context) {
	sc, ok1 := p.store.(store.Scanner)
	docs, ok2 := p.store.(store.Documents)
	set := p.cfg.Engine.Set()
	if !ok1 || !ok2 || set == nil {
		return
	}
	digest := set.Digest()
	b, err := p.readBackfill(ctx, docs)
	if err != nil {
		p.jobFailed("reading the backfill's progress", err)
		return
	}
	if b.Digest == digest && !b.Running() {
		return // up to date
	}
	if b.Digest != digest { // a new pass
		b = Backfill{Digest: digest, Started: p.cfg.Now()}
		if c, ok := p.store.(store.Counter); ok {
			sctx, cancel := context.WithTimeout(ctx, p.cfg.StoreTimeout)
			sctx, sp := p.startStore(sctx, "Counts")
			n, err := c.Counts(sctx)
			sp.end(err)
			cancel()
			if err != nil {
				p.jobFailed("counting the profiles to backfill", err)
				return
			}
			b.Total = n[store.CountProfiles]
		}
	}
	b.Holder = p.producer
	renewed := time.Now()
	for {
		if p.closed.Load() || ctx.Err() != nil || p.cfg.Engine.Set().Digest() != digest {
			return // stopping, or a newer pass begins at the next tick
		}
		if time.Since(renewed) > p.recheckEvery() {
			if !p.holdJobs(ctx) {
				return // lost the lease: its new holder goes on
			}
			renewed = time.Now()
			p.recheck(ctx)
		}
		if !p.retryJobWrites(ctx) {
			return
		}
		start := time.Now()
		sctx, cancel := context.WithTimeout(ctx, 4*p.cfg.StoreTimeout)
		sctx, sp := p.startStore(sctx, "Scan")
		profs, next, err := sc.Scan(sctx, b.Cursor, backfillPage)
		sp.end(err)
		cancel()
		if err != nil {
			p.jobFailed("reading profiles to backfill", err)
			return
		}
		now := p.cfg.Now()
		var batches []store.Batch
		for _, prof := range profs {
			if bt, ok := p.reclassify(prof, now, false); ok {
				batches = append(batches, bt)
			}
		}
		if !p.writeJob(ctx, batches) {
			return
		}
		b.Done += int64(len(profs))
		b.Total = max(b.Total, b.Done)
		b.Cursor = next
		if next == "" {
			b.Finished = p.cfg.Now()
		}
		// The pace: at most backfillRate profiles a second.
		if d := time.Duration(float64(len(profs))/backfillRate*float64(time.Second)) - time.Since(start); d > 0 {
			select {
			case <-p.stop:
			case <-time.After(d):
			}
		}
		if el := time.Since(start); el > 0 {
			b.Rate = float64(len(profs)) / el.Seconds()
		}
		if err := p.writeBackfill(ctx, docs, b); err != nil {
			p.jobFailed("writing the backfill's progress", err)
			return
		}
		if next == "" {
			if b.Done > 0 {
				p.cfg.Logger.Info("tailor: backfill of the stored segments done", "profiles", b.Done, "took", b.Finished.Sub(b.Started).Round(time.Millisecond))
			}
			return
		}
	}
}

func (p *Core) readBackfill(ctx context.Context, docs store.Documents) (Backfill, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StoreTimeout)
	defer cancel()
	var b Backfill
	ctx, sp := p.startStore(ctx, "Document")
	data, err := docs.Document(ctx, BackfillDocument)
	if errors.Is(err, store.ErrNotFound) {
		sp.end(nil)
		return b, nil
	}
	sp.end(err)
	if err != nil {
		return b, err
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return Backfill{}, fmt.Errorf("document %s: %w", BackfillDocument, err)
	}
	return b, nil
}

func (p *Core) writeBackfill(ctx context.Context, docs store.Documents, b Backfill) error {
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StoreTimeout)
	defer cancel()
	ctx, sp := p.startStore(ctx, "PutDocument")
	err = docs.PutDocument(ctx, BackfillDocument, data)
	sp.end(err)
	return err
}

// BackfillProgress returns the progress of the backfill, as kept in the
// store; the zero Backfill if the store keeps none or none ran yet.
func (p *Core) BackfillProgress(ctx context.Context) (Backfill, error) {
	docs, ok := p.store.(store.Documents)
	if !ok {
		return Backfill{}, nil
	}
	return p.readBackfill(ctx, docs)
}
