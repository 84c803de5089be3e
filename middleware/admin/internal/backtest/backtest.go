// Package backtest runs a draft segment against the stored profiles before
// it is published: how many visitors would be in it now, how that
// compares with the published segments (their overlap), sample members
// with the explanation of their membership, and, for a segment whose
// rule depends on a window of time, how its size would have moved over the
// last weeks, from the events kept in the profiles.
//
// # The pass
//
// A backtest is one pass over every stored profile (store.Scanner), in
// pages, throttled to Config.Rate profiles a second so that the store
// keeps room for the site's requests, in a goroutine of the instance that
// started it. One backtest runs at a time on the whole site: Start takes
// the store's lease LeaseName (store.Leaser) and renews it while the pass
// runs; a second Start, from any instance, is refused with ErrBusy,
// which says who runs the first and how far it is. Without leases, one
// runs at a time per Runner.
//
// Its progress (done of total, rate, time left, and the Result once it
// finished) is kept in a store document (store.Documents) written every
// quarter of a second, so that a dashboard served by any instance shows it,
// and can cancel it: Cancel writes a flag that the pass reads after every
// page. The store keeps the last Keep backtests, in Keep documents reused
// in turn, so that the documents stay few whatever the number of
// backtests. Without documents, progress is kept in the Runner's memory.
//
// # What is counted
//
// Profiles merged into another (store.Profile.MergedInto) are skipped, as
// the store's aggregates skip them; erased profiles (tombstones) are not
// profiles and are never scanned. Each profile is evaluated at
// Request.Now without a request: a draft segment whose rule reads request
// facts (utm parameters, device...) sees none, which the Result's Notes
// say. The published segments are evaluated as the site's recheck job
// evaluates them (rules.Engine.Reclassify): those that depend on the
// request keep the membership stored with the profile.
//
// # History
//
// When the draft segment's membership depends on the time
// (rules.Set.SegmentDependencies), the size is also estimated at each of
// the last Request.Weeks weeks, on every profile as it was then, as far as
// its events tell, and evaluated at that time. A profile whose ring of
// recent events still holds every event it counts (store.Limits.Recent
// events, 200 by default, and no bound hit) is folded again from the
// events at or before that time: it is exactly the profile it was, and a
// profile with no event yet is not counted. For a profile whose ring lost
// its oldest events, only what the ring tells is rewound: the ring keeps
// the events at or before that time, LastSeen is the last of them (or
// FirstSeen if none), and a profile first seen later is not counted; its
// counters over the whole history (Counts, Pages, Categories, Views,
// Purchases, Visits), traits and user id are today's. Window rules
// (pageVisited and eventCount "within", recency of an event, conditions
// over "recent") read only the ring and the time, so they are right for
// such a profile too as long as its ring reaches back to the week looked
// at, and undercount it otherwise.
package backtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// Names in the store, and the bounds of a backtest.
const (
	// LeaseName is the store lease held by the instance that runs a
	// backtest.
	LeaseName = "tailor/backtest"
	// LastDocument names the store document that holds the id of the
	// latest backtest.
	LastDocument = "tailor/backtest/last"
	// Keep is how many backtests the store, or a Runner without
	// documents, remembers: the progress of an older one is gone
	// (ErrNotFound).
	Keep = 16
	// MaxWeeks bounds Request.Weeks, MaxSamples Request.Samples.
	MaxWeeks   = 52
	MaxSamples = 100
	// MaxBy bounds Request.By, in bytes.
	MaxBy = 200

	// leaseTTL is how long the lease outlives a pass that stopped
	// renewing it (its instance died); a running progress not updated
	// for as long is read as abandoned.
	leaseTTL   = 30 * time.Second
	renewEvery = 5 * time.Second
	// progressEvery is how often a running pass writes its progress.
	progressEvery = 250 * time.Millisecond
	storeTimeout  = 10 * time.Second
)

// Errors of a Runner. Test for them with errors.Is.
var (
	// ErrBusy is returned by Start while another backtest runs.
	ErrBusy = errors.New("backtest: another backtest is running")
	// ErrNotFound is returned for the id of no backtest remembered.
	ErrNotFound = errors.New("backtest: no such backtest")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("backtest: runner is closed")
)

// A Request is what to backtest.
type Request struct {
	// Draft is the draft segments file, parsed: the draft segment may
	// reference others of it (inSegment). Required.
	Draft *rules.Set
	// Segment names the draft segment in Draft. Required.
	Segment string
	// Published is the site's current set, for the overlap; nil for none.
	Published *rules.Set
	// Now is the time of evaluation; zero means Config.Now().
	Now time.Time
	// Weeks is how many weeks back the history goes, for a segment
	// that depends on the time: 0 means 8, at most MaxWeeks.
	Weeks int
	// Samples is how many members to explain: 0 means 10, at most
	// MaxSamples.
	Samples int
	// By names who asked, for the progress (at most MaxBy bytes).
	By string
}

// A Result is what a finished backtest found.
type Result struct {
	// Segment is the draft segment.
	Segment string `json:"segment"`
	// Members is how many profiles are in the draft segment at Now.
	Members int64 `json:"members"`
	// Scanned is how many profiles were evaluated (merged ones are not).
	Scanned int64 `json:"scanned"`
	// Errors counts the profiles for which the draft segment's rule
	// failed (counted as not members); the Notes give the last error.
	Errors int64 `json:"errors,omitempty"`
	// Overlap has one entry per segment of Request.Published, in its
	// evaluation order.
	Overlap []Overlap `json:"overlap,omitempty"`
	// Samples are members chosen at random among all, each with the
	// explanation of its membership.
	Samples []Sample `json:"samples,omitempty"`
	// History is the estimated size at each week, oldest first, the last
	// point being Now (Members); empty when the draft segment does not
	// depend on the time. See the package documentation.
	History []Point `json:"history,omitempty"`
	// Notes are what the reader should know about the figures.
	Notes []string `json:"notes,omitempty"`
}

// Overlap compares the draft segment with a published one.
type Overlap struct {
	Segment string `json:"segment"`
	// Size is how many profiles are in the published segment in this
	// pass, Both how many of those are in the draft segment too.
	Size int64 `json:"size"`
	Both int64 `json:"both"`
}

// A Sample is a member of the draft segment and why.
type Sample struct {
	ID          string            `json:"id"`
	UserID      string            `json:"userId,omitempty"`
	Explanation rules.Explanation `json:"explanation"`
	// Error is Explanation.Err's message, which its JSON form does not
	// read back.
	Error string `json:"error,omitempty"`
}

// A Point is the size of the draft segment at a time.
type Point struct {
	At      time.Time `json:"at"`
	Members int64     `json:"members"`
}

// Progress is the state of a backtest, as every instance reads it.
type Progress struct {
	ID      string `json:"id"`
	Segment string `json:"segment"`
	By      string `json:"by,omitempty"`
	// Holder is the instance that runs it (Config.Holder).
	Holder string `json:"holder"`
	// Done counts the profiles read; Total is the number of stored
	// profiles when it began, as the store counts them (store.Counter),
	// or Done if more; 0 if unknown.
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
	// Rate is the pace so far, in profiles a second.
	Rate float64 `json:"rate,omitempty"`
	// Started, Updated (the last write of the progress) and Finished
	// (zero while it runs) are the instance's wall clock.
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"`
	Finished time.Time `json:"finished,omitzero"`
	// Canceled is set on a backtest stopped by Cancel or Close; Error
	// says why a backtest failed.
	Canceled bool   `json:"canceled,omitempty"`
	Error    string `json:"error,omitempty"`
	// Result is set once it finished without error.
	Result *Result `json:"result,omitempty"`
}

// Running reports whether the backtest is under way.
func (p Progress) Running() bool { return !p.Started.IsZero() && p.Finished.IsZero() }

// Remaining estimates the time until the backtest ends, at its rate so
// far; zero when unknown or finished.
func (p Progress) Remaining() time.Duration {
	if !p.Running() || p.Rate <= 0 || p.Total <= p.Done {
		return 0
	}
	return time.Duration(float64(p.Total-p.Done) / p.Rate * float64(time.Second))
}

// Config configures a Runner.
type Config struct {
	// Store holds the profiles. It must be a store.Scanner; a
	// store.Leaser makes one backtest run at a time on the whole site, a
	// store.Documents shares the progress between instances, and a
	// store.Counter gives the total of the progress. Required.
	Store store.Store
	// Holder names this instance, in the lease and the progress (at most
	// 150 bytes); empty means a random name.
	Holder string
	// Rate bounds the pace of a pass, in profiles a second; 0 means
	// 50,000.
	Rate int
	// Page is how many profiles are read at once; 0 means 1000. A page
	// is smaller when Rate is low, so that the pass reports its progress
	// and notices a cancel several times a second.
	Page int
	// Logger receives the start, end and failure of each backtest; nil
	// is slog.Default().
	Logger *slog.Logger
	// Now is the clock of Request.Now's default; nil is time.Now.
	Now func() time.Time
}

// A Runner runs backtests over one store. It is safe for concurrent use.
type Runner struct {
	cfg     Config
	sc      store.Scanner
	docs    store.Documents // nil without
	leaser  store.Leaser    // nil without
	counter store.Counter   // nil without

	// afterPage, if set (by tests), is called by the pass after each
	// page, with its progress, before it checks for a cancel.
	afterPage func(Progress)
	// every is how often a running pass writes its progress
	// (progressEvery; tests set 0 to see every page).
	every time.Duration

	mu     sync.Mutex // guards what follows
	closed bool
	run    *run                // the pass this Runner runs, or reserves; nil if none
	mem    map[string]Progress // without documents: the last Keep backtests
	last   string              // without documents: the latest id
	seq    uint64              // without documents: the latest sequence number
	wg     sync.WaitGroup      // the pass's goroutine
}

// run is a pass of this Runner.
type run struct {
	id     string
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Runner over cfg.Store.
func New(cfg Config) (*Runner, error) {
	if cfg.Store == nil {
		return nil, errors.New("backtest: Config.Store is nil")
	}
	sc, ok := cfg.Store.(store.Scanner)
	if !ok {
		return nil, fmt.Errorf("backtest: the store (%T) cannot scan its profiles (store.Scanner)", cfg.Store)
	}
	switch {
	case cfg.Rate < 0:
		return nil, fmt.Errorf("backtest: Config.Rate %d is negative", cfg.Rate)
	case cfg.Page < 0:
		return nil, fmt.Errorf("backtest: Config.Page %d is negative", cfg.Page)
	case len(cfg.Holder) > 150:
		return nil, fmt.Errorf("backtest: Config.Holder of %d bytes, more than 150", len(cfg.Holder))
	}
	if cfg.Rate == 0 {
		cfg.Rate = 50_000
	}
	if cfg.Page == 0 {
		cfg.Page = 1000
	}
	if cfg.Holder == "" {
		cfg.Holder = "instance-" + randomHex(6)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Runner{cfg: cfg, sc: sc, mem: map[string]Progress{}, every: progressEvery}
	r.docs, _ = cfg.Store.(store.Documents)
	r.leaser, _ = cfg.Store.(store.Leaser)
	r.counter, _ = cfg.Store.(store.Counter)
	return r, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// check validates req and fills its defaults.
func (r *Runner) check(req *Request) error {
	switch {
	case req.Draft == nil:
		return errors.New("backtest: Request.Draft is nil")
	case req.Segment == "":
		return errors.New("backtest: Request.Segment is empty")
	case req.Weeks < 0 || req.Weeks > MaxWeeks:
		return fmt.Errorf("backtest: Request.Weeks %d, want 0 to %d", req.Weeks, MaxWeeks)
	case req.Samples < 0 || req.Samples > MaxSamples:
		return fmt.Errorf("backtest: Request.Samples %d, want 0 to %d", req.Samples, MaxSamples)
	case len(req.By) > MaxBy:
		return fmt.Errorf("backtest: Request.By of %d bytes, more than %d", len(req.By), MaxBy)
	}
	if _, ok := req.Draft.SegmentDependencies(req.Segment); !ok {
		return fmt.Errorf("backtest: the draft has no segment named %q", req.Segment)
	}
	if req.Now.IsZero() {
		req.Now = r.cfg.Now()
	}
	if req.Weeks == 0 {
		req.Weeks = 8
	}
	if req.Samples == 0 {
		req.Samples = 10
	}
	return nil
}

// Start starts a backtest of req in the background and returns its id.
// It returns an error wrapping ErrBusy while another backtest runs,
// anywhere on the site (or on this Runner, for a store without leases),
// saying who runs it and how far it is. ctx bounds Start only; the pass
// runs until it ends, Cancel or Close.
func (r *Runner) Start(ctx context.Context, req Request) (string, error) {
	if err := r.check(&req); err != nil {
		return "", err
	}
	// Reserve this Runner's one pass.
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return "", ErrClosed
	case r.run != nil:
		id := r.run.id
		r.mu.Unlock()
		return "", r.busy(ctx, id)
	}
	res := &run{done: make(chan struct{})}
	r.run = res
	r.mu.Unlock()
	unreserve := func() {
		r.mu.Lock()
		r.run = nil
		r.mu.Unlock()
	}

	// The lease first, the sequence number under it: two instances that
	// read the latest backtest at once would pick the same number, and the
	// second to run would write over the first's progress.
	token := randomHex(4)
	holder := r.cfg.Holder + "/" + token
	if r.leaser != nil {
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		held, err := r.leaser.Lease(sctx, LeaseName, holder, leaseTTL)
		cancel()
		if err != nil {
			unreserve()
			return "", fmt.Errorf("backtest: taking the lease %s: %w", LeaseName, err)
		}
		if !held {
			unreserve()
			return "", r.busy(ctx, "")
		}
	}
	release := func() {
		if r.leaser != nil {
			sctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			defer cancel()
			if err := r.leaser.Release(sctx, LeaseName, holder); err != nil {
				r.cfg.Logger.Warn("tailor: backtest: releasing the lease failed; it expires", "lease", LeaseName, "err", err)
			}
		}
	}
	seq, err := r.nextSeq(ctx)
	if err != nil {
		release()
		unreserve()
		return "", err
	}
	id := strconv.FormatUint(seq, 10) + "-" + token
	p := Progress{ID: id, Segment: req.Segment, By: req.By, Holder: r.cfg.Holder, Started: time.Now()}
	p.Updated = p.Started
	if r.counter != nil {
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		n, err := r.counter.Counts(sctx)
		cancel()
		if err != nil {
			release()
			unreserve()
			return "", fmt.Errorf("backtest: counting the profiles: %w", err)
		}
		p.Total = n[store.CountProfiles]
	}
	pctx, cancel := context.WithCancel(context.Background())
	r.mu.Lock()
	if r.closed {
		r.run = nil
		r.mu.Unlock()
		cancel()
		release()
		return "", ErrClosed
	}
	res.id, res.cancel = id, cancel
	r.wg.Add(1) // under mu, so that Close waits for it
	r.mu.Unlock()
	if err := r.put(ctx, seq, p, true); err != nil {
		cancel()
		release()
		unreserve()
		r.wg.Done()
		return "", err
	}
	r.cfg.Logger.Info("tailor: backtest started", "id", id, "segment", req.Segment, "by", req.By, "profiles", p.Total)
	go func() {
		defer r.wg.Done()
		defer close(res.done)
		defer cancel()
		p := r.pass(pctx, seq, holder, req, p)
		release()
		r.mu.Lock()
		r.run = nil
		r.mu.Unlock()
		switch {
		case p.Error != "":
			r.cfg.Logger.Warn("tailor: backtest failed", "id", id, "segment", req.Segment, "err", p.Error)
		case p.Canceled:
			r.cfg.Logger.Info("tailor: backtest canceled", "id", id, "segment", req.Segment, "done", p.Done)
		default:
			r.cfg.Logger.Info("tailor: backtest done", "id", id, "segment", req.Segment, "profiles", p.Done,
				"members", p.Result.Members, "took", p.Finished.Sub(p.Started).Round(time.Millisecond))
		}
	}()
	return id, nil
}

// busy returns the error of a Start refused: the backtest id (or the
// latest one) runs.
func (r *Runner) busy(ctx context.Context, id string) error {
	var p Progress
	var err error
	if id != "" {
		p, err = r.Progress(ctx, id)
	} else {
		p, err = r.Last(ctx)
	}
	if err != nil || !p.Running() {
		// Its progress is not written yet, or it just ended.
		return fmt.Errorf("%w: try again in a moment", ErrBusy)
	}
	total := "?"
	if p.Total > 0 {
		total = strconv.FormatInt(p.Total, 10)
	}
	by := ""
	if p.By != "" {
		by = " by " + p.By
	}
	return fmt.Errorf("%w: backtest %s of segment %q, started%s on %s %s ago, has read %d of %s profiles",
		ErrBusy, p.ID, p.Segment, by, p.Holder, time.Since(p.Started).Round(time.Second), p.Done, total)
}

// Progress returns the progress of the backtest id, as the store (or,
// without documents, this Runner) keeps it. A progress that its instance
// stopped writing (the instance died) is read as failed.
func (r *Runner) Progress(ctx context.Context, id string) (Progress, error) {
	seq, ok := parseID(id)
	if !ok {
		return Progress{}, fmt.Errorf("%w: %q is not a backtest id", ErrNotFound, id)
	}
	if r.docs == nil {
		r.mu.Lock()
		p, ok := r.mem[id]
		r.mu.Unlock()
		if !ok {
			return Progress{}, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return p, nil
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	data, err := r.docs.Document(sctx, progressDocument(seq))
	cancel()
	if errors.Is(err, store.ErrNotFound) {
		return Progress{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Progress{}, fmt.Errorf("backtest: reading the progress of %s: %w", id, err)
	}
	var p Progress
	if err := json.Unmarshal(data, &p); err != nil {
		return Progress{}, fmt.Errorf("backtest: document %s: %w", progressDocument(seq), err)
	}
	if p.ID != id {
		return Progress{}, fmt.Errorf("%w: %s is older than the last %d backtests", ErrNotFound, id, Keep)
	}
	if p.Running() && time.Since(p.Updated) > leaseTTL {
		p.Finished = p.Updated
		p.Error = fmt.Sprintf("abandoned: its instance %s stopped at %s", p.Holder, p.Updated.Format(time.RFC3339))
	}
	return p, nil
}

// Last returns the progress of the latest backtest; ErrNotFound if none
// ran.
func (r *Runner) Last(ctx context.Context) (Progress, error) {
	if r.docs == nil {
		r.mu.Lock()
		id := r.last
		r.mu.Unlock()
		if id == "" {
			return Progress{}, fmt.Errorf("%w: none ran", ErrNotFound)
		}
		return r.Progress(ctx, id)
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	data, err := r.docs.Document(sctx, LastDocument)
	cancel()
	if errors.Is(err, store.ErrNotFound) {
		return Progress{}, fmt.Errorf("%w: none ran", ErrNotFound)
	}
	if err != nil {
		return Progress{}, fmt.Errorf("backtest: reading %s: %w", LastDocument, err)
	}
	return r.Progress(ctx, string(data))
}

// Cancel stops the backtest id, from any instance: the pass stops after
// its current page, and its progress says Canceled. Canceling a backtest
// that finished does nothing. Without documents, only a backtest of this
// Runner can be canceled.
func (r *Runner) Cancel(ctx context.Context, id string) error {
	p, err := r.Progress(ctx, id)
	if err != nil {
		return err
	}
	r.mu.Lock()
	var local context.CancelFunc
	if r.run != nil && r.run.id == id {
		local = r.run.cancel
	}
	r.mu.Unlock()
	if local != nil {
		local()
	}
	if !p.Running() || r.docs == nil {
		return nil
	}
	seq, _ := parseID(id)
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := r.docs.PutDocument(sctx, cancelDocument(seq), []byte(id)); err != nil {
		return fmt.Errorf("backtest: writing the cancel of %s: %w", id, err)
	}
	return nil
}

// Close cancels the backtest this Runner runs, if any, and waits for its
// pass to write its progress and release the lease. Start then returns
// ErrClosed. The store stays open.
func (r *Runner) Close() error {
	r.mu.Lock()
	r.closed = true
	var cancel context.CancelFunc
	if r.run != nil {
		cancel = r.run.cancel
	}
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	r.wg.Wait()
	return nil
}

// Ids are "<seq>-<random>": the sequence number picks the documents the
// backtest is kept in, reused every Keep backtests.
func parseID(id string) (uint64, bool) {
	s, _, ok := strings.Cut(id, "-")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	return seq, err == nil
}

func progressDocument(seq uint64) string { return fmt.Sprintf("tailor/backtest/%d", seq%Keep) }
func cancelDocument(seq uint64) string   { return fmt.Sprintf("tailor/backtest/%d/cancel", seq%Keep) }

// nextSeq returns the sequence number of a new backtest: one more than the
// latest's. Start calls it under the lease, so that no other instance
// picks the same number.
func (r *Runner) nextSeq(ctx context.Context) (uint64, error) {
	if r.docs == nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.seq++
		return r.seq, nil
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	data, err := r.docs.Document(sctx, LastDocument)
	cancel()
	if errors.Is(err, store.ErrNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("backtest: reading %s: %w", LastDocument, err)
	}
	seq, ok := parseID(string(data))
	if !ok {
		return 1, nil // not ours: start again
	}
	return seq + 1, nil
}

// put keeps p, the progress of backtest seq, where every instance reads
// it; first also makes it the latest.
func (r *Runner) put(ctx context.Context, seq uint64, p Progress, first bool) error {
	if r.docs == nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.mem[p.ID] = p
		if first {
			r.last = p.ID
			for id := range r.mem {
				if s, _ := parseID(id); s+Keep <= seq {
					delete(r.mem, id)
				}
			}
		}
		return nil
	}
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("backtest: encoding the progress of %s: %w", p.ID, err)
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := r.docs.PutDocument(sctx, progressDocument(seq), data); err != nil {
		return fmt.Errorf("backtest: writing the progress of %s: %w", p.ID, err)
	}
	if first {
		if err := r.docs.PutDocument(sctx, LastDocument, []byte(p.ID)); err != nil {
			return fmt.Errorf("backtest: writing %s: %w", LastDocument, err)
		}
	}
	return nil
}

// canceled reports whether the cancel flag of backtest seq names id.
func (r *Runner) canceled(ctx context.Context, seq uint64, id string) (bool, error) {
	if r.docs == nil {
		return false, nil
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	data, err := r.docs.Document(sctx, cancelDocument(seq))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return string(data) == id, nil
}
