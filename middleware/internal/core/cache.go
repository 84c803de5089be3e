package core

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"
	"weak"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// The profile cache: each visitor's state (the stored profile with the
// events pending for it), loaded once however many requests miss at
// once, kept fresh by the store's change announcements, and bounded in
// memory by ristretto. Pending events never live only here: the queue
// holds them until the store acknowledges them.

type ownWrite struct {
	n     int
	until time.Time
}

// state is the cached view of one visitor: the stored profile with the
// visitor's pending events folded in. It is guarded by the visitor's stripe
// lock (Core.lock).
type state struct {
	prof *store.Profile
	// memo is the last classification of prof, reused while it holds:
	// then a request costs no classification.
	memo    rules.Memo
	partial bool        // the store could not be read: only pending events are known
	stale   atomic.Bool // another writer changed the stored profile: reload
	// dropped is Counters.Dropped when prof was last taken from the
	// store: while it is the same, no event that prof holds was dropped
	// from the queue unwritten (see refresh).
	dropped uint64

	// later are page views recorded (and queued) but not yet folded into
	// prof: a returning visitor's page view costs an append, and is folded
	// by whatever reads or changes prof first (Core.profile), or else by
	// the store, whose profile the flush's refresh then takes. laterTouch
	// are the parts of the profile they touch, laterSeen their latest
	// time.
	later      []store.Event
	laterTouch store.Touch
	laterSeen  time.Time

	// For the hints kept with cookies (see hinted), which find a state
	// without a cache lookup: set says the state was handed to the cache
	// (SetWithTTL accepted it); exits counts the times it left the cache
	// or was set again (ristretto's OnExit: evicted, rejected, deleted,
	// replaced, updated); expires is when the cache's entry of it
	// expires at the latest, in Unix nanoseconds; uses counts the
	// lookups that a hint spared.
	set     atomic.Bool
	exits   atomic.Uint64
	expires atomic.Int64
	uses    atomic.Uint32
}

// lastSeen is the time of the visitor's latest event: the profile's, or
// a later page view kept aside.
func (st *state) lastSeen() time.Time {
	if st.laterSeen.After(st.prof.LastSeen) {
		return st.laterSeen
	}
	return st.prof.LastSeen
}

// dropLater forgets the page views kept aside: prof has them (or lost
// them with the queue, as the store did).
func (st *state) dropLater() {
	clear(st.later)
	st.later, st.laterTouch, st.laterSeen = st.later[:0], 0, time.Time{}
}

// profile returns st's profile with the page views kept aside folded in.
// The stripe lock of st is held.
func (p *Core) profile(st *state) *store.Profile {
	if len(st.later) > 0 {
		st.prof.Apply(p.lim, st.later...)
		st.dropLater()
	}
	return st.prof
}

// subscribe keeps a subscription to the store's invalidations, retrying
// while the store is unreachable: with backoff, but at least every
// Freshness, since cached profiles may miss changes until it succeeds.
// The failure is logged when it begins and then at most every
// failLogEvery.
func (p *Core) subscribe(ctx context.Context, inv store.Invalidator) {
	const first = 100 * time.Millisecond
	wait := min(first, p.cfg.Freshness)
	var logged time.Time
	for {
		err := inv.Subscribe(ctx, p.invalidate)
		if err == nil {
			if !logged.IsZero() {
				p.cfg.Logger.Info("tailor: subscribed to store invalidations")
			}
			// Changes are announced now: cached profiles need expire
			// only in case one is lost.
			p.ttl.Store(int64(60 * p.cfg.Freshness))
			close(p.ready)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if now := time.Now(); logged.IsZero() || now.Sub(logged) >= failLogEvery {
			logged = now
			p.cfg.Logger.Warn("tailor: subscribing to store invalidations failed; retrying", "err", err, "retry_in", wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, p.cfg.Freshness)
	}
}

// invalidate marks a visitor's cached state stale: the stored profile
// changed, maybe through another instance. A deleted profile was erased
// (Forget, here or on another instance): what this instance holds of it
// goes too. The announcement of a document names no profile: it changes
// nothing cached here.
func (p *Core) invalidate(c store.Change) {
	if c.Document != "" {
		return
	}
	id := c.ID
	if c.Deleted {
		p.erased(id)
		return
	}
	p.oursMu.Lock()
	if w, ok := p.ours[id]; ok && time.Now().Before(w.until) {
		// The announcement of our own write: the state already has it.
		// Announcements of one profile come in write order, so a later
		// write by another instance still gets through.
		if w.n--; w.n == 0 {
			delete(p.ours, id)
		} else {
			p.ours[id] = w
		}
		p.oursMu.Unlock()
		return
	}
	p.oursMu.Unlock()
	if st, ok := p.cache.Get(id); ok {
		st.stale.Store(true)
	}
}

// state returns the visitor's cached state, building it from the store and
// the pending events on a miss.
func (p *Core) state(ctx context.Context, id string) *state {
	if st, ok := p.cache.Get(id); ok && !st.stale.Load() {
		p.stats.CacheHits.Add(1)
		return st
	}
	p.stats.CacheMisses.Add(1)
	ctx, sp := p.startLoad(ctx)
	v, _, _ := p.loads.Do(id, func() (any, error) {
		if st, ok := p.cache.Get(id); ok && !st.stale.Load() {
			return st, nil
		}
		before := p.queue.Get(id)
		st := &state{dropped: p.stats.Dropped.Load()}
		prof, err := p.load(ctx, id)
		switch {
		case err == nil:
		case errors.Is(err, store.ErrErased):
			// Erased through another instance, whose announcement this
			// one missed: forget it here too.
			p.erased(id)
			prof = store.New(id)
		case errors.Is(err, store.ErrNotFound):
			prof = store.New(id)
		default:
			prof, st.partial = store.New(id), true
		}
		// Events flushed while we loaded are in the profile or in before;
		// events recorded meanwhile are in the queue now. Apply skips
		// what the profile already has.
		prof.Apply(p.lim, before...)
		prof.Apply(p.lim, p.queue.Get(id)...)
		st.prof = prof
		mu := p.lock(id)
		mu.Lock()
		cached := false
		switch {
		case p.forgotten.Profile(id):
			st.prof = store.New(id) // erased meanwhile (Forget)
		case !st.partial:
			cached = p.cacheSet(id, st, stateCost(st, prof))
		}
		mu.Unlock()
		if cached {
			// Make the Set visible before the next request: another state
			// built meanwhile for the same visitor would miss the events
			// recorded on this one.
			p.cache.Wait()
		}
		return st, nil
	})
	sp.endLoad(p, id, v.(*state))
	return v.(*state)
}

// load reads a profile, unless the store failed recently. It returns
// within Config.LoadTimeout even if the store ignores the context's
// deadline (go-redis does, unless its ContextTimeoutEnabled is set): the
// store call then ends in the background and its result is dropped.
func (p *Core) load(ctx context.Context, id string) (*store.Profile, error) {
	if until := p.storeDownUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return nil, errStoreDown
	}
	type result struct {
		prof *store.Profile
		err  error
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.LoadTimeout)
	done := make(chan result, 1)
	go func() {
		defer cancel()
		prof, err := p.storeLoad(ctx, id)
		done <- result{prof, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		select {
		case r = <-done: // the store answered as the deadline passed
		default:
			r.err = fmt.Errorf("tailor: load: no answer from the store within Config.LoadTimeout (%v): %w", p.cfg.LoadTimeout, ctx.Err())
		}
	}
	prof, err := r.prof, r.err
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		p.stats.LoadErrors.Add(1)
		p.storeDownUntil.Store(time.Now().Add(p.cfg.FlushInterval).UnixNano())
		p.cfg.Logger.Warn("tailor: loading a profile failed; serving from pending events", "err", err)
		p.cfg.Logger.Debug("tailor: load failed", "visitor", id)
	}
	return prof, err
}

var errStoreDown = errors.New("tailor: store unavailable, retrying later")

// cost estimates the memory a cached state takes, in bytes: the profile's,
// strings included (store.Profile.Size, within a factor of 2), and a
// constant for the rest of the state.
func cost(p *store.Profile) int64 {
	return int64(512 + p.Size())
}

// maxLater bounds the page views kept aside (state.later): past it they
// are folded into the profile, so that a visitor who makes many requests
// between two flushes (or while the store is down, when no refresh comes)
// holds no more than this many events aside.
const maxLater = 32

// stateCost is cost for the state st of profile p: with the memory of
// its list of page views kept aside, which keeps its capacity.
func stateCost(st *state, p *store.Profile) int64 {
	return cost(p) + int64(cap(st.later))*int64(unsafe.Sizeof(store.Event{}))
}

// unexpectOwn takes back expectOwn for writes that failed: their
// announcements may never come, and must not hide another instance's.
func (p *Core) unexpectOwn(chunk []store.Batch) {
	if !p.subbed {
		return
	}
	p.oursMu.Lock()
	defer p.oursMu.Unlock()
	for _, b := range chunk {
		if w, ok := p.ours[b.ID]; ok {
			if w.n--; w.n <= 0 {
				delete(p.ours, b.ID)
			} else {
				p.ours[b.ID] = w
			}
		}
	}
}

// expectOwn notes the writes of chunk, whose announcements are ours.
// Entries not matched within a few Freshness periods (a lost announcement,
// a failed write) expire, so they never hide another instance's write for
// long.
func (p *Core) expectOwn(chunk []store.Batch) {
	if !p.subbed {
		return
	}
	now := time.Now()
	until := now.Add(2 * p.cfg.Freshness)
	p.oursMu.Lock()
	defer p.oursMu.Unlock()
	if len(p.ours) > 4*p.cfg.FlushBatch {
		for id, w := range p.ours {
			if now.After(w.until) {
				delete(p.ours, id)
			}
		}
	}
	for _, b := range chunk {
		w := p.ours[b.ID]
		w.n++
		w.until = until
		p.ours[b.ID] = w
	}
}

// sameFold reports whether a and b, two folds of the same profile from
// the same stored version, applied the same events: every event applied
// counts once in Counts or in Truncated, so a fold that missed an event
// (recorded on a state that was not the cached one, as a request that
// loaded the profile while the cache refused it may) has other sums.
func sameFold(a, b *store.Profile) bool {
	sum := func(p *store.Profile) int {
		n := p.Truncated
		for _, c := range p.Counts {
			n += c
		}
		return n
	}
	return a.Visits == b.Visits && a.Purchases.Count == b.Purchases.Count && a.UserID == b.UserID &&
		a.FirstSeen.Equal(b.FirstSeen) && a.LastSeen.Equal(b.LastSeen) && a.Recheck.Equal(b.Recheck) &&
		a.Recent.Len() == b.Recent.Len() && len(a.Aliases) == len(b.Aliases) &&
		slices.Equal(a.Segments, b.Segments) && slices.Equal(a.Applied.Seq, b.Applied.Seq) && sum(a) == sum(b)
}

// refresh brings the cached state of a profile the store has just written
// up to date with the stored profile plus what is pending since.
//
// With page views kept aside (state.later), the stored profile replaces
// the cached one: it folded them already, or they are pending.
//
// When the store's write was the only one since the cached profile's
// version, no event was dropped from the queue since the profile was
// taken from the store, and the two folds counted the same events
// (sameFold), the cached profile holds exactly that already: the store
// folded the same events, in the same order, with the same Apply
// (internal/fold), one Version per write. Then the cached value
// stays, with its memo of the last classification, taking the Version,
// Counted and the recent events as the store encoded them. Otherwise the
// stored profile replaces it. Either way, the state's cost in the cache
// is estimated again.
func (p *Core) refresh(prof *store.Profile) {
	if prof == nil {
		return
	}
	mu := p.lock(prof.ID)
	mu.Lock()
	defer mu.Unlock()
	st, ok := p.cache.Get(prof.ID)
	if !ok {
		return
	}
	prof.Apply(p.lim, p.queue.Get(prof.ID)...)
	if c := st.prof; len(st.later) == 0 && !st.partial && prof.Version == c.Version+1 && prof.MergedInto == "" && c.MergedInto == "" &&
		st.dropped == p.stats.Dropped.Load() && sameFold(c, prof) {
		c.Version, c.Counted = prof.Version, prof.Counted
		// The same events, as the store encoded them: a ring of decoded
		// events is several times larger, and full of pointers for the
		// garbage collector to follow; it is decoded again if read.
		c.Recent = prof.Recent
		// Its cost is estimated again, as it grew with the events.
		p.cacheSet(prof.ID, st, stateCost(st, c))
		return
	}
	// The page views kept aside are in the stored profile, or pending (and
	// so applied now), or were dropped from the queue.
	st.prof, st.partial, st.dropped = prof, false, p.stats.Dropped.Load()
	st.dropLater()
	p.cacheSet(prof.ID, st, stateCost(st, prof))
}

// cacheSet sets st as id's state in the cache, for the cache's time to
// live, and reports whether the cache took it (it may still reject it).
func (p *Core) cacheSet(id string, st *state, cost int64) bool {
	ttl := time.Duration(p.ttl.Load())
	exp := int64(math.MaxInt64)
	if ttl > 0 {
		// Before the cache's own reading of the clock: never later than
		// the entry's expiry.
		exp = time.Now().Add(ttl).UnixNano()
	}
	st.expires.Store(exp)
	if !p.cache.SetWithTTL(id, st, cost, ttl) {
		return false
	}
	st.set.Store(true)
	return true
}

// A stateHint is kept with a visitor's cookie (cookie.Codec.ReadHint)
// to find its state again without a cache lookup. It holds while the
// state has not left the cache since (exits), as ristretto tells through
// OnExit. It holds the state weakly: a hint never keeps a state that the
// cache dropped in memory.
type stateHint struct {
	id    string
	st    weak.Pointer[state]
	exits uint64
}

// noExits marks a hint that names a state but does not hold: it lets
// the next request of the cookie establish it (see hinted). A state's
// exits never reach it.
const noExits = math.MaxUint64

// lookupEvery is how often a request whose state the hint finds looks it
// up in the cache all the same: the cache's admission and eviction
// policy counts the lookups, and would take a visitor seen often for one
// never seen.
const lookupEvery = 8

// hinted returns the visitor's state as state does, finding it with the
// hint h kept with the visitor's cookie (nil for none) when the hint
// holds, and keeping a hint for the next request.
//
// A hint holds while its state has neither left the cache nor been set
// again since the hint was made (exits), nor gone stale, nor expired. It
// is made with the exits read before a cache lookup that returned the
// same state: so any exit after that lookup ends it. (The lookup of
// state may be another request's, made earlier, when it joined that
// request's load: hinted looks again.) A state first seen
// gets a hint that does not hold yet (noExits), for the next request to
// make one.
func (p *Core) hinted(ctx context.Context, id string, h *atomic.Value) *state {
	if h == nil {
		return p.state(ctx, id)
	}
	var old *state
	var before uint64
	holds := false
	if x, ok := h.Load().(stateHint); ok && x.id == id {
		if st := x.st.Value(); st != nil {
			before = st.exits.Load()
			// The cache's clock, not Config.Now's.
			holds = before == x.exits && !st.stale.Load() && time.Now().UnixNano() < st.expires.Load()
			if holds && st.uses.Add(1)%lookupEvery != 0 {
				p.stats.CacheHits.Add(1)
				return st
			}
			old = st
		}
	}
	st := p.state(ctx, id)
	switch {
	case !st.set.Load():
		// Never handed to the cache (the store could not be read): no
		// exit would end a hint.
	case st == old:
		// state may have joined a load whose lookup came before the
		// exits were read: look again, after.
		if !holds {
			if cached, ok := p.cache.Get(id); ok && cached == st {
				h.Store(stateHint{id: id, st: weak.Make(st), exits: before})
			}
		}
	default:
		h.Store(stateHint{id: id, st: weak.Make(st), exits: noExits})
	}
	return st
}
