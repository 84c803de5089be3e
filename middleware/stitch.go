package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

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

// Identify tells that the visitor of r is the user userID (an email, an
// account id: at most store.MaxUserIDLength bytes), for instance once they
// signed in. traits (nil, or values that encode as JSON) are merged into
// the user's traits, newest winning per key.
//
// The visitor's anonymous profile is merged into the user's profile, which
// every browser the user signs in with shares, along with the events that
// servers send about the user (TrackUser, IdentifyUser, the collection
// endpoint); the visitor's cookie names the user from the response on.
// Call it from a handler wrapped by Handler before the response is written,
// or from any handler with w and r (the cookie is set on w). A visitor who
// is already identified as another user gets a new visitor id: nothing of
// one user's history goes to another's.
//
// ErrMergeQueued is returned (wrapped) by Identify, Alias and the
// collection endpoint's identify and alias calls when the store failed or
// is failing: the merge is queued and written once the store answers, and
// the visitor's next request after that is bound to the user.
var ErrMergeQueued = errors.New("tailor: the merge is queued until the store answers")

// Identify writes to the store at once: it returns an error when the
// store fails, and the visitor's cookie stays as it was; the merge is then
// written again in the background, and completed once the store answers
// (a profile is merged into a user's once, however often it is sent), and
// the visitor's next request after that is bound to the user. While the
// store is known to be failing (a read or write failed within the last
// FlushInterval), Identify waits for it no longer than Config.LoadTimeout:
// past that it queues the merge and returns ErrMergeQueued. The identify
// event (the traits) is recorded for the user in every case. It has no effect on visitors who are not
// tracked (crawlers, no consent).
func (p *Personalizer) Identify(w http.ResponseWriter, r *http.Request, userID string, traits map[string]any) error {
	to, err := store.UserProfileID(userID)
	if err != nil {
		return fmt.Errorf("tailor: Identify: %w", err)
	}
	tr, err := traitsJSON(traits)
	if err != nil {
		return fmt.Errorf("tailor: Identify %q: traits: %w", userID, err)
	}
	v := FromContext(r.Context())
	standalone := v == nil
	if standalone {
		v = p.lookup(r, true)
	}
	if !v.Tracked() {
		return nil
	}
	now := p.cfg.Now()
	err = p.identifyVisitor(r.Context(), v, userID, to, now)
	// The user's traits are the user's whether or not the merge could be
	// written now. recordTo gives the event its id under the profile's
	// lock: an id taken before it could lose to a concurrent event's
	// higher one, and the store would skip it as applied already.
	p.recordTo(to, store.Event{Type: store.TypeIdentify, Time: now, UserID: userID, Traits: tr})
	if err != nil {
		return err
	}
	if standalone {
		// The cookie is re-issued: a first page view that it carries goes
		// on in it, to be recorded when the visitor comes back.
		b := v.bind()
		if c, err := p.ids.cookie(cookieID{b.id, b.user}, v.first, r, now); err == nil {
			http.SetCookie(w, c)
		}
	}
	return nil
}

// identifyVisitor binds v to the user userID (profile to), merging its
// anonymous profile.
func (p *Personalizer) identifyVisitor(ctx context.Context, v *Visitor, userID, to string, now time.Time) error {
	b := v.bind()
	nb := &binding{id: b.id, user: userID, pid: to}
	another := b.user != ""
	switch {
	case b.pid == to:
		return nil
	case !another:
		if err := p.link(ctx, []linkReq{{from: b.pid, userID: userID, at: now}}); err != nil {
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
		nb.id = newID()
		p.recordTo(to, store.Event{ID: mergeID(nb.id), Type: store.TypeMerge, Time: now, Merge: store.New(nb.id)})
	}
	nb.st = p.state(ctx, to)
	v.b.Store(nb)
	v.setCookie = true
	return nil
}

// Alias merges the profile previousID into the profile of the user
// userID, as Segment's alias call does: previousID is a visitor id (as
// Visitor.ID returns) or the user's former user id. Later events for
// previousID reach userID's profile.
func (p *Personalizer) Alias(ctx context.Context, previousID, userID string) error {
	if _, err := store.UserProfileID(userID); err != nil {
		return fmt.Errorf("tailor: Alias: userID: %w", err)
	}
	from, err := previousProfileID(previousID)
	if err != nil {
		return fmt.Errorf("tailor: Alias: previousID: %w", err)
	}
	if err := p.link(ctx, []linkReq{{from: from, userID: userID, at: p.cfg.Now()}}); err != nil {
		return fmt.Errorf("tailor: Alias %q to %q: %w", previousID, userID, err)
	}
	return nil
}

// previousProfileID returns the profile of a Segment previousId: a
// visitor id is the visitor's profile, anything else a former user id.
func previousProfileID(prev string) (string, error) {
	if isVisitorID(prev) {
		return prev, nil
	}
	return store.UserProfileID(prev)
}

// isVisitorID reports whether s has the form of a visitor id: 32
// lower-case hex digits.
func isVisitorID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// A linkReq asks to merge the profile from into the user userID's.
type linkReq struct {
	from, userID string
	at           time.Time
}

// errCycle is returned by link for a merge of a profile into a profile
// that is merged into it already.
var errCycle = errors.New("the user's profile is merged into the profile to merge")

// link merges each profile from into its user's profile (steps 1 and 2
// above). It holds the flusher off, so that the pending events of from
// are applied in order, in the same store call as the alias. Requests
// that would make a cycle of merges are skipped, and reported with
// errCycle when nothing else was merged.
func (p *Personalizer) link(ctx context.Context, reqs []linkReq) error {
	cycle := false
	for i := 0; i < len(reqs); i++ {
		if p.reaches(ctx, store.UserPrefix+reqs[i].userID, reqs[i].from) {
			cycle = true
			reqs = append(reqs[:i:i], reqs[i+1:]...)
			i--
		}
	}
	if cycle && len(reqs) == 0 {
		return errCycle
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
		to := store.UserPrefix + rq.userID
		if seen[rq.from] || rq.from == to || p.forgotten.profile(rq.from) {
			continue
		}
		seen[rq.from] = true
		// Under the profile's lock, the alias takes an id above every
		// event queued so far, and an event recorded from now on takes a
		// higher one and goes after the alias: the frozen profile's
		// marks then tell it was not merged, and it is forwarded.
		mu := p.lock(rq.from)
		mu.Lock()
		alias := store.Event{ID: p.nextID(), Type: store.TypeAlias, UserID: rq.userID, Time: rq.at}
		evs := p.queue.take1(rq.from, alias)
		mu.Unlock()
		batches = append(batches, store.Batch{ID: rq.from, Events: evs})
	}
	if len(batches) == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	p.expectOwn(batches)
	profs, err := store.ApplyBatch(cctx, p.store, batches)
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
	p.queue.settle(batches)
	p.written(ctx, batches, profs)
	return nil
}

// queueAliases queues the alias of each request after its visitor's
// pending events, for the flusher to write.
func (p *Personalizer) queueAliases(reqs []linkReq) {
	for _, rq := range reqs {
		if rq.from == store.UserPrefix+rq.userID || p.forgotten.profile(rq.from) {
			continue
		}
		mu := p.lock(rq.from)
		mu.Lock()
		p.enqueue(rq.from, []store.Event{{ID: p.nextID(), Type: store.TypeAlias, UserID: rq.userID, Time: rq.at}})
		mu.Unlock()
	}
	p.flushSoon()
}

// reaches reports whether the chain of merges from the profile id leads to
// the profile target.
func (p *Personalizer) reaches(ctx context.Context, id, target string) bool {
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
func (p *Personalizer) merged(b store.Batch, prof *store.Profile) {
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
	p.recordTo(prof.MergedInto, out...)
}

// forward returns e as forwarded from the frozen profile from.
func forward(from string, e store.Event) (store.Event, bool) {
	e.ID = forwardID(from, e.ID)
	return e, len(e.ID) <= maxForwardID
}

// recordTo folds events into the cached state of the profile id, if any,
// and queues them for the store. Events for a profile that this instance
// has cached frozen are forwarded at once. Events that carry no id get a
// sequenced one.
func (p *Personalizer) recordTo(id string, evs ...store.Event) {
	for hops := 0; len(evs) > 0; hops++ {
		mu := p.lock(id)
		mu.Lock()
		st, cached := p.cache.Get(id)
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

// IdentifyUser records traits about the user userID from a server (a CRM
// stage, a plan): they reach the segments of every browser the user
// identified with, on its next request (on other instances, within
// Config.Freshness of the next flush).
func (p *Personalizer) IdentifyUser(ctx context.Context, userID string, traits map[string]any) error {
	to, err := store.UserProfileID(userID)
	if err != nil {
		return fmt.Errorf("tailor: IdentifyUser: %w", err)
	}
	tr, err := traitsJSON(traits)
	if err != nil {
		return fmt.Errorf("tailor: IdentifyUser %q: traits: %w", userID, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.recordTo(to, store.Event{Type: store.TypeIdentify, Time: p.cfg.Now(), UserID: userID, Traits: tr})
	return nil
}

// TrackUser records an action of the user userID that a server saw (an
// email opened, a lead qualified), with properties as for Track. It
// reaches the segments of every browser the user identified with, on its
// next request.
func (p *Personalizer) TrackUser(ctx context.Context, userID, event string, props map[string]any) error {
	to, err := store.UserProfileID(userID)
	if err != nil {
		return fmt.Errorf("tailor: TrackUser: %w", err)
	}
	ev, err := trackEvent(event, props)
	if err != nil {
		return fmt.Errorf("tailor: TrackUser %q: %w", userID, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ev.Time = p.cfg.Now()
	p.recordTo(to, ev)
	return nil
}

// Track records an action of the visitor of r, as Visitor.Track does, from
// any handler: r need not go through Handler, its cookie is enough. It has
// no effect for visitors who are not tracked or have no cookie yet.
func (p *Personalizer) Track(r *http.Request, event string, props map[string]any) error {
	ev, err := trackEvent(event, props)
	if err != nil {
		return fmt.Errorf("tailor: Track: %w", err)
	}
	if v := p.visitor(r); v.Tracked() {
		return v.Record(ev)
	}
	return nil
}

// Page records a page view of the visitor of r, for pages that are not
// requests of their own (a single-page app's route change): name is the
// page's name, props its Segment page properties (path or url, category,
// referrer). The path defaults to r's. Like Track, it needs only r's
// cookie.
func (p *Personalizer) Page(r *http.Request, name string, props map[string]any) error {
	raw, err := propsJSON(props)
	if err != nil {
		return fmt.Errorf("tailor: Page: %w", err)
	}
	ev := pageEvent(name, "", raw)
	if ev.Path == "" {
		ev.Path = cutPath(r.URL.Path)
	}
	if v := p.visitor(r); v.Tracked() {
		return v.Record(ev)
	}
	return nil
}

// visitor returns the visitor of r: the one of Handler, or one read from
// r's cookie alone.
func (p *Personalizer) visitor(r *http.Request) *Visitor {
	if v := FromContext(r.Context()); v != nil {
		return v
	}
	return p.lookup(r, false)
}

// lookup identifies the visitor of r outside Handler: no classification,
// no page view. Without create, a request without a valid cookie gives a
// visitor that is not tracked.
func (p *Personalizer) lookup(r *http.Request, create bool) *Visitor {
	v := &Visitor{p: p, now: p.cfg.Now()}
	if p.cfg.IsBot(r) {
		v.consent = ConsentContextual
		return v
	}
	p.identify(r, v)
	if v.new && !create {
		v.tracked = false
		v.b.Store(nil)
	}
	// A first page view that the cookie carries is not recorded here: it
	// rides in the cookie until the visitor comes back through Handler.
	// v.first keeps it for a caller that re-issues the cookie (Identify).
	return v
}

// trackEvent returns the track event of Segment's name and properties.
func trackEvent(name string, props any) (store.Event, error) {
	if name == "" {
		return store.Event{}, errors.New("empty event name")
	}
	if len(name) > maxName {
		return store.Event{}, fmt.Errorf("event name of %d bytes, more than %d", len(name), maxName)
	}
	raw, err := propsJSON(props)
	if err != nil {
		return store.Event{}, err
	}
	return mapTrack(name, raw)
}

// propsJSON encodes properties, which must encode as a JSON object.
func propsJSON(props any) ([]byte, error) {
	switch x := props.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		if x == nil {
			return nil, nil
		}
	}
	b, err := json.Marshal(props)
	if err != nil {
		return nil, fmt.Errorf("properties: %w", err)
	}
	if len(b) == 0 || b[0] != '{' {
		if string(b) == "null" {
			return nil, nil
		}
		return nil, fmt.Errorf("properties: %s is not a JSON object", truncate(string(b), 40))
	}
	return b, nil
}

// traitsJSON encodes traits as a JSON object, nil for none.
func traitsJSON(traits map[string]any) (json.RawMessage, error) {
	if len(traits) == 0 {
		return nil, nil
	}
	return json.Marshal(traits)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
