package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tailorhq/tailor/store"
)

// Write-behind: the flusher writes queued events to the store every
// FlushInterval (at once for actions), probes a failing store, and
// reports the segment changes that its writes made.

// report queues for the observers the segment changes that the
// segments events of the written batches made, as the store's profiles
// say: each change is made by one event, written by one producer, and
// reported by it once the store acknowledged the write (also when an
// earlier try of the same write was applied but not acknowledged). The
// changes are delivered by unlockFlush, once flushMu is released, so that
// the callback may call anything. flushMu is held.
func (p *Core) report(written []store.Batch, profs []*store.Profile) {
	if !p.cfg.Hooks.WantsSegments() {
		return
	}
	for i, b := range written {
		prof := profs[i]
		if prof == nil {
			continue
		}
		for _, e := range b.Events {
			if e.Type != store.TypeSegments {
				continue
			}
			if c, ok := prof.SegmentChange(e.ID); ok {
				user := prof.UserID
				if user == "" {
					user = strings.TrimPrefix(prof.ID, store.UserPrefix)
					if user == prof.ID {
						user = ""
					}
				}
				p.reports = append(p.reports, SegmentChange{VisitorID: c.Visitor, UserID: user,
					Entered: c.Entered, Exited: c.Exited, Time: c.Time})
			}
		}
	}
}

// loop flushes the queue every FlushInterval. While the store fails it
// does not back off: every FlushInterval it probes the store with a cheap
// load (see probe) and flushes as soon as one succeeds, so that pending
// events land within about one FlushInterval of the store answering
// again. Failures are logged when they begin, then at most every
// failLogEvery, and the recovery once.
func (p *Core) loop() {
	defer close(p.done)
	interval := p.cfg.FlushInterval
	t := time.NewTimer(interval)
	defer t.Stop()
	// Retention runs a minute after start, then every hour.
	ret := time.NewTimer(time.Minute)
	defer ret.Stop()
	var (
		failing  time.Time // when the current run of failures began; zero if none
		failures int       // failed flushes and probes since failing
		logged   time.Time // when the failure was last logged
	)
	fail := func(what string, err error) {
		now := time.Now()
		if failing.IsZero() {
			failing = now
		}
		failures++
		if logged.IsZero() || now.Sub(logged) >= failLogEvery {
			logged = now
			p.cfg.Logger.Warn("tailor: "+what+" failed; retrying every FlushInterval", "err", err,
				"pending", p.queue.Len(), "failures", failures, "since", failing, "retry_in", interval)
		}
	}
	for {
		select {
		case <-p.stop:
			return
		case <-ret.C:
			p.expireInBackground()
			ret.Reset(time.Hour)
			continue
		case <-t.C:
		case <-p.wake:
			// Coalesce the actions of the next few milliseconds into one
			// write, unless the store is failing (then wait for the timer).
			if !failing.IsZero() {
				continue
			}
			time.Sleep(min(interval, 20*time.Millisecond))
		}
		start := time.Now()
		if !failing.IsZero() {
			if err := p.probe(); err != nil {
				fail("reaching the store", err)
				t.Reset(interval)
				continue
			}
		}
		next := interval
		if err := p.flush(context.Background()); err != nil {
			fail("writing events", err)
		} else {
			if !failing.IsZero() {
				p.cfg.Logger.Info("tailor: the store answers again; pending events written",
					"down_for", time.Since(failing).Round(time.Millisecond), "failures", failures)
				failing, failures, logged = time.Time{}, 0, time.Time{}
			}
			// Keep the cadence: the next flush starts one interval after
			// this one started, however long this one took.
			next = max(0, interval-time.Since(start))
		}
		if d := p.queue.TakeDropped(); d > 0 {
			p.cfg.Logger.Error("tailor: pending events dropped at Config.WriteBehind.MaxPending", "dropped", d, "max_pending", p.cfg.MaxPending)
		}
		t.Reset(next)
	}
}

// failLogEvery is how often a continuing store failure is logged again.
const failLogEvery = 30 * time.Second

// probeID is the profile that probe loads; it need not exist.
const probeID = "tailor-probe"

// probe checks that the store answers, with a load that costs the store
// little and leaves no trace (ErrNotFound counts as an answer), bounded by
// the shorter of StoreTimeout and FlushInterval. While the store does not
// answer, loads on the request path are skipped.
func (p *Core) probe() error {
	ctx, cancel := context.WithTimeout(context.Background(), min(p.cfg.StoreTimeout, p.cfg.FlushInterval))
	defer cancel()
	_, err := p.storeLoad(ctx, probeID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		p.storeDownUntil.Store(time.Now().Add(p.cfg.FlushInterval).UnixNano())
		return err
	}
	return nil
}

// Flush writes every pending event to the store now.
func (p *Core) Flush(ctx context.Context) error {
	return p.flush(ctx)
}

func (p *Core) flush(ctx context.Context) (err error) {
	p.lockFlush()
	defer p.unlockFlush()
	bs := p.queue.Take()
	ctx, sp := p.startFlush(ctx, bs)
	defer func() { sp.end(err) }()
	start := time.Now()
	for i := 0; i < len(bs); i += p.cfg.FlushBatch {
		chunk := bs[i:min(i+p.cfg.FlushBatch, len(bs))]
		p.expectOwn(chunk)
		cctx, cancel := context.WithTimeout(ctx, p.cfg.StoreTimeout)
		profs, err := p.applyBatch(cctx, chunk)
		cancel()
		if err != nil {
			p.unexpectOwn(chunk)
			p.stats.FlushErrors.Add(1)
			p.putBack(bs[i:])
			p.queue.Release(bs) // every batch settled or put back
			p.storeDownUntil.Store(time.Now().Add(p.cfg.FlushInterval).UnixNano())
			return fmt.Errorf("tailor: flush %d profiles: %w", len(bs)-i, err)
		}
		p.storeDownUntil.Store(0)
		p.queue.Settle(chunk)
		p.written(ctx, chunk, profs)
		n := 0
		for _, b := range chunk {
			n += len(b.Events)
		}
		p.stats.Flushed.Add(uint64(n))
	}
	// Every batch settled and read; not on a panic, which leaves batches
	// in flight (a store's bug): their arrays are never reused.
	p.queue.Release(bs)
	if len(bs) > 0 {
		p.stats.FlushNanos.Add(uint64(time.Since(start)))
		p.stats.Flushes.Add(1)
	}
	return nil
}

// lockFlush takes the flush lock.
func (p *Core) lockFlush() { p.flushMu <- struct{}{} }

// lockFlushWithin takes the flush lock unless that takes longer than d.
func (p *Core) lockFlushWithin(d time.Duration) bool {
	select {
	case p.flushMu <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case p.flushMu <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

// unlockFlush releases the flush lock, then delivers the segment changes
// that the writes made under it reported.
func (p *Core) unlockFlush() {
	rs := p.reports
	p.reports = nil
	<-p.flushMu
	for _, c := range rs {
		p.cfg.Hooks.SegmentChange(c)
	}
}

// putBack returns batches whose write failed to the queue, except those
// of profiles erased meanwhile: their events must not come back.
func (p *Core) putBack(bs []store.Batch) {
	keep := bs[:0:0]
	for _, b := range bs {
		if p.forgotten.Profile(b.ID) {
			p.queue.Settle([]store.Batch{b})
			continue
		}
		keep = append(keep, b)
	}
	p.stats.Dropped.Add(uint64(p.queue.PutBack(keep)))
}

// written handles batches the store has just applied (and the queue
// settled), with the profiles it
// returned: erased profiles written meanwhile are deleted again, merged
// ones send their merge and forwards on, segment changes are reported, and
// the cached states are refreshed. A nil profile is one the store refused
// to write because it was erased (a tombstone, store.ErrErased): this
// instance missed the announcement, and now forgets it as Forget does.
func (p *Core) written(ctx context.Context, batches []store.Batch, profs []*store.Profile) {
	for i, prof := range profs {
		if prof == nil {
			p.erased(batches[i].ID)
			p.eraseMerged(batches[i].Events, true) // the refused merges
		} else {
			p.merges.Add(batches[i])
		}
	}
	p.eraseAgain(ctx, batches, profs)
	for i, prof := range profs {
		if prof != nil && prof.MergedInto != "" && !p.forgotten.Profile(prof.ID) {
			p.merged(batches[i], prof)
		}
	}
	p.report(batches, profs)
	for _, prof := range profs {
		p.refresh(prof)
	}
}

// Close stops the flusher and writes every pending event to the store,
// retrying until ctx is done. Call it after the server has stopped serving
// (http.Server.Shutdown). It does not close Config.Store. The first page
// views of new visitors are not pending: they are in the visitors' cookies
// until they come back.
func (p *Core) Close(ctx context.Context) error {
	if p.closed.Swap(true) {
		return nil
	}
	close(p.stop)
	<-p.done
	p.jobsDone.Wait()
	p.bg.Wait()
	defer p.cancel()
	defer p.cache.Close()
	defer p.releaseLeases(ctx)
	wait := 10 * time.Millisecond
	for {
		err := p.flush(ctx)
		if err == nil && p.queue.Len() == 0 {
			return nil
		}
		if err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tailor: close: %d events not written: %w", p.queue.Len(), errors.Join(err, ctx.Err()))
		case <-time.After(wait):
			wait = min(wait*2, time.Second)
		}
	}
}
