// Package core is the runtime behind package middleware: it keeps each
// visitor's state (the stored profile with the events pending for it) in a
// cost-bounded cache, records events into it, writes them behind to the
// store, classifies, stitches visitors to users, and erases. See
// middleware's package documentation ("A map of the packages") for how a
// request goes through it.
//
// # Locks
//
// Two locks, always taken in this order when both are:
//
//  1. the flush lock (flushMu): one write of queued events at a time
//     (flush, link, Forget), so that events reach the store in order;
//  2. a visitor's stripe lock (lock(id)): guards the state of profile id
//     (its cached profile, its memo of the last classification) and orders
//     the events recorded for it with their ids.
//
// The queue, the cache, the forgotten set and the merge log lock
// themselves and never call out while locked.
package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/sync/singleflight"

	"github.com/tailorhq/tailor/middleware/internal/cookie"
	"github.com/tailorhq/tailor/middleware/internal/queue"
	"github.com/tailorhq/tailor/middleware/internal/reqfacts"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// Config is what a Core needs, defaults set and validated by package
// middleware (see middleware.Config for each field's meaning).
type Config struct {
	Store         store.Store
	Engine        *rules.Engine
	Cookies       *cookie.Codec
	CookieMaxAge  time.Duration
	VisitTimeout  time.Duration
	FlushInterval time.Duration
	FlushBatch    int
	MaxPending    int
	StoreTimeout  time.Duration
	LoadTimeout   time.Duration
	Freshness     time.Duration
	CacheBytes    int64
	Retention     time.Duration
	IsBot         func(*http.Request) bool
	Consent       func(*http.Request) Consent // decided: never ConsentDefault
	CountryHeader string
	Logger        *slog.Logger
	Now           func() time.Time
	Hooks         Hooks
}

// Hooks tell package middleware's observers what the Core decided. Each
// Wants func says whether anyone listens, so that nothing is computed in
// vain; they are read on the request path and must be cheap.
type Hooks struct {
	WantsSegments func() bool
	// SegmentChange is called with no lock held.
	SegmentChange func(SegmentChange)
	WantsTiming   func() bool
	Classified    func(time.Duration)
}

// A SegmentChange is a visitor entering or leaving segments.
type SegmentChange struct {
	VisitorID, UserID string
	Entered, Exited   []string
	Time              time.Time
}

// Consent is what a visitor agreed to, with middleware.Consent's values.
type Consent uint8

// The values of middleware.Consent.
const (
	ConsentDefault Consent = iota
	ConsentNone
	ConsentContextual
	ConsentFull
)

// A Core is the runtime of one middleware.Personalizer.
type Core struct {
	cfg   Config
	store store.Store
	lim   store.Limits
	cache *ristretto.Cache[string, *state]
	loads singleflight.Group
	queue *queue.Queue
	locks [256]sync.Mutex
	seed  maphash.Seed

	producer string
	seq      atomic.Uint64

	storeDownUntil atomic.Int64 // unix nanos; loads are skipped until then
	stats          Counters

	// flushMu is the flush lock: one write of queued events at a time
	// (flush, link, Forget). It is a one-slot channel so that a request
	// can wait for it for a bounded time (lockFlushWithin).
	flushMu chan struct{}
	reports []SegmentChange // to deliver once flushMu is released; guarded by flushMu
	wake    chan struct{}   // asks the flusher to flush now
	stop    chan struct{}
	done    chan struct{}
	closed  atomic.Bool
	ttl     atomic.Int64 // nanoseconds after which cache entries expire
	cancel  context.CancelFunc

	// ours counts this instance's own writes whose announcements have not
	// come back yet, so that they do not mark our fresh state stale.
	oursMu sync.Mutex
	ours   map[string]ownWrite
	subbed bool
	ready  chan struct{} // closed once the store's announcements are heard

	forgotten forgottenSet   // erased profiles and visitors
	merges    mergeLog       // merges written lately, for erasures elsewhere
	bg        sync.WaitGroup // background erasures and expiries
	expiring  atomic.Bool
}

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
}

// New returns a Core for cfg and starts its flusher; call Close to stop
// it.
func New(cfg Config) (*Core, error) {
	cache, err := ristretto.NewCache(&ristretto.Config[string, *state]{
		NumCounters: max(cfg.CacheBytes/1024*10, 1000),
		MaxCost:     cfg.CacheBytes,
		BufferItems: 64,
	})
	if err != nil {
		return nil, fmt.Errorf("tailor: cache: %w", err)
	}
	var b [8]byte
	rand.Read(b[:])
	p := &Core{
		cfg:      cfg,
		store:    cfg.Store,
		lim:      store.LimitsOf(cfg.Store),
		cache:    cache,
		queue:    queue.New(cfg.MaxPending),
		seed:     maphash.MakeSeed(),
		producer: hex.EncodeToString(b[:]),
		wake:     make(chan struct{}, 1),
		ready:    make(chan struct{}),
		flushMu:  make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	p.ttl.Store(int64(cfg.Freshness))
	p.forgotten.init(cfg.CookieMaxAge)
	p.merges.ttl = p.tombstoneTTL()
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	if inv, ok := cfg.Store.(store.Invalidator); ok {
		p.ours, p.subbed = make(map[string]ownWrite), true
		go p.subscribe(ctx, inv)
		// Hear the store before serving, as long as it answers quickly;
		// Ready tells when a slow store's subscription is in place.
		t := time.NewTimer(cfg.StoreTimeout)
		select {
		case <-p.ready:
		case <-t.C:
			cfg.Logger.Warn("tailor: the store's change announcements are not heard yet; subscribing in the background", "waited", cfg.StoreTimeout)
		}
		t.Stop()
	} else {
		close(p.ready)
	}
	go p.loop()
	return p, nil
}

// Ready returns a channel that is closed once the Personalizer hears the
// store's change announcements (store.Invalidator), at once for a store
// that makes none. New waits for it up to Config.StoreTimeout. Until then,
// another instance's changes reach this one only when its cached copies
// expire (Config.Freshness); an erasure holds all the same, as the store
// refuses writes of an erased profile for a while (store.ErrErased).
func (p *Core) Ready() <-chan struct{} { return p.ready }

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
// goes too.
func (p *Core) invalidate(c store.Change) {
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

// Begin identifies and classifies the visitor of r into v, which is
// zero.
func (p *Core) Begin(r *http.Request, v *Visit) {
	p.stats.Requests.Add(1)
	now := p.cfg.Now()
	bot := p.cfg.IsBot(r)
	v.Now, v.Facts = now, reqfacts.Of(r, bot, p.lim.PathBytes, p.cfg.CountryHeader)
	if bot {
		p.stats.Bots.Add(1)
		v.Consent = ConsentContextual
		v.Segments = p.classify(nil, v.Facts, now)
		return
	}
	p.identify(r, v)
	if !v.Tracked {
		if v.Consent == ConsentContextual {
			v.Segments = p.classify(nil, v.Facts, now)
		}
		return
	}
	b := v.bind()
	mu := p.lock(b.pid)
	mu.Lock()
	if first := v.First; first != nil {
		// The visitor came back with the cookie it was given, which carries
		// its first page view: from now on it is kept. The id is the same
		// wherever the cookie comes back, so the view counts once.
		p.stats.Returned.Add(1)
		first.ID = store.EventID(b.id, 1)
		// It began the first visit, unless something else of that visit
		// reached the profile first (an action kept at once).
		last := b.st.prof.LastSeen
		first.NewVisit = last.IsZero() || first.Time.Sub(last) > p.cfg.VisitTimeout || last.Sub(first.Time) > p.cfg.VisitTimeout
		if b.st.prof.Apply(p.lim, *first) > 0 {
			p.stats.Events.Add(1)
			p.enqueue(b.pid, []store.Event{*first})
		}
	}
	// A request after a pause begins a new visit: rules see it counted
	// already, as its events will count it.
	prof := b.st.prof
	newVisit := !prof.LastSeen.IsZero() && now.Sub(prof.LastSeen) > p.cfg.VisitTimeout
	v.Segments = p.classifyCached(b.st, v.Facts, now, newVisit)
	if !v.New && !b.st.partial && p.cfg.Hooks.WantsSegments() && !store.SameSegments(v.Segments, prof.Segments) {
		p.recordSegments(b, v.Segments, now)
	}
	mu.Unlock()
	return
}

// recordSegments records that the visitor of b was classified into segs,
// which differ from the segments stored with its profile. The store's fold
// decides whether that is a change (see store.Classification); the flush
// that writes it reports the change (report). The stripe lock of b.pid is
// held.
func (p *Core) recordSegments(b *binding, segs []string, now time.Time) {
	prof := b.st.prof
	ev := store.Event{ID: p.nextID(), Type: store.TypeSegments, Time: now,
		Classified: &store.Classification{Visitor: b.id, Was: prof.Segments, Segments: segs}}
	prof.Apply(p.lim, ev)
	p.stats.Events.Add(1)
	p.enqueue(b.pid, []store.Event{ev})
	p.flushSoon()
}

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

// maxHops bounds the chain of merged profiles followed to a visitor's
// profile (a visitor merged into a user, the user aliased to another).
const maxHops = 4

// identify finds who the visitor of r is, without classifying them: what
// they consented to, their cookie, and the profile their events go to.
// It sets v.Tracked, v.Consent, v.New, v.First and the binding, and the
// cookie flags.
func (p *Core) identify(r *http.Request, v *Visit) {
	ci, cs, first := p.cfg.Cookies.Read(r, v.Now)
	had := cs == cookie.Valid || cs == cookie.Renew
	v.Consent = p.cfg.Consent(r)
	if v.Consent != ConsentFull {
		if had {
			// Consent withdrawn: erase what we know, drop the cookie.
			v.ExpireCookie = true
			p.withdraw(ci)
		}
		return
	}
	if had && p.forgotten.visitor(ci) {
		// Erased (Forget): the cookie goes, and this response is made from
		// the request alone.
		v.ExpireCookie, v.Consent = true, ConsentContextual
		return
	}
	switch cs {
	case cookie.Rejected:
		p.stats.RejectedCookies.Add(1)
		fallthrough
	case cookie.None:
		ci = cookie.ID{Visitor: cookie.NewID()}
		v.New, v.SetCookie = true, true
		p.stats.NewVisitors.Add(1)
	case cookie.Renew:
		v.SetCookie = true
		p.stats.RenewedCookies.Add(1)
	}
	v.Tracked, v.Facts.New, v.First = true, v.New, first
	b := &v.b0
	b.id, b.user, b.pid = ci.Visitor, ci.User, ci.Visitor
	if ci.User != "" {
		b.pid = store.UserPrefix + ci.User
	}
	if v.New {
		b.st = &state{prof: store.New(b.pid)}
		v.b.Store(b)
		return
	}
	b.st = p.state(r.Context(), b.pid)
	if p.forgotten.visitor(ci) {
		// Loading found the profile erased (a tombstone): as above.
		v.Tracked, v.First, v.SetCookie = false, nil, false
		v.ExpireCookie, v.Consent = true, ConsentContextual
		return
	}
	for hops := 0; hops < maxHops; hops++ {
		into := p.mergedInto(b.pid, b.st)
		if into == "" {
			break
		}
		// The profile was merged (the visitor identified through another
		// instance or a server call): follow it, and put the user in the
		// cookie so that the next request goes there directly.
		b.pid, b.user = into, strings.TrimPrefix(into, store.UserPrefix)
		b.st = p.state(r.Context(), into)
		v.SetCookie = true
	}
	if p.forgotten.profile(b.pid) {
		// The profile it leads to was erased (found by its tombstone).
		v.Tracked, v.First, v.SetCookie = false, nil, false
		v.ExpireCookie, v.Consent = true, ConsentContextual
		return
	}
	v.b.Store(b)
}

// mergedInto returns the profile that st, the state of pid, was merged
// into, or "".
func (p *Core) mergedInto(pid string, st *state) string {
	mu := p.lock(pid)
	mu.Lock()
	defer mu.Unlock()
	return st.prof.MergedInto
}

// Store returns the store profiles are kept in.
func (p *Core) Store() store.Store { return p.store }

// Engine returns the segment engine, or nil.
func (p *Core) Engine() *rules.Engine { return p.cfg.Engine }

// ProfileOf returns a copy of the profile visitorID as this instance sees it:
// the stored profile with the events still pending. It returns
// store.ErrNotFound for a visitor without profile.
func (p *Core) ProfileOf(ctx context.Context, visitorID string) (*store.Profile, error) {
	if err := store.ValidateID(visitorID); err != nil {
		return nil, err
	}
	st := p.state(ctx, visitorID)
	mu := p.lock(visitorID)
	mu.Lock()
	defer mu.Unlock()
	if st.prof.Version == 0 && st.prof.Recent.Len() == 0 {
		return nil, store.ErrNotFound
	}
	return st.prof.Clone(), nil
}

func (p *Core) classify(prof *store.Profile, f rules.Facts, now time.Time) []string {
	if p.cfg.Engine == nil {
		return nil
	}
	return p.cfg.Engine.Classify(&rules.Input{Profile: prof, Request: f, Now: now})
}

// classifyCached classifies st's profile, reusing the last result while
// it holds (see rules.Engine.ClassifyMemo). The stripe lock of st is held.
func (p *Core) classifyCached(st *state, f rules.Facts, now time.Time, newVisit bool) []string {
	e := p.cfg.Engine
	if e == nil {
		return nil
	}
	timed := p.cfg.Hooks.WantsTiming()
	var start time.Time
	if timed {
		start = time.Now()
	}
	segs, classified := e.ClassifyMemo(&st.memo, &rules.Input{Profile: st.prof, Request: f, Now: now, NewVisit: newVisit})
	if !classified {
		p.stats.ClassifyCached.Add(1)
	} else if timed {
		p.cfg.Hooks.Classified(time.Since(start))
	}
	return segs
}

func (p *Core) lock(id string) *sync.Mutex {
	return &p.locks[maphash.String(p.seed, id)%uint64(len(p.locks))]
}

// state returns the visitor's cached state, building it from the store and
// the pending events on a miss.
func (p *Core) state(ctx context.Context, id string) *state {
	if st, ok := p.cache.Get(id); ok && !st.stale.Load() {
		p.stats.CacheHits.Add(1)
		return st
	}
	p.stats.CacheMisses.Add(1)
	v, _, _ := p.loads.Do(id, func() (any, error) {
		if st, ok := p.cache.Get(id); ok && !st.stale.Load() {
			return st, nil
		}
		before := p.queue.Get(id)
		st := &state{}
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
		case p.forgotten.profile(id):
			st.prof = store.New(id) // erased meanwhile (Forget)
		case !st.partial:
			cached = p.cache.SetWithTTL(id, st, cost(prof), time.Duration(p.ttl.Load()))
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
		prof, err := p.store.Load(ctx, id)
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

// PageView returns the page-view event of a request with facts f, about
// category and item.
func PageView(f *rules.Facts, category, item string) store.Event {
	return store.Event{
		Type: store.TypePage, Path: f.Path, Category: category, Item: item,
		Referrer: f.Referrer, Source: f.Source, Medium: f.Medium,
		Campaign: f.Campaign, Device: f.Device,
	}
}

// Record stamps ev, folds it into the visitor's state and queues it for the
// store. A new visitor's page view is not queued: it travels in the cookie
// (see package cookie) and is recorded when the visitor comes back.
func (p *Core) Record(v *Visit, ev store.Event) {
	b := v.bind()
	mu := p.lock(b.pid)
	mu.Lock()
	defer mu.Unlock()
	if ev.ID == "" {
		ev.ID = p.nextID()
	}
	if ev.Time.IsZero() {
		ev.Time = p.cfg.Now()
	}
	last := b.st.prof.LastSeen
	ev.NewVisit = last.IsZero() || ev.Time.Sub(last) > p.cfg.VisitTimeout
	b.st.prof.Apply(p.lim, ev)
	if v.New && ev.Type == store.TypePage {
		return
	}
	p.stats.Events.Add(1)
	p.enqueue(b.pid, []store.Event{ev})
	if ev.Type != store.TypePage {
		p.flushSoon()
	}
}

// nextID returns a new sequenced event id of this instance.
func (p *Core) nextID() string {
	return store.EventID(p.producer, p.seq.Add(1))
}

// flushSoon asks the flusher to write now rather than at the next
// interval: actions (a purchase, a sign-up, a CRM stage) should reach
// other instances fast.
func (p *Core) flushSoon() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// enqueue queues evs for the profile id, unless it was just erased: then
// the profiles its merge events would merge are erased too. The caller
// holds id's stripe lock.
func (p *Core) enqueue(id string, evs []store.Event) {
	if p.forgotten.profile(id) {
		p.eraseMerged(evs, false)
		return
	}
	if d := p.queue.Add(id, evs...); d > 0 {
		p.stats.Dropped.Add(uint64(d))
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
			p.cfg.Logger.Error("tailor: pending events dropped at Config.MaxPending", "dropped", d, "max_pending", p.cfg.MaxPending)
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
	_, err := p.store.Load(ctx, probeID)
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

func (p *Core) flush(ctx context.Context) error {
	p.lockFlush()
	defer p.unlockFlush()
	bs := p.queue.Take()
	start := time.Now()
	for i := 0; i < len(bs); i += p.cfg.FlushBatch {
		chunk := bs[i:min(i+p.cfg.FlushBatch, len(bs))]
		p.expectOwn(chunk)
		cctx, cancel := context.WithTimeout(ctx, p.cfg.StoreTimeout)
		profs, err := store.ApplyBatch(cctx, p.store, chunk)
		cancel()
		if err != nil {
			p.unexpectOwn(chunk)
			p.stats.FlushErrors.Add(1)
			p.putBack(bs[i:])
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
		if p.forgotten.profile(b.ID) {
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
			p.merges.add(batches[i])
		}
	}
	p.eraseAgain(ctx, batches, profs)
	for i, prof := range profs {
		if prof != nil && prof.MergedInto != "" && !p.forgotten.profile(prof.ID) {
			p.merged(batches[i], prof)
		}
	}
	p.report(batches, profs)
	for _, prof := range profs {
		p.refresh(prof)
	}
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

// refresh replaces the cached state of a profile the store has just written
// with the stored profile plus what is pending since.
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
	st.prof, st.partial = prof, false
	p.cache.SetWithTTL(prof.ID, st, cost(prof), time.Duration(p.ttl.Load()))
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
	p.bg.Wait()
	defer p.cancel()
	defer p.cache.Close()
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
