package core

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tailorhq/tailor/middleware/internal/cookie"
	"github.com/tailorhq/tailor/store"
)

// Identity stitching.
//
// A visitor who identifies as user U (Identify, or an identify call with
// both ids to the collection endpoint) is merged into U's profile, id
// "user:"+U, that every browser of U and every server-side event about U
// (TrackUser, IdentifyUser, calls with userId) shares:
//
//  1. link: with the flusher held off, the visitor's pending events and a
//     TypeAlias event are applied to the visitor's profile V in one store
//     call. Its fold sets V.MergedInto and freezes V: V is now exactly
//     what gets merged, whoever merges it and however often.
//  2. merge: a TypeMerge event carrying the frozen V, with the id
//     "#merge>"+V, is queued for U's profile (and folded into its cached
//     state at once). Merge events are exactly-once like any other.
//  3. forward: an event that reaches V after the link (recorded by another
//     instance that did not know yet, or a client that still names V) is
//     not folded into the frozen V. Whoever applies it sees the frozen
//     profile come back from the store, and queues it for U's profile
//     under the id "#"+V+">"+its id, unless V's applied marks show that it
//     was merged already. Forwarded ids are opaque, so the order in which
//     forwards arrive does not matter. An instance that has the frozen V
//     cached forwards events for V at once.
//
// The cookie carries the user id from then on, so the next request of the
// browser loads U's profile directly; a browser whose cookie does not say
// it yet reaches U's profile through V's MergedInto, and gets the user put
// in its cookie. Two browsers of one user on one instance share one cached
// state, locked by the profile id.
//
// What is not covered: events still pending for V when the process dies
// are lost, as every pending event is; an event forwarded so late that U's
// profile applied more than Limits.RememberedIDs opaque ids since the
// first delivery of the same forward may count twice.

// mergeID is the id of the merge event of profile from.
func mergeID(from string) string { return "#merge>" + from }

// forwardID is the id of event id of profile from, forwarded to the
// profile from was merged into. It is opaque: forwards may arrive in any
// order.
func forwardID(from, id string) string { return "#" + from + ">" + id }

// maxForwardID bounds the ids of forwarded events: every hop makes them
// longer, so a cycle of merges (two users aliased to each other through
// two instances at once) ends.
const maxForwardID = 1024

// ErrMergeQueued is middleware.ErrMergeQueued.
var ErrMergeQueued = errors.New("tailor: the merge is queued until the store answers")

// IdentifyVisitor binds v to the user userID (profile to), merging its
// anonymous profile.
func (p *Core) IdentifyVisitor(ctx context.Context, v *Visit, userID, to string, now time.Time) error {
	b := v.bind()
	nb := &binding{id: b.id, user: userID, pid: to}
	another := b.user != ""
	switch {
	case b.pid == to:
		return nil
	case !another:
		if err := p.Link(ctx, []LinkReq{{From: b.pid, UserID: userID, At: now}}); err != nil {
			return fmt.Errorf("tailor: Identify %q: %w", userID, err)
		}
		// The visitor may have been merged into another user meanwhile,
		// through an instance whose write this one had not heard of: the
		// store kept that merge, and this is another user signing in.
		if into := p.mergedInto(b.pid, p.state(ctx, b.pid)); into != "" && into != to {
			another = true
		}
	}
	if another {
		// Another user signs in with this browser: a new visitor, known
		// as an alias of the user's profile (so that Forget finds it).
		nb.id = cookie.NewID()
		p.RecordTo(to, store.Event{ID: mergeID(nb.id), Type: store.TypeMerge, Time: now, Merge: store.New(nb.id)})
	}
	nb.st = p.state(ctx, to)
	v.b.Store(nb)
	v.SetCookie = true
	return nil
}

// PreviousProfileID returns the profile of a Segment previousId: a
// visitor id is the visitor's profile, anything else a former user id.
func PreviousProfileID(prev string) (string, error) {
	if cookie.IsVisitorID(prev) {
		return prev, nil
	}
	return store.UserProfileID(prev)
}

// A LinkReq asks to merge the profile from into the user userID's.
type LinkReq struct {
	From, UserID string
	At           time.Time
}

// ErrCycle is returned by link for a merge of a profile into a profile
// that is merged into it already.
var ErrCycle = errors.New("the user's profile is merged into the profile to merge")

// Link merges each profile from into its user's profile (steps 1 and 2
// above). It holds the flusher off, so that the pending events of from
// are applied in order, in the same store call as the alias. Requests
// that would make a cycle of merges are skipped, and reported with
// ErrCycle when nothing else was merged.
func (p *Core) Link(ctx context.Context, reqs []LinkReq) error {
	cycle := false
	for i := 0; i < len(reqs); i++ {
		if p.reaches(ctx, store.UserPrefix+reqs[i].UserID, reqs[i].From) {
			cycle = true
			reqs = append(reqs[:i:i], reqs[i+1:]...)
			i--
		}
	}
	if cycle && len(reqs) == 0 {
		return ErrCycle
	}
	// While the store is known to be failing, a request waits for it, and
	// for a flush under way, no longer than a load does (LoadTimeout):
	// then the aliases are queued after the visitors' pending events, the
	// flusher writes them once the store answers, and the merges follow
	// from the frozen profiles it then gets back.
	timeout := p.cfg.StoreTimeout
	if until := p.storeDownUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		timeout = min(timeout, p.cfg.LoadTimeout)
		deadline := time.Now().Add(timeout)
		if !p.lockFlushWithin(timeout) {
			p.queueAliases(reqs)
			return ErrMergeQueued
		}
		timeout = max(time.Until(deadline), time.Millisecond)
	} else {
		p.lockFlush()
	}
	defer p.unlockFlush()
	batches := make([]store.Batch, 0, len(reqs))
	seen := make(map[string]bool, len(reqs))
	for _, rq := range reqs {
		to := store.UserPrefix + rq.UserID
		if seen[rq.From] || rq.From == to || p.forgotten.Profile(rq.From) {
			continue
		}
		seen[rq.From] = true
		// Under the profile's lock, the alias takes an id above every
		// event queued so far, and an event recorded from now on takes a
		// higher one and goes after the alias: the frozen profile's
		// marks then tell it was not merged, and it is forwarded.
		mu := p.lock(rq.From)
		mu.Lock()
		alias := store.Event{ID: p.nextID(), Type: store.TypeAlias, UserID: rq.UserID, Time: rq.At}
		evs := p.queue.Take1(rq.From, alias)
		mu.Unlock()
		batches = append(batches, store.Batch{ID: rq.From, Events: evs})
	}
	if len(batches) == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	p.expectOwn(batches)
	profs, err := p.applyBatch(cctx, batches)
	cancel()
	if err != nil {
		// The write may or may not have been applied (a timeout after the
		// store committed). The events and the aliases go back to the
		// queue, in front: the flusher writes them again, and the merge
		// follows from the frozen profile the store then returns (a
		// profile is merged once, however often its alias comes).
		p.unexpectOwn(batches)
		p.putBack(batches)
		return fmt.Errorf("%w: %w", ErrMergeQueued, err)
	}
	p.storeDownUntil.Store(0)
	p.queue.Settle(batches)
	p.written(ctx, batches, profs)
	return nil
}

// queueAliases queues the alias of each request after its visitor's
// pending events, for the flusher to write.
func (p *Core) queueAliases(reqs []LinkReq) {
	for _, rq := range reqs {
		if rq.From == store.UserPrefix+rq.UserID || p.forgotten.Profile(rq.From) {
			continue
		}
		mu := p.lock(rq.From)
		mu.Lock()
		p.enqueue(rq.From, []store.Event{{ID: p.nextID(), Type: store.TypeAlias, UserID: rq.UserID, Time: rq.At}})
		mu.Unlock()
	}
	p.flushSoon()
}

// reaches reports whether the chain of merges from the profile id leads to
// the profile target.
func (p *Core) reaches(ctx context.Context, id, target string) bool {
	for range maxHops {
		st := p.state(ctx, id)
		if id = p.mergedInto(id, st); id == "" {
			return false
		}
		if id == target {
			return true
		}
	}
	return false
}

// merged handles a batch b that the store has just applied to a profile
// it returned frozen, merged into prof.MergedInto: the merge event for an
// alias in b, and the forwards of the events of b that the frozen profile
// does not hold (steps 2 and 3 above). The flusher or link calls it.
func (p *Core) merged(b store.Batch, prof *store.Profile) {
	var out []store.Event
	merge := false
	for _, e := range b.Events {
		if e.Type == store.TypeAlias {
			if !merge {
				merge = true
				out = append(out, store.Event{ID: mergeID(prof.ID), Type: store.TypeMerge, Time: e.Time, Merge: prof.Clone()})
				p.stats.Merges.Add(1)
			}
			continue
		}
		if prof.Applied.Has(e.ID) || e.Type == store.TypeSegments {
			// Merged with prof; or a classification of the frozen
			// profile, which says nothing of the user's.
			continue
		}
		if f, ok := forward(prof.ID, e); ok {
			out = append(out, f)
			p.stats.Forwarded.Add(1)
		}
	}
	p.RecordTo(prof.MergedInto, out...)
}

// forward returns e as forwarded from the frozen profile from.
func forward(from string, e store.Event) (store.Event, bool) {
	e.ID = forwardID(from, e.ID)
	return e, len(e.ID) <= maxForwardID
}

// RecordTo folds events into the cached state of the profile id, if any,
// and queues them for the store. Events for a profile that this instance
// has cached frozen are forwarded at once. Events that carry no id get a
// sequenced one.
func (p *Core) RecordTo(id string, evs ...store.Event) {
	for hops := 0; len(evs) > 0; hops++ {
		mu := p.lock(id)
		mu.Lock()
		st, cached := p.cache.Get(id)
		if cached {
			p.profile(st)
		}
		if cached && st.prof.MergedInto != "" && hops < maxHops {
			into, fwd := st.prof.MergedInto, evs[:0:0]
			for _, e := range evs {
				if e.ID != "" && st.prof.Applied.Has(e.ID) {
					continue
				}
				if e.ID == "" {
					e.ID = p.nextID()
				}
				if f, ok := forward(id, e); ok && e.Type != store.TypeAlias && e.Type != store.TypeSegments {
					fwd = append(fwd, f)
				}
			}
			mu.Unlock()
			p.stats.Forwarded.Add(uint64(len(fwd)))
			id, evs = into, fwd
			continue
		}
		for i := range evs {
			if evs[i].ID == "" {
				evs[i].ID = p.nextID()
			}
		}
		if cached {
			st.prof.Apply(p.lim, evs...)
		}
		p.enqueue(id, evs)
		mu.Unlock()
		p.stats.Events.Add(uint64(len(evs)))
		p.flushSoon()
		return
	}
}

// Lookup identifies the visitor of r into v outside Handler: no classification,
// no page view. Without create, a request without a valid cookie gives a
// visitor that is not tracked.
func (p *Core) Lookup(r *http.Request, v *Visit, create bool) {
	v.Now = p.cfg.Now()
	if p.cfg.IsBot(r) {
		v.Consent = ConsentContextual
		return
	}
	p.identify(r, v)
	if v.New && !create {
		v.Tracked = false
		v.b.Store(nil)
	}
	// A first page view that the cookie carries is not recorded here: it
	// rides in the cookie until the visitor comes back through Handler.
	// v.First keeps it for a caller that re-issues the cookie (Identify).
}
