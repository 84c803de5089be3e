package backtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/internal/testenv"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/bolt"
	"github.com/tailorhq/tailor/store/memory"
	"github.com/tailorhq/tailor/store/redis"
)

var testNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

const draftFile = `{"segments": [
	{"name": "pricing-curious", "priority": 3, "rule": {"pageVisited": {"path": "/pricing", "min": 2, "within": "7d"}}},
	{"name": "docs-reader", "priority": 2, "rule": {"pageVisited": {"path": "/docs"}}},
	{"name": "hot", "priority": 1, "rule": {"and": [{"inSegment": "pricing-curious"}, {"inSegment": "docs-reader"}]}},
	{"name": "pro", "rule": {"trait": {"path": "plan", "is": "pro"}}}
]}`

const publishedFile = `{"segments": [
	{"name": "docs-reader", "priority": 2, "rule": {"pageVisited": {"path": "/docs"}}},
	{"name": "pricing-curious", "priority": 1, "rule": {"pageVisited": {"path": "/pricing", "min": 3, "within": "7d"}}},
	{"name": "pro", "rule": {"trait": {"path": "plan", "is": "pro"}}}
]}`

func mustParse(t testing.TB, src string) *rules.Set {
	t.Helper()
	s, err := rules.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stores are the stores the tests run on: each returns a new empty store.
var stores = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"memory", func(t *testing.T) store.Store {
		s := memory.New(store.Limits{})
		t.Cleanup(func() { s.Close() })
		return s
	}},
	{"bolt", func(t *testing.T) store.Store {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "tailor.db"), bolt.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
	{"redis", openRedis},
}

// openRedis returns a Redis store under a fresh key prefix, removed at the
// end of the test, or skips t without a server.
func openRedis(t *testing.T) store.Store {
	c, prefix := testenv.RedisPrefix(t, "backtest")
	s, err := redis.New(c, redis.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// visitor is a seeded visitor: its id and its events.
type visitor struct {
	id     string
	events []store.Event
	merged bool
	erased bool
}

// seed fills st with n visitors with page views at random times of the
// last ten weeks (applied out of time order), some with a plan trait, a
// few merged into a user's profile and one erased, and returns them.
func seed(t testing.TB, st store.Store, n int) []visitor {
	t.Helper()
	rng := mrand.New(mrand.NewPCG(1, 2))
	paths := []string{"/pricing", "/pricing", "/docs", "/"}
	seq := uint64(0)
	var vs []visitor
	ctx := context.Background()
	for i := range n {
		v := visitor{id: fmt.Sprintf("v%04d", i)}
		for range 1 + rng.IntN(12) {
			seq++
			ago := time.Duration(rng.Int64N(int64(70 * 24 * time.Hour)))
			v.events = append(v.events, store.Event{ID: store.EventID("test", seq), Type: store.TypePage,
				Path: paths[rng.IntN(len(paths))], Time: testNow.Add(-ago)})
		}
		if i%5 == 0 {
			seq++
			plan := []string{"pro", "free"}[i%2]
			v.events = append(v.events, store.Event{ID: store.EventID("test", seq), Type: store.TypeIdentify,
				Traits: []byte(`{"plan": "` + plan + `"}`), Time: v.events[0].Time})
		}
		if _, err := st.Apply(ctx, v.id, v.events); err != nil {
			t.Fatal(err)
		}
		if i%17 == 3 {
			seq++
			v.merged = true
			if _, err := st.Apply(ctx, v.id, []store.Event{{ID: store.EventID("test", seq), Type: store.TypeAlias,
				UserID: "u" + v.id, Time: testNow.Add(-time.Hour)}}); err != nil {
				t.Fatal(err)
			}
		}
		if i == 7 {
			v.erased = true
			if err := st.Delete(ctx, v.id); err != nil {
				t.Fatal(err)
			}
		}
		vs = append(vs, v)
	}
	return vs
}

// profileOf folds the events of v up to t (all if t is zero) into a new
// profile: nil if none.
func profileOf(v visitor, t time.Time) *store.Profile {
	p := store.New(v.id)
	n := 0
	for _, e := range v.events {
		if t.IsZero() || !e.Time.After(t) {
			p.Apply(store.Limits{}, e)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return p
}

// expected is the backtest's result by brute force: every visitor's
// profile classified with an Engine.
func expected(vs []visitor, draft, published *rules.Set, segment string, weeks int) (members int64, overlap []Overlap, history []Point, live int) {
	de, pe := &rules.Engine{}, &rules.Engine{}
	de.Load(draft)
	pe.Load(published)
	for _, s := range published.Segments() {
		overlap = append(overlap, Overlap{Segment: s.Name})
	}
	for w := weeks; w >= 0; w-- {
		history = append(history, Point{At: testNow.Add(-time.Duration(w) * 7 * 24 * time.Hour)})
	}
	for _, v := range vs {
		if v.erased {
			continue
		}
		live++
		if v.merged {
			continue
		}
		p := profileOf(v, time.Time{})
		in := slices.Contains(de.Classify(&rules.Input{Profile: p, Now: testNow}), segment)
		if in {
			members++
		}
		pub := pe.Classify(&rules.Input{Profile: p, Now: testNow})
		for i := range overlap {
			if slices.Contains(pub, overlap[i].Segment) {
				overlap[i].Size++
				if in {
					overlap[i].Both++
				}
			}
		}
		for i := range history {
			at := history[i].At
			if q := profileOf(v, at); q != nil && slices.Contains(de.Classify(&rules.Input{Profile: q, Now: at}), segment) {
				history[i].Members++
			}
		}
	}
	return members, overlap, history, live
}

func newRunner(t *testing.T, st store.Store, holder string) *Runner {
	t.Helper()
	r, err := New(Config{Store: st, Holder: holder, Rate: 1_000_000, Page: 16, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// wait polls the progress of id until it finished, up to a generous
// deadline.
func wait(t *testing.T, r *Runner, id string) Progress {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		p, err := r.Progress(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Running() {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("backtest %s still running after a minute: %+v", id, p)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// leaseFree reports whether another holder can take the backtest lease.
func leaseFree(t *testing.T, st store.Store) bool {
	t.Helper()
	l := st.(store.Leaser)
	ok, err := l.Lease(context.Background(), LeaseName, "someone-else", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		l.Release(context.Background(), LeaseName, "someone-else")
	}
	return ok
}

// TestResult: the backtest's counts, overlap and history equal those of
// a brute-force classification of the same visitors, on every store; the
// samples are members with their explanation; the lease is released.
func TestResult(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			st := s.open(t)
			vs := seed(t, st, 300)
			draft, published := mustParse(t, draftFile), mustParse(t, publishedFile)
			for _, c := range []struct {
				segment string
				history bool
			}{{"hot", true}, {"pricing-curious", true}, {"pro", false}} {
				r := newRunner(t, st, "a")
				id, err := r.Start(context.Background(), Request{Draft: draft, Segment: c.segment, Published: published,
					Now: testNow, Weeks: 6, Samples: 5, By: "ann@example.com"})
				if err != nil {
					t.Fatal(err)
				}
				p := wait(t, r, id)
				if p.Error != "" || p.Canceled || p.Result == nil {
					t.Fatalf("%s: %+v", c.segment, p)
				}
				res := p.Result
				members, overlap, history, live := expected(vs, draft, published, c.segment, 6)
				if members == 0 || members == res.Scanned {
					t.Fatalf("%s: %d members of %d: the data does not tell in from out", c.segment, members, res.Scanned)
				}
				if res.Members != members {
					t.Errorf("%s: %d members, want %d", c.segment, res.Members, members)
				}
				if p.Done != int64(live) {
					t.Errorf("%s: done %d, want %d stored profiles", c.segment, p.Done, live)
				}
				if want := int64(live - countMerged(vs)); res.Scanned != want {
					t.Errorf("%s: scanned %d, want %d (the merged profiles are skipped)", c.segment, res.Scanned, want)
				}
				if p.By != "ann@example.com" || p.Segment != c.segment || p.Holder != "a" {
					t.Errorf("%s: progress %+v", c.segment, p)
				}
				if !slices.Equal(res.Overlap, overlap) {
					t.Errorf("%s: overlap %+v, want %+v", c.segment, res.Overlap, overlap)
				}
				if !c.history {
					if len(res.History) != 0 {
						t.Errorf("%s: history %+v for a segment that does not depend on the time", c.segment, res.History)
					}
				} else {
					if !slices.EqualFunc(res.History, history, func(a, b Point) bool { return a.At.Equal(b.At) && a.Members == b.Members }) {
						t.Errorf("%s: history %+v, want %+v", c.segment, res.History, history)
					}
					moved := false
					for _, h := range history {
						moved = moved || h.Members != members
					}
					if !moved {
						t.Errorf("%s: the history does not move: %+v", c.segment, history)
					}
				}
				if len(res.Samples) != 5 {
					t.Errorf("%s: %d samples, want 5", c.segment, len(res.Samples))
				}
				de := &rules.Engine{}
				de.Load(draft)
				for _, sm := range res.Samples {
					v := vs[slices.IndexFunc(vs, func(v visitor) bool { return v.id == sm.ID })]
					in := slices.Contains(de.Classify(&rules.Input{Profile: profileOf(v, time.Time{}), Now: testNow}), c.segment)
					if !in || v.merged || v.erased || !sm.Explanation.In || sm.Explanation.Segment != c.segment || len(sm.Explanation.Clauses) == 0 {
						t.Errorf("%s: sample %+v is not a member explained", c.segment, sm)
					}
				}
				if !leaseFree(t, st) {
					t.Errorf("%s: the lease is held after the backtest ended", c.segment)
				}
				if last, err := r.Last(context.Background()); err != nil || last.ID != id {
					t.Errorf("%s: Last = %+v, %v; want %s", c.segment, last, err, id)
				}
			}
		})
	}
}

func countMerged(vs []visitor) int {
	n := 0
	for _, v := range vs {
		if v.merged && !v.erased {
			n++
		}
	}
	return n
}

// blocker holds a pass after its first page until the test lets it go.
type blocker struct {
	at   chan Progress
	goOn chan struct{}
	once atomic.Bool
}

func block(r *Runner) *blocker {
	b := &blocker{at: make(chan Progress), goOn: make(chan struct{})}
	r.every = 0
	r.afterPage = func(p Progress) {
		if b.once.CompareAndSwap(false, true) {
			b.at <- p
			<-b.goOn
		}
	}
	return b
}

// TestCancelAndBusy: while a backtest runs, a second Start, on the same
// instance or another over the same store, is refused with who runs it;
// the other instance reads its progress and cancels it; the pass stops,
// says so, and releases the lease.
func TestCancelAndBusy(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			st := s.open(t)
			seed(t, st, 100)
			ctx := context.Background()
			a, b := newRunner(t, st, "instance-a"), newRunner(t, st, "instance-b")
			hold := block(a)
			req := Request{Draft: mustParse(t, draftFile), Segment: "hot", Now: testNow, By: "ann"}
			id, err := a.Start(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			at := <-hold.at // the pass is held after its first page
			if at.Done != 16 {
				t.Fatalf("held at %+v, want 16 done", at)
			}
			for _, r := range []*Runner{a, b} {
				_, err := r.Start(ctx, req)
				if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), "instance-a") ||
					!strings.Contains(err.Error(), "16 of 93") || !strings.Contains(err.Error(), "ann") {
					t.Errorf("second Start on %s: %v; want ErrBusy naming %s, instance-a, ann and 16 of 93", r.cfg.Holder, err, id)
				}
			}
			p, err := b.Progress(ctx, id)
			if err != nil || !p.Running() || p.Done != 16 || p.Total != 93 || p.Holder != "instance-a" {
				t.Errorf("progress read by another instance: %+v, %v", p, err)
			}
			if last, err := b.Last(ctx); err != nil || last.ID != id {
				t.Errorf("Last on another instance: %+v, %v", last, err)
			}
			if err := b.Cancel(ctx, id); err != nil {
				t.Fatal(err)
			}
			close(hold.goOn)
			p = wait(t, b, id)
			if !p.Canceled || p.Result != nil || p.Error != "" || p.Done != 16 {
				t.Errorf("after cancel: %+v; want canceled after the first page", p)
			}
			a.Close() // waits for the pass to end
			if !leaseFree(t, st) {
				t.Error("the lease is held after the cancel")
			}
			// Another instance may run one now.
			id2, err := b.Start(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if p := wait(t, b, id2); p.Result == nil {
				t.Errorf("the next backtest: %+v", p)
			}
			if err := b.Cancel(ctx, id2); err != nil {
				t.Errorf("canceling a finished backtest: %v", err)
			}
		})
	}
}

// failing is a store whose Scan fails after its first page.
type failing struct {
	store.Store
	scans atomic.Int32
}

func (f *failing) Scan(ctx context.Context, cursor string, max int) ([]*store.Profile, string, error) {
	if f.scans.Add(1) > 1 {
		return nil, "", errors.New("disk on fire")
	}
	return f.Store.(store.Scanner).Scan(ctx, cursor, max)
}
func (f *failing) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	return f.Store.(store.Leaser).Lease(ctx, name, holder, ttl)
}
func (f *failing) Release(ctx context.Context, name, holder string) error {
	return f.Store.(store.Leaser).Release(ctx, name, holder)
}
func (f *failing) Document(ctx context.Context, name string) ([]byte, error) {
	return f.Store.(store.Documents).Document(ctx, name)
}
func (f *failing) PutDocument(ctx context.Context, name string, data []byte) error {
	return f.Store.(store.Documents).PutDocument(ctx, name, data)
}

// TestFailure: a pass that cannot read says why and releases the lease.
func TestFailure(t *testing.T) {
	st := memory.New(store.Limits{})
	defer st.Close()
	seed(t, st, 50)
	r := newRunner(t, &failing{Store: st}, "a")
	id, err := r.Start(context.Background(), Request{Draft: mustParse(t, draftFile), Segment: "hot", Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	p := wait(t, r, id)
	if !strings.Contains(p.Error, "disk on fire") || !strings.Contains(p.Error, "after the first 16") || p.Result != nil || p.Canceled {
		t.Errorf("progress %+v: want the error", p)
	}
	if !leaseFree(t, st) {
		t.Error("the lease is held after the failure")
	}
}

// scanOnly is a store with no ability but Scan: no leases, no documents,
// no counts.
type scanOnly struct{ s *memory.Store }

func (s scanOnly) Load(ctx context.Context, id string) (*store.Profile, error) {
	return s.s.Load(ctx, id)
}
func (s scanOnly) Apply(ctx context.Context, id string, evs []store.Event) (*store.Profile, error) {
	return s.s.Apply(ctx, id, evs)
}
func (s scanOnly) Delete(ctx context.Context, id string) error { return s.s.Delete(ctx, id) }
func (s scanOnly) Close() error                                { return s.s.Close() }
func (s scanOnly) Scan(ctx context.Context, cursor string, max int) ([]*store.Profile, string, error) {
	return s.s.Scan(ctx, cursor, max)
}

// TestWithoutDocuments: without documents nor leases, the progress is
// kept in memory, one backtest runs at a time on the Runner, and Cancel
// stops it; the Runner remembers the last Keep.
func TestWithoutDocuments(t *testing.T) {
	st := scanOnly{memory.New(store.Limits{})}
	defer st.Close()
	vs := seed(t, st, 60)
	ctx := context.Background()
	r := newRunner(t, st, "a")
	hold := block(r)
	draft := mustParse(t, draftFile)
	req := Request{Draft: draft, Segment: "hot", Now: testNow}
	id, err := r.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	<-hold.at
	if _, err := r.Start(ctx, req); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), id) {
		t.Errorf("second Start: %v", err)
	}
	if p, err := r.Progress(ctx, id); err != nil || !p.Running() || p.Total != 16 || p.Remaining() != 0 {
		t.Errorf("progress: %+v, %v (the total is unknown: Done)", p, err)
	}
	if err := r.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	close(hold.goOn)
	if p := wait(t, r, id); !p.Canceled {
		t.Errorf("after cancel: %+v", p)
	}
	r.afterPage = nil
	var ids []string
	for range Keep + 1 {
		id, err := r.Start(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		p := wait(t, r, id)
		if members, _, _, _ := expected(vs, draft, mustParse(t, publishedFile), "hot", 8); p.Result == nil || p.Result.Members != members {
			t.Fatalf("%+v: want %d members", p, members)
		}
		ids = append(ids, id)
	}
	if _, err := r.Progress(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("the first of %d backtests: %v, want ErrNotFound", Keep+2, err)
	}
	if _, err := r.Progress(ctx, ids[len(ids)-Keep]); err != nil {
		t.Errorf("the oldest one kept: %v", err)
	}
}

// TestKeep: the store keeps the last Keep backtests, in Keep documents.
func TestKeep(t *testing.T) {
	st := memory.New(store.Limits{})
	defer st.Close()
	seed(t, st, 3)
	ctx := context.Background()
	r := newRunner(t, st, "a")
	var ids []string
	for range Keep + 2 {
		id, err := r.Start(ctx, Request{Draft: mustParse(t, draftFile), Segment: "pro", Now: testNow})
		if err != nil {
			t.Fatal(err)
		}
		wait(t, r, id)
		ids = append(ids, id)
	}
	for i, id := range ids {
		_, err := r.Progress(ctx, id)
		if old := i < 2; old != errors.Is(err, ErrNotFound) {
			t.Errorf("backtest %d of %d: %v", i+1, len(ids), err)
		}
	}
	if _, err := r.Progress(ctx, "nonsense"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a bad id: %v", err)
	}
	if err := r.Cancel(ctx, ids[0]); !errors.Is(err, ErrNotFound) {
		t.Errorf("cancel of a forgotten backtest: %v", err)
	}
}

// TestAbandoned: a running progress that its instance stopped updating
// reads as failed, and the next Start runs once the lease expired.
func TestAbandoned(t *testing.T) {
	st := memory.New(store.Limits{})
	defer st.Close()
	ctx := context.Background()
	old := time.Now().Add(-time.Hour)
	p := Progress{ID: "41-dead", Segment: "x", Holder: "gone", Started: old, Updated: old, Done: 5, Total: 10}
	r := newRunner(t, st, "a")
	if err := r.put(ctx, 41, p, true); err != nil {
		t.Fatal(err)
	}
	got, err := r.Last(ctx)
	if err != nil || got.Running() || !strings.Contains(got.Error, "abandoned") || !strings.Contains(got.Error, "gone") {
		t.Errorf("abandoned progress: %+v, %v", got, err)
	}
	id, err := r.Start(ctx, Request{Draft: mustParse(t, draftFile), Segment: "pro", Now: testNow})
	if err != nil || !strings.HasPrefix(id, "42-") {
		t.Errorf("Start after an abandoned one: %q, %v; want id 42-…", id, err)
	}
	wait(t, r, id)
}

// TestBadRequests: Start and New say what is wrong.
func TestBadRequests(t *testing.T) {
	st := memory.New(store.Limits{})
	defer st.Close()
	r := newRunner(t, st, "a")
	draft := mustParse(t, draftFile)
	for _, c := range []struct {
		req  Request
		want string
	}{
		{Request{Segment: "hot"}, "Draft is nil"},
		{Request{Draft: draft}, "Segment is empty"},
		{Request{Draft: draft, Segment: "nope"}, `no segment named "nope"`},
		{Request{Draft: draft, Segment: "hot", Weeks: 53}, "Weeks 53"},
		{Request{Draft: draft, Segment: "hot", Samples: -1}, "Samples -1"},
		{Request{Draft: draft, Segment: "hot", By: strings.Repeat("x", 201)}, "By of 201 bytes"},
	} {
		if _, err := r.Start(context.Background(), c.req); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.req, err, c.want)
		}
	}
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "Store is nil") {
		t.Errorf("no store: %v", err)
	}
	if _, err := New(Config{Store: noScan{st}}); err == nil || !strings.Contains(err.Error(), "store.Scanner") {
		t.Errorf("no Scan: %v", err)
	}
	if _, err := New(Config{Store: st, Rate: -1}); err == nil || !strings.Contains(err.Error(), "Rate -1") {
		t.Errorf("negative rate: %v", err)
	}
	r.Close()
	if _, err := r.Start(context.Background(), Request{Draft: draft, Segment: "hot"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v", err)
	}
}

type noScan struct{ store.Store }

// TestNotes: a draft that reads the request, or whose rule fails, says so.
func TestNotes(t *testing.T) {
	st := memory.New(store.Limits{})
	defer st.Close()
	seed(t, st, 20)
	set, err := rules.NewSet(
		rules.Segment{Name: "mobile", Rule: rules.Contextual(rules.Context{Device: []string{"mobile"}})},
		rules.Segment{Name: "broken", Rule: rules.RuleFunc(func(*rules.Input) (bool, error) { return false, errors.New("crm down") })},
	)
	if err != nil {
		t.Fatal(err)
	}
	r := newRunner(t, st, "a")
	for seg, want := range map[string]string{"mobile": "device", "broken": "crm down"} {
		id, err := r.Start(context.Background(), Request{Draft: set, Segment: seg, Now: testNow})
		if err != nil {
			t.Fatal(err)
		}
		p := wait(t, r, id)
		if p.Result == nil || !strings.Contains(strings.Join(p.Result.Notes, "\n"), want) {
			t.Errorf("%s: %+v, want a note with %q", seg, p.Result, want)
		}
		if seg == "broken" && p.Result.Errors != p.Result.Scanned {
			t.Errorf("broken: %d errors of %d", p.Result.Errors, p.Result.Scanned)
		}
	}
}

// TestHistoryLostEvents: for profiles whose ring lost its oldest events,
// the history of a window rule never counts more than the profiles as
// they were, and the notes say how many were only rewound in part.
func TestHistoryLostEvents(t *testing.T) {
	lim := store.Limits{Recent: 4}
	st := memory.New(lim)
	defer st.Close()
	vs := seed(t, st, 200)
	draft := mustParse(t, draftFile)
	r := newRunner(t, st, "a")
	id, err := r.Start(context.Background(), Request{Draft: draft, Segment: "pricing-curious", Now: testNow, Weeks: 6})
	if err != nil {
		t.Fatal(err)
	}
	p := wait(t, r, id)
	if p.Result == nil || len(p.Result.History) != 7 {
		t.Fatalf("%+v", p)
	}
	de := &rules.Engine{}
	de.Load(draft)
	lost, less := 0, false
	for _, v := range vs {
		if !v.erased && !v.merged && len(v.events) > 4 {
			lost++
		}
	}
	for _, h := range p.Result.History[:6] {
		var want int64
		for _, v := range vs {
			if v.erased || v.merged {
				continue
			}
			q := store.New(v.id)
			n := 0
			for _, e := range v.events {
				if !e.Time.After(h.At) {
					q.Apply(lim, e)
					n++
				}
			}
			if n > 0 && slices.Contains(de.Classify(&rules.Input{Profile: q, Now: h.At}), "pricing-curious") {
				want++
			}
		}
		if h.Members > want {
			t.Errorf("at %v: %d members, more than the %d of the profiles as they were", h.At, h.Members, want)
		}
		less = less || h.Members < want
	}
	if !less {
		t.Error("no week undercounted: the test does not lose events")
	}
	if notes := strings.Join(p.Result.Notes, "\n"); !strings.Contains(notes, fmt.Sprintf("%d profiles have lost", lost)) {
		t.Errorf("notes %q: want %d profiles that lost events", notes, lost)
	}
}
