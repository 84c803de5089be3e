// Package core is the runtime behind package middleware: it keeps each
// visitor's state (the stored profile with the events pending for it) in a
// cost-bounded cache, records events into it, writes them behind to the
// store, classifies, stitches visitors to users, and erases. The README's
// "A map of the code" follows a request through it.
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
	"github.com/tailorhq/tailor/middleware/internal/erasure"
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
	// JournalRetention: see forget.go. Zero or negative: no trim.
	JournalRetention time.Duration
	// RecheckInterval: see jobs.go. Zero means RecheckEvery.
	RecheckInterval time.Duration
	IsBot           func(*http.Request) bool
	Consent         func(*http.Request) Consent // decided: never ConsentDefault
	CountryHeader   string
	Logger          *slog.Logger
	Now             func() time.Time
	Hooks           Hooks
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

	forgotten *erasure.Set     // erased profiles and visitors
	merges    erasure.MergeLog // merges written lately, for erasures elsewhere
	bg        sync.WaitGroup   // background erasures and expiries
	expiring  atomic.Bool
	leased    atomic.Bool // this instance took a lease (store.Leaser)

	tracer atomic.Pointer[tracing] // nil: no spans (trace.go)

	// The segment jobs (jobs.go).
	counts    bool           // the store keeps aggregates: segments are always recorded
	jobsDone  sync.WaitGroup // the jobs goroutine, until Close
	jobSeq    atomic.Uint64  // sequence of the jobs' events (jobID)
	jobLogged atomic.Int64   // unix nanos of the last failure logged
	jobMu     sync.Mutex     // guards jobRetry
	jobRetry  []store.Batch  // written by a job, not acknowledged: written again first
}

// New returns a Core for cfg and starts its flusher; call Close to stop
// it.
func New(cfg Config) (*Core, error) {
	cache, err := ristretto.NewCache(&ristretto.Config[string, *state]{
		NumCounters: max(cfg.CacheBytes/1024*10, 1000),
		MaxCost:     cfg.CacheBytes,
		BufferItems: 64,
		// Ends the hints of the state (see hinted).
		OnExit: func(st *state) {
			if st != nil {
				st.exits.Add(1)
			}
		},
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
	_, p.counts = cfg.Store.(store.Counter)
	p.ttl.Store(int64(cfg.Freshness))
	p.forgotten = erasure.NewSet(cfg.CookieMaxAge)
	p.merges.TTL = p.tombstoneTTL()
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
	if p.runsJobs() {
		p.jobsDone.Go(func() { p.jobs(ctx) })
	}
	return p, nil
}

// Ready returns a channel that is closed once the Core hears the
// store's change announcements (store.Invalidator), at once for a store
// that makes none. New waits for it up to Config.StoreTimeout. Until then,
// another instance's changes reach this one only when its cached copies
// expire (Config.Freshness); an erasure holds all the same, as the store
// refuses writes of an erased profile for a while (store.ErrErased).
func (p *Core) Ready() <-chan struct{} { return p.ready }

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
		v.Segments = p.classifyRequest(r, v.Facts, now, true)
		return
	}
	if tr := p.tracer.Load(); tr != nil {
		p.identifyTraced(tr, r, v)
	} else {
		p.identify(r, v)
	}
	if !v.Tracked {
		if v.Consent == ConsentContextual {
			v.Segments = p.classifyRequest(r, v.Facts, now, false)
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
		prof := p.profile(b.st)
		last := prof.LastSeen
		first.NewVisit = last.IsZero() || first.Time.Sub(last) > p.cfg.VisitTimeout || last.Sub(first.Time) > p.cfg.VisitTimeout
		if prof.Apply(p.lim, *first) > 0 {
			p.stats.Events.Add(1)
			p.enqueue(b.pid, []store.Event{*first})
		}
	}
	// A request after a pause begins a new visit: rules see it counted
	// already, as its events will count it.
	last := b.st.lastSeen()
	newVisit := !last.IsZero() && now.Sub(last) > p.cfg.VisitTimeout
	var took time.Duration
	if tr := p.tracer.Load(); tr != nil {
		v.Segments, took = p.classifyTraced(tr, r, b.st, &v.Facts, now, newVisit)
	} else {
		v.Segments, took = p.classifyCached(b.st, &v.Facts, now, newVisit)
	}
	if !v.New && !b.st.partial && (p.counts || p.cfg.Hooks.WantsSegments()) {
		prof := b.st.prof // page views kept aside change neither Segments nor Recheck
		if until := b.st.memo.Until(); !store.SameSegments(v.Segments, prof.Segments) ||
			!until.IsZero() && (prof.Recheck.IsZero() || until.Before(prof.Recheck)) {
			p.recordSegments(b, v.Segments, until, now)
		}
	}
	mu.Unlock()
	if took > 0 {
		p.cfg.Hooks.Classified(took) // with no lock held, as observers are promised
	}
}

// recordSegments records that the visitor of b was classified into segs,
// which may change at until without a new event, when that differs from
// what is stored with its profile. The store's fold
// decides whether that is a change (see store.Classification); the flush
// that writes it reports the change (report). The stripe lock of b.pid is
// held.
func (p *Core) recordSegments(b *binding, segs []string, until, now time.Time) {
	prof := p.profile(b.st)
	changed := !store.SameSegments(segs, prof.Segments)
	ev := store.Event{ID: p.nextID(), Type: store.TypeSegments, Time: now,
		Classified: &store.Classification{Visitor: b.id, Was: prof.Segments, Segments: segs, Until: until}}
	prof.Apply(p.lim, ev)
	p.stats.Events.Add(1)
	p.enqueue(b.pid, []store.Event{ev})
	if changed { // an entry or exit is reported soon; a new Recheck waits for the next flush
		p.flushSoon()
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
	ci, cs, first, hint := p.cfg.Cookies.ReadHint(r, v.Now)
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
	if had && p.forgotten.Visitor(ci) {
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
	b.st = p.hinted(r.Context(), b.pid, hint)
	if p.forgotten.Visitor(ci) {
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
	if p.forgotten.Profile(b.pid) {
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
	prof := p.profile(st)
	if prof.Version == 0 && prof.Recent.Len() == 0 {
		return nil, store.ErrNotFound
	}
	return prof.Clone(), nil
}

func (p *Core) classify(prof *store.Profile, f rules.Facts, now time.Time) []string {
	if p.cfg.Engine == nil {
		return nil
	}
	return p.cfg.Engine.Classify(&rules.Input{Profile: prof, Request: f, Now: now})
}

// classifyCached classifies st's profile with the request facts f at now
// (a request that begins a new visit if newVisit), reusing the last
// result while it holds (see rules.Engine.ClassifyMemo). It returns how
// long a classification took when someone listens (Hooks.WantsTiming),
// else 0, and 0 when the last result was reused. The stripe lock of st is
// held.
func (p *Core) classifyCached(st *state, f *rules.Facts, now time.Time, newVisit bool) ([]string, time.Duration) {
	segs, took, _ := p.classifyMemo(st, f, now, newVisit)
	return segs, took
}

// classifyMemo is classifyCached, also saying whether the memo's segments
// were reused.
func (p *Core) classifyMemo(st *state, f *rules.Facts, now time.Time, newVisit bool) (segs []string, took time.Duration, reused bool) {
	e := p.cfg.Engine
	if e == nil {
		return nil, 0, false
	}
	if segs, ok := e.Recall(&st.memo, st.prof, *f, now, newVisit, st.laterTouch); ok {
		p.stats.ClassifyCached.Add(1)
		return segs, 0, true
	}
	timed := p.cfg.Hooks.WantsTiming()
	var start time.Time
	if timed {
		start = time.Now()
	}
	// Made only to classify anew: the rules may keep it, so it escapes.
	in := &rules.Input{Profile: p.profile(st), Request: *f, Now: now, NewVisit: newVisit}
	segs, classified := e.ClassifyMemo(&st.memo, in)
	in.Profile = nil // not kept past the classification, whatever keeps in
	if !classified {
		p.stats.ClassifyCached.Add(1)
		return segs, 0, true
	}
	if timed {
		return segs, max(time.Since(start), 1), false
	}
	return segs, 0, false
}

func (p *Core) lock(id string) *sync.Mutex {
	return &p.locks[maphash.String(p.seed, id)%uint64(len(p.locks))]
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
func (p *Core) Record(v *Visit, ev store.Event) { p.record(v, ev, false) }

// RecordPageView records ev, the page view of v's request, as Record does,
// timed when the request began (Visit.Now), as a hit is; but at the time
// it is recorded if the visitor has a later event already (recorded while
// the request was served), so that the recent events stay in time order.
func (p *Core) RecordPageView(v *Visit, ev store.Event) { p.record(v, ev, true) }

func (p *Core) record(v *Visit, ev store.Event, atStart bool) {
	b := v.bind()
	mu := p.lock(b.pid)
	mu.Lock()
	defer mu.Unlock()
	if ev.ID == "" {
		ev.ID = p.nextID()
	}
	st := b.st
	last := st.lastSeen()
	if ev.Time.IsZero() {
		if atStart && !v.Now.IsZero() && !v.Now.Before(last) {
			ev.Time = v.Now
		} else {
			ev.Time = p.cfg.Now()
		}
	}
	ev.NewVisit = last.IsZero() || ev.Time.Sub(last) > p.cfg.VisitTimeout
	if v.New && ev.Type == store.TypePage {
		// Not queued, but folded after what is kept aside: a new visitor
		// who identified shares the user's state with other browsers.
		p.profile(st).Apply(p.lim, ev)
		return
	}
	if ev.Type == store.TypePage && st.prof.MergedInto == "" && !p.forgotten.Profile(b.pid) {
		// Kept aside, with what it touches: a returning visitor's next
		// request usually needs no more (see state.later).
		if len(st.later) >= maxLater {
			p.profile(st)
		}
		st.later = append(st.later, ev)
		st.laterTouch |= st.prof.Touches(p.lim, &ev)
		if ev.Time.After(st.laterSeen) {
			st.laterSeen = ev.Time
		}
	} else {
		p.profile(st).Apply(p.lim, ev)
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

// jobID returns the id of the next event a segment job writes. The jobs
// write to the store directly, not through the queue: as a producer of
// their own, so that their writes never pass the queue's events of the
// same profile (a store remembers a producer's events by the highest
// sequence number it applied, and would skip the lower ones pending).
func (p *Core) jobID() string {
	return store.EventID(p.producer+".jobs", p.jobSeq.Add(1))
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
	if p.forgotten.Profile(id) {
		p.eraseMerged(evs, false)
		return
	}
	if d := p.queue.Add(id, evs...); d > 0 {
		p.stats.Dropped.Add(uint64(d))
	}
}
