package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tailorhq/tailor/middleware/internal/cookie"
	"github.com/tailorhq/tailor/store"
)

// Forget erases a visitor or a user: id is a visitor id (as Visitor.ID
// returns) or a user id (as given to Identify). It removes from this
// instance's cache and pending queue, and deletes from the store, the
// visitor's profile; or the user's profile, every profile merged into it
// (the visitors who identified as the user) and the profile it was merged
// into. Those visitors' cookies are deleted on their next response from
// this instance, and nothing more is recorded for them here for a few
// minutes (requests in flight); later requests with a cookie that names an
// erased user start afresh.
//
// Other instances learn of the erasure when the store announces the
// deletion (store.Invalidator: every store of tailor does) and then do the
// same: they drop their cached copies and the events they hold pending for
// the erased profiles, record nothing for them for a few minutes, and
// delete the visitors' cookies; a write of theirs already under way when
// the announcement arrives is followed by a new deletion. An instance that
// missed the announcement (it was subscribing, or its subscription was
// reconnecting) learns of the erasure from the store: Delete leaves a
// tombstone for store.DefaultTombstoneTTL (or the store's own setting),
// which refuses the writes of the erased profiles (store.ErrErased) and
// answers their loads; the instance then forgets them as above. Every
// store of tailor keeps tombstones; with a store that keeps none, run
// Forget on every instance.
func (p *Core) Forget(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("tailor: Forget: %w", store.ErrInvalidID)
	}
	// A profile that cannot be read may hold aliases that are not found:
	// what was found is erased all the same, and the error returned.
	ids, visitors, errs := p.erasable(ctx, id)
	p.forgotten.Add(ids, visitors, p.tombstoneTTL())
	p.lockFlush() // no flush in flight: nothing written after the delete
	defer p.unlockFlush()
	for _, pid := range ids {
		p.queue.Remove(pid)
		p.wipe(pid)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.StoreTimeout)
		if err := p.storeDelete(cctx, pid); err != nil {
			errs = append(errs, fmt.Errorf("delete profile %q: %w", pid, err))
		}
		cancel()
	}
	// A Set still in the cache's buffers could bring a profile back.
	p.cache.Wait()
	for _, pid := range ids {
		p.cache.Del(pid)
	}
	p.stats.Forgotten.Add(uint64(len(ids)))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tailor: Forget: %w", err)
	}
	return nil
}

// erasable returns the profiles that erasing id erases, and the visitor
// ids among them.
func (p *Core) erasable(ctx context.Context, id string) (ids, visitors []string, errs []error) {
	var todo []string
	if cookie.IsVisitorID(id) {
		todo = append(todo, id)
	}
	if uid, err := store.UserProfileID(id); err == nil {
		todo = append(todo, uid, "anon:"+id)
	}
	// Profile.Aliases is complete: every profile ever merged into the
	// user is found, however many. The walk visits each profile once.
	for len(todo) > 0 {
		pid := todo[0]
		todo = todo[1:]
		if slices.Contains(ids, pid) {
			continue
		}
		ids = append(ids, pid)
		if cookie.IsVisitorID(pid) {
			visitors = append(visitors, pid)
			if pid == id {
				continue // a visitor alone: not the user they identified as
			}
		}
		prof, err := p.current(ctx, pid)
		if err != nil {
			errs = append(errs, err)
			prof = store.New(pid)
		}
		todo = append(todo, prof.Aliases...)
		// Merges this instance holds for pid: a frozen pid does not fold
		// them (they would be forwarded), so its Aliases miss them.
		for _, e := range p.queue.Get(pid) {
			if e.Type == store.TypeMerge && e.Merge != nil {
				todo = append(todo, e.Merge.ID)
				todo = append(todo, e.Merge.Aliases...)
			}
		}
		if into := prof.MergedInto; into != "" && !cookie.IsVisitorID(pid) {
			todo = append(todo, into) // a former user id: the same person
		}
	}
	return ids, visitors, errs
}

// current returns the profile pid as the store has it, with the events
// this instance holds for it, for erasure: read from the store itself,
// within StoreTimeout, whatever the request path's state of the store (a
// cached or partial copy may miss aliases).
func (p *Core) current(ctx context.Context, pid string) (*store.Profile, error) {
	before := p.queue.Get(pid)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.StoreTimeout)
	prof, err := p.storeLoad(cctx, pid)
	cancel()
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		prof = store.New(pid)
	default:
		return nil, fmt.Errorf("read profile %q: %w", pid, err)
	}
	prof.Apply(p.lim, before...)
	prof.Apply(p.lim, p.queue.Get(pid)...)
	return prof, nil
}

// erased forgets a profile that was deleted from the store, as Forget does
// on the instance that runs it: nothing is recorded for it for a while,
// its pending events and cached state go, and a visitor's cookie is
// deleted on their next response.
func (p *Core) erased(pid string) {
	var visitors []string
	if cookie.IsVisitorID(pid) {
		visitors = []string{pid}
	}
	p.forgotten.Add([]string{pid}, visitors, p.tombstoneTTL())
	merges := append(p.queue.Get(pid), p.merges.Take(pid)...)
	p.queue.Remove(pid)
	p.wipe(pid)
	p.eraseMerged(merges, true)
}

// eraseMerged erases the profiles that the merge events among evs, meant
// for a profile just erased, merge into it: the visitors who signed in as
// the user on this instance while the user was erased elsewhere, whose
// merge was still pending, under way or about to be queued here. The
// erasure that ran elsewhere could not know them. now runs the deletions
// before returning; otherwise (the caller holds a stripe lock) they run in
// the background.
func (p *Core) eraseMerged(evs []store.Event, now bool) {
	var ids, visitors []string
	for _, e := range evs {
		if e.Type != store.TypeMerge || e.Merge == nil {
			continue
		}
		for _, id := range append([]string{e.Merge.ID}, e.Merge.Aliases...) {
			if slices.Contains(ids, id) {
				continue
			}
			ids = append(ids, id)
			if cookie.IsVisitorID(id) {
				visitors = append(visitors, id)
			}
		}
	}
	if len(ids) == 0 {
		return
	}
	p.forgotten.Add(ids, visitors, p.tombstoneTTL())
	del := func(wipe bool) {
		for _, id := range ids {
			p.queue.Remove(id)
			if wipe {
				p.wipe(id)
			}
			ctx, cancel := context.WithTimeout(context.Background(), p.cfg.StoreTimeout)
			if err := p.storeDelete(ctx, id); err != nil {
				p.cfg.Logger.Warn("tailor: deleting a profile merged into an erased one failed", "err", err)
				p.cfg.Logger.Debug("tailor: delete failed", "id", id)
			}
			cancel()
		}
	}
	switch {
	case now:
		del(true)
	case p.closed.Load():
		del(false) // closed: nothing is cached any more, and bg is done
	default:
		p.bg.Add(1)
		go func() {
			defer p.bg.Done()
			del(true)
		}()
	}
}

// eraseAgain deletes the profiles of a write that were erased while it was
// under way (Forget on another instance), which the write put back. The
// caller does not merge them into a user's profile either.
func (p *Core) eraseAgain(ctx context.Context, written []store.Batch, profs []*store.Profile) {
	for i, b := range written {
		if !p.forgotten.Profile(b.ID) || profs[i] == nil {
			continue // not erased, or refused by the store's tombstone
		}
		p.eraseMerged(b.Events, true)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.StoreTimeout)
		if err := p.storeDelete(cctx, b.ID); err != nil {
			p.cfg.Logger.Warn("tailor: deleting a profile erased during a write failed", "id", b.ID, "err", err)
		}
		cancel()
	}
}

// wipe empties and drops the cached state of pid.
func (p *Core) wipe(pid string) {
	mu := p.lock(pid)
	mu.Lock()
	defer mu.Unlock()
	if st, ok := p.cache.Get(pid); ok {
		st.prof = store.New(pid)
		st.dropLater()
		st.stale.Store(true)
	}
	p.cache.Del(pid)
}

// tombstoneTTL is how long nothing is recorded for an erased profile:
// long enough for the requests and the flush in flight to end.
func (p *Core) tombstoneTTL() time.Duration {
	return max(time.Minute, 2*p.cfg.StoreTimeout+4*p.cfg.FlushInterval)
}

// withdraw erases the visitor of a cookie whose request came without
// consent, in the background.
func (p *Core) withdraw(ci cookie.ID) {
	if p.forgotten.Visitor(ci) || p.closed.Load() {
		return // being erased already
	}
	p.forgotten.Add(nil, []string{ci.Visitor}, p.tombstoneTTL())
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 4*p.cfg.StoreTimeout)
		defer cancel()
		err := p.Forget(ctx, ci.Visitor)
		if ci.User != "" {
			err = errors.Join(err, p.Forget(ctx, ci.User))
		}
		if err != nil {
			p.cfg.Logger.Warn("tailor: erasing a visitor who withdrew consent failed", "err", err)
		}
	}()
}

// expireInBackground deletes the profiles unseen for Config.Retention and
// trims the journal of the purchases older than Config.JournalRetention,
// as far as the store can, unless a previous run is still going.
func (p *Core) expireInBackground() {
	if !p.retains() || !p.expiring.CompareAndSwap(false, true) {
		return
	}
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		defer p.expiring.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		go func() {
			select {
			case <-p.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		ran, n, err := p.retain(ctx)
		switch {
		case err != nil:
			p.cfg.Logger.Warn("tailor: retention failed", "err", err, "expired", n)
		case ran && n > 0:
			p.cfg.Logger.Info("tailor: retention: expired old profiles", "expired", n, "retention", p.cfg.Retention)
		}
	}()
}

// retains reports whether retention has anything to do with this store:
// profiles to expire, or a journal to trim.
func (p *Core) retains() bool {
	_, expires := p.store.(store.Expirer)
	_, journals := p.store.(store.Journal)
	return expires && p.cfg.Retention >= 0 || journals && p.cfg.JournalRetention > 0
}

// The lease of site-wide jobs (store.Leaser): retention runs on one
// instance of those that share the store. The lease outlives two hourly
// runs, so that it moves to another instance when its holder dies (within
// three hours) or stops (Close releases it: within the hour).
const (
	retentionLease = "tailor/retention"
	retentionTTL   = 2*time.Hour + 30*time.Minute
)

// retain runs retention if this instance holds the retention lease (or
// the store has no leases: then every instance runs it, as expiring and
// trimming twice is harmless): it expires profiles, then trims the
// journal. It reports whether it ran, and how many profiles it expired.
func (p *Core) retain(ctx context.Context) (ran bool, n int, err error) {
	if l, ok := p.store.(store.Leaser); ok {
		lctx, sp := p.startStore(ctx, "Lease")
		held, err := l.Lease(lctx, retentionLease, p.producer, retentionTTL)
		sp.end(err)
		if err != nil {
			return false, 0, fmt.Errorf("lease %s: %w", retentionLease, err)
		}
		if !held {
			return false, 0, nil // another instance runs it
		}
		p.leased.Store(true)
	}
	n, err = p.expire(ctx)
	if err != nil {
		err = fmt.Errorf("expire profiles unseen for %v: %w", p.cfg.Retention, err)
	}
	if terr := p.trimJournal(ctx); terr != nil {
		err = errors.Join(err, fmt.Errorf("trim the journal of purchases older than %v: %w", p.cfg.JournalRetention, terr))
	}
	return true, n, err
}

// releaseLeases gives up the leases this instance holds, so that another
// takes its jobs at once.
func (p *Core) releaseLeases(ctx context.Context) {
	l, ok := p.store.(store.Leaser)
	if !ok || !p.leased.Load() || ctx.Err() != nil {
		return // none held; or Close gave up: the lease expires
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StoreTimeout)
	defer cancel()
	for _, name := range []string{retentionLease, segmentsLease} {
		rctx, sp := p.startStore(ctx, "Release")
		err := l.Release(rctx, name, p.producer)
		sp.end(err)
		if err != nil {
			p.cfg.Logger.Warn("tailor: releasing a lease failed; another instance takes it when it expires", "lease", name, "err", err)
		}
	}
}

// expire deletes the profiles unseen for Config.Retention.
func (p *Core) expire(ctx context.Context) (int, error) {
	ex, ok := p.store.(store.Expirer)
	if !ok || p.cfg.Retention < 0 {
		return 0, nil
	}
	ctx, sp := p.startStore(ctx, "Expire")
	n, err := ex.Expire(ctx, p.cfg.Now().Add(-p.cfg.Retention))
	sp.end(err)
	p.stats.Expired.Add(uint64(max(n, 0)))
	return n, err
}

// trimJournal forgets the purchases journaled more than
// Config.JournalRetention ago, if the store keeps a journal. Nothing else
// trims it in a site that runs no rules/assoc Follower.
func (p *Core) trimJournal(ctx context.Context) error {
	j, ok := p.store.(store.Journal)
	if !ok || p.cfg.JournalRetention <= 0 {
		return nil
	}
	ctx, sp := p.startStore(ctx, "TrimPurchases")
	err := j.TrimPurchases(ctx, p.cfg.Now().Add(-p.cfg.JournalRetention))
	sp.end(err)
	return err
}
