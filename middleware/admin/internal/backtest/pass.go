package backtest

import (
	"cmp"
	"context"
	"fmt"
	"hash/maphash"
	"runtime"

	"github.com/tailorhq/tailor/internal/parallel"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// pass reads every profile, page by page, and returns the progress it
// ended with, written where every instance reads it.
func (r *Runner) pass(ctx context.Context, seq uint64, holder string, req Request, p Progress) Progress {
	sh := newShared(req, store.LimitsOf(r.cfg.Store))
	evs := make([]*evaluator, runtime.GOMAXPROCS(0))
	for i := range evs {
		evs[i] = sh.evaluator()
	}
	page := min(r.cfg.Page, max(1, r.cfg.Rate/4)) // a page takes at least a quarter of a second
	every := r.every
	start := time.Now()
	renewed, written := start, start
	cursor := ""
	var failure error
	for {
		if ctx.Err() != nil {
			p.Canceled = true
			break
		}
		pageStart := time.Now()
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		profs, next, err := r.sc.Scan(sctx, cursor, page)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				p.Canceled = true
			} else {
				failure = fmt.Errorf("reading the profiles after the first %d: %w", p.Done, err)
			}
			break
		}
		// The profiles of the page, split between the evaluators: the
		// evaluation costs more than the read.
		chunk := (len(profs) + len(evs) - 1) / len(evs)
		parallel.For(len(evs), func(w int) {
			for _, prof := range profs[min(w*chunk, len(profs)):min((w+1)*chunk, len(profs))] {
				evs[w].add(prof)
			}
		})
		p.Done += int64(len(profs))
		p.Total = max(p.Total, p.Done)
		cursor = next
		if next == "" {
			break
		}
		// The pace: at most Rate profiles a second.
		if d := time.Duration(float64(len(profs))/float64(r.cfg.Rate)*float64(time.Second)) - time.Since(pageStart); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		now := time.Now()
		p.Rate = float64(p.Done) / now.Sub(start).Seconds()
		if r.leaser != nil && now.Sub(renewed) >= renewEvery {
			sctx, cancel := context.WithTimeout(ctx, storeTimeout)
			held, err := r.leaser.Lease(sctx, LeaseName, holder, leaseTTL)
			cancel()
			switch {
			case err == nil && !held:
				failure = fmt.Errorf("lost the lease %s to another instance", LeaseName)
			case err == nil:
				renewed = now
			case ctx.Err() != nil:
			case now.Sub(renewed) > leaseTTL-2*renewEvery:
				failure = fmt.Errorf("renewing the lease %s: %w", LeaseName, err)
			default: // try again after the next page
				r.cfg.Logger.Warn("tailor: backtest: renewing the lease failed; retrying", "id", p.ID, "err", err)
			}
			if failure != nil {
				break
			}
		}
		if now.Sub(written) >= every {
			p.Updated = now
			if err := r.put(ctx, seq, p, false); err != nil && ctx.Err() == nil {
				failure = err
				break
			}
			written = now
		}
		if r.afterPage != nil {
			r.afterPage(p)
		}
		stop, err := r.canceled(ctx, seq, p.ID)
		if err != nil && ctx.Err() == nil {
			failure = fmt.Errorf("reading the cancel flag: %w", err)
			break
		}
		if stop {
			p.Canceled = true
			break
		}
	}
	p.Finished = time.Now()
	p.Updated = p.Finished
	if el := p.Finished.Sub(start).Seconds(); el > 0 {
		p.Rate = float64(p.Done) / el
	}
	switch {
	case failure != nil:
		p.Error = failure.Error()
		p.Canceled = false
	case !p.Canceled:
		for _, o := range evs[1:] {
			evs[0].merge(o)
		}
		p.Result = evs[0].result()
	}
	// The last write must land even when the pass was canceled.
	wctx, cancel := context.WithTimeout(context.Background(), 2*storeTimeout)
	defer cancel()
	if err := r.put(wctx, seq, p, false); err != nil {
		r.cfg.Logger.Warn("tailor: backtest: writing its end failed", "id", p.ID, "err", err)
	}
	return p
}

// shared is what the evaluators of a pass share: read only.
type shared struct {
	req     Request
	lim     store.Limits // of the store, to fold events again
	deps    rules.Dependencies
	explain *rules.Engine // of the draft, for the samples' explanations
	pub     *rules.Engine // of the published set, nil without
	pubAt   map[string]int
	weeks   []time.Time // the history's past weeks, oldest first
	seed    maphash.Seed
}

// evaluator accumulates a part of a backtest's Result, one profile at a
// time: a pass has one per CPU, each used by one goroutine at a time,
// merged at the end.
type evaluator struct {
	*shared
	overlap []Overlap
	counts  []int64 // members at each of weeks

	members, scanned, errors int64
	partial                  int64 // profiles whose ring lost events (see history)
	lastErr                  string
	// samples are the members of least rank (a hash of their id): a
	// uniform random choice, whatever the order of the profiles and
	// however they are split between evaluators. Sorted by rank.
	samples []ranked
	evs     []store.Event // scratch
	ids     []string      // event ids for folding again, in order
}

type ranked struct {
	rank uint64
	s    Sample
}

func newShared(req Request, lim store.Limits) *shared {
	sh := &shared{req: req, lim: lim, explain: &rules.Engine{}, seed: maphash.MakeSeed()}
	sh.deps, _ = req.Draft.SegmentDependencies(req.Segment)
	sh.explain.Load(req.Draft)
	if req.Published != nil && req.Published.Len() > 0 {
		sh.pub = &rules.Engine{}
		sh.pub.Load(req.Published)
		sh.pubAt = map[string]int{}
		for i, s := range req.Published.Segments() {
			sh.pubAt[s.Name] = i
		}
	}
	if sh.deps.Time {
		for w := req.Weeks; w > 0; w-- {
			sh.weeks = append(sh.weeks, req.Now.Add(-time.Duration(w)*7*24*time.Hour))
		}
	}
	return sh
}

func (sh *shared) evaluator() *evaluator {
	e := &evaluator{shared: sh, counts: make([]int64, len(sh.weeks))}
	if sh.pub != nil {
		for _, s := range sh.req.Published.Segments() {
			e.overlap = append(e.overlap, Overlap{Segment: s.Name})
		}
	}
	return e
}

// add evaluates one stored profile.
func (e *evaluator) add(prof *store.Profile) {
	if prof == nil || prof.MergedInto != "" {
		return // counted in the profile it was merged into
	}
	e.scanned++
	now := e.req.Now
	in, err := e.req.Draft.Member(&rules.Input{Profile: prof, Now: now}, e.req.Segment)
	if err != nil {
		e.errors++
		e.lastErr = err.Error()
	}
	if in {
		e.members++
		e.sample(prof)
	}
	if e.pub != nil {
		segs, _ := e.pub.Reclassify(prof, prof.Segments, now)
		for _, s := range segs {
			if i, ok := e.pubAt[s]; ok {
				e.overlap[i].Size++
				if in {
					e.overlap[i].Both++
				}
			}
		}
	}
	if len(e.weeks) > 0 {
		e.history(prof)
	}
}

// sample keeps prof, a member, among the samples if its rank is among the
// least.
func (e *evaluator) sample(prof *store.Profile) {
	n := e.req.Samples
	rank := maphash.String(e.seed, prof.ID)
	if len(e.samples) >= n && rank >= e.samples[len(e.samples)-1].rank {
		return
	}
	s := Sample{ID: prof.ID, UserID: userOf(prof)}
	for _, x := range e.explain.Explain(&rules.Input{Profile: prof, Now: e.req.Now}) {
		if x.Segment == e.req.Segment {
			s.Explanation = x
			if x.Err != nil {
				s.Error = x.Err.Error()
			}
			break
		}
	}
	e.samples = insertRanked(e.samples, ranked{rank, s}, n)
}

// insertRanked inserts r into rs, sorted by rank, keeping the n least.
func insertRanked(rs []ranked, r ranked, n int) []ranked {
	i, _ := slices.BinarySearchFunc(rs, r.rank, func(a ranked, rank uint64) int { return cmp.Compare(a.rank, rank) })
	rs = slices.Insert(rs, i, r)
	if len(rs) > n {
		rs = rs[:n]
	}
	return rs
}

// merge adds what o accumulated to e.
func (e *evaluator) merge(o *evaluator) {
	e.members += o.members
	e.scanned += o.scanned
	e.errors += o.errors
	e.partial += o.partial
	if o.lastErr != "" {
		e.lastErr = o.lastErr
	}
	for i := range e.overlap {
		e.overlap[i].Size += o.overlap[i].Size
		e.overlap[i].Both += o.overlap[i].Both
	}
	for i := range e.counts {
		e.counts[i] += o.counts[i]
	}
	for _, r := range o.samples {
		e.samples = insertRanked(e.samples, r, e.req.Samples)
	}
}

// history counts prof in the past weeks it was a member at, evaluated on
// prof as it was then (see the package documentation).
func (e *evaluator) history(prof *store.Profile) {
	evs := e.evs[:0]
	for i := range prof.Recent.Len() {
		evs = append(evs, *prof.Recent.At(i))
	}
	e.evs = evs
	byTime := func(a, b store.Event) int { return a.Time.Compare(b.Time) }
	if !slices.IsSortedFunc(evs, byTime) {
		slices.SortStableFunc(evs, byTime)
	}
	if whole(prof) {
		// The ring holds every event of the profile: fold them again, week
		// by week, into the profile as it was.
		// Ids in time order: the fold skips an event whose producer's
		// sequence number is not above the last it applied.
		for len(e.ids) < len(evs) {
			e.ids = append(e.ids, store.EventID("backtest", uint64(len(e.ids)+1)))
		}
		for i := range evs {
			evs[i].ID = e.ids[i]
		}
		var q *store.Profile
		i := 0
		for k, t := range e.weeks {
			j := i + sort.Search(len(evs)-i, func(n int) bool { return evs[i+n].Time.After(t) })
			switch {
			case j == 0:
				continue // not a visitor yet
			case j == len(evs) && i == 0:
				q = prof // it had done everything already
			case q != prof:
				if q == nil {
					q = store.New(prof.ID)
				}
				q.Apply(e.lim, evs[i:j]...)
			}
			i = j
			if in, _ := e.req.Draft.Member(&rules.Input{Profile: q, Now: t}, e.req.Segment); in {
				e.counts[k]++
			}
		}
		return
	}
	e.partial++
	for k, t := range e.weeks {
		if !prof.FirstSeen.IsZero() && prof.FirstSeen.After(t) {
			continue // not a visitor yet
		}
		n := sort.Search(len(evs), func(i int) bool { return evs[i].Time.After(t) })
		q := prof
		if n < len(evs) || prof.LastSeen.After(t) {
			q = asOf(prof, evs[:n])
		}
		if in, _ := e.req.Draft.Member(&rules.Input{Profile: q, Now: t}, e.req.Segment); in {
			e.counts[k]++
		}
	}
}

// whole reports whether the ring of recent events of p holds every event
// the profile counts, so that folding them again gives the profile back.
func whole(p *store.Profile) bool {
	n := 0
	for _, c := range p.Counts {
		n += c
	}
	return n == p.Recent.Len() && p.Truncated == 0
}

// asOf returns a copy of p whose ring of recent events holds only evs
// (the events at or before a time, oldest first), and whose LastSeen is
// the last of them, or FirstSeen if none: for a profile whose ring lost
// its oldest events, the counters cannot be rewound.
func asOf(p *store.Profile, evs []store.Event) *store.Profile {
	q := *p
	q.Recent = store.Ring{}
	for _, ev := range evs {
		q.Recent.Push(ev, len(evs))
	}
	q.LastSeen = q.FirstSeen
	if len(evs) > 0 {
		q.LastSeen = evs[len(evs)-1].Time
	}
	return &q
}

// result returns what the pass found.
func (e *evaluator) result() *Result {
	res := &Result{Segment: e.req.Segment, Members: e.members, Scanned: e.scanned, Errors: e.errors,
		Overlap: e.overlap}
	for _, r := range e.samples {
		res.Samples = append(res.Samples, r.s)
	}
	slices.SortFunc(res.Samples, func(a, b Sample) int { return cmp.Compare(a.ID, b.ID) })
	if len(e.weeks) > 0 {
		for k, t := range e.weeks {
			res.History = append(res.History, Point{At: t, Members: e.counts[k]})
		}
		res.History = append(res.History, Point{At: e.req.Now, Members: e.members})
		note := "The weekly sizes are estimated from the events each profile keeps (its ring of recent events): " +
			"a profile that keeps all of its events is rebuilt as it was each week."
		if e.partial > 0 {
			note += fmt.Sprintf(" %d profiles have lost their oldest events: for them only the recent events and the time last seen "+
				"are rewound, while their counters over the whole history, visits and traits are today's.", e.partial)
		}
		res.Notes = append(res.Notes, note)
	}
	if e.deps.Request != 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("The rule of %q reads facts of the request (%s), which a backtest has none of: "+
			"it is evaluated as for a request without them.", e.req.Segment, fieldNames(e.deps.Request)))
	}
	if e.errors > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("The rule failed for %d profiles, counted as not members; the last error: %s",
			e.errors, e.lastErr))
	}
	return res
}

func fieldNames(f rules.Fields) string {
	names := []string{"path", "referrer", "utm source", "utm medium", "utm campaign", "device", "country", "new visitor"}
	var out []string
	for i, n := range names {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ", ")
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
