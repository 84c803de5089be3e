package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// Tests of the data core under the patterns real sites produce: identify
// on every login, many browsers per user, several instances.

// TestForgetReachesEveryAlias: erasing a user erases every visitor ever
// merged into them, not only the newest Limits.Aliases.
func TestForgetReachesEveryAlias(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	p := newP(t, st, nil)
	ctx := context.Background()
	var ids []string
	for i := range store.DefaultLimits.Aliases + 1 {
		id := fmt.Sprintf("%032x", i+1)
		ids = append(ids, id)
		storedVisitorOf(t, p, st, id, "/", "bob")
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Forget(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	for _, id := range append(ids, "user:bob") {
		if prof, err := st.Load(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s is still stored after Forget(bob): %+v", id, prof)
		}
	}
}

// storedVisitorOf stores a visitor id with a view of path, and merges it
// into the user's profile through p.
func storedVisitorOf(t *testing.T, p *middleware.Personalizer, st store.Store, id, path, user string) {
	t.Helper()
	ctx := context.Background()
	if _, err := st.Apply(ctx, id, []store.Event{{ID: "#v", Type: store.TypePage, Path: path, Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if err := p.Alias(ctx, id, user); err != nil {
		t.Fatal(err)
	}
}

// recorder collects segment changes.
type recorder struct {
	mu sync.Mutex
	cs []middleware.SegmentChange
}

func (r *recorder) add(c middleware.SegmentChange) {
	r.mu.Lock()
	r.cs = append(r.cs, c)
	r.mu.Unlock()
}

func (r *recorder) all() []middleware.SegmentChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.cs)
}

// TestSegmentChangeAcrossInstances: a purchase recorded through B puts the
// visitor into "customer" on their next page, served by A, whose cached
// state was rebuilt from the store: the entry is reported once, by one
// instance, and never again, whoever serves next.
func TestSegmentChangeAcrossInstances(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	var ra, rb recorder
	mux := func(p *middleware.Personalizer) http.Handler {
		m := http.NewServeMux()
		m.HandleFunc("/buy", func(w http.ResponseWriter, r *http.Request) {
			middleware.FromContext(r.Context()).Purchase(store.Item{ID: "moneyball", Price: 10})
		})
		m.Handle("/", echo)
		return p.Handler(m)
	}
	a := newP(t, st, nil)
	a.Observe(middleware.Observer{SegmentChange: ra.add})
	b := newP(t, st, nil)
	b.Observe(middleware.Observer{SegmentChange: rb.add})
	ha, hb := mux(a), mux(b)
	rec := serve(ha, "GET", "/", browserUA)
	id, _, _ := strings.Cut(rec.Body.String(), " ")
	ck := rec.Result().Cookies()
	serve(ha, "GET", "/", browserUA, ck...) // returns: kept
	serve(hb, "GET", "/buy", browserUA, ck...)
	flush := func() {
		t.Helper()
		for _, p := range []*middleware.Personalizer{a, b} {
			if err := p.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	flush()
	middleware.Evict(a, id) // also holds when A's copy was evicted
	if got := serve(ha, "GET", "/", browserUA, ck...).Body.String(); !strings.Contains(got, "customer") {
		t.Fatalf("A serves %q", got)
	}
	flush()
	for range 3 {
		serve(hb, "GET", "/", browserUA, ck...)
		serve(ha, "GET", "/", browserUA, ck...)
		flush()
	}
	all := append(ra.all(), rb.all()...)
	if len(all) != 1 || fmt.Sprint(all[0].Entered) != "[customer]" || all[0].VisitorID != id {
		t.Fatalf("changes reported: A %+v, B %+v", ra.all(), rb.all())
	}
	if len(ra.all()) != 1 {
		t.Errorf("the change was reported by B, which did not classify it: %+v", rb.all())
	}
}

// TestIdentifyWhileTracking: identify events are never lost to the user's
// other events taking sequence ids concurrently.
func TestIdentifyWhileTracking(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	p := newP(t, st, func(c *middleware.Config) { c.WriteBehind.FlushInterval = 5 * time.Millisecond })
	const users = 150
	var wg sync.WaitGroup
	sent := make([]int, users)
	for i := range users {
		user := fmt.Sprintf("u%d", i)
		done := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(done)
			r := httptest.NewRequest("POST", "/login", nil)
			r.Header.Set("User-Agent", browserUA)
			// On a starved machine a slow load can make the store look
			// failing for a moment: the merge is then queued, which is
			// not a loss.
			if err := p.Identify(httptest.NewRecorder(), r, user, nil); err != nil && !errors.Is(err, middleware.ErrMergeQueued) {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			for n := 0; n < 200; n++ {
				select {
				case <-done:
					if n > 0 {
						return
					}
				default:
				}
				if err := p.TrackUser(context.Background(), user, "email_opened", nil); err != nil {
					t.Error(err)
				}
				sent[i]++
			}
		}()
	}
	wg.Wait()
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for i := range users {
		u, err := st.Load(context.Background(), fmt.Sprintf("user:u%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if u.Counts["identify"] != 1 || u.Counts["email_opened"] != sent[i] {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d users lost events", lost, users)
	}
}

// TestEventsRacingASignIn: events recorded for a visitor while they sign in
// all reach the user's profile, whether they were written before the alias
// (merged) or after it (forwarded).
func TestEventsRacingASignIn(t *testing.T) {
	t.Parallel()
	for round := range 20 {
		st := memory.New(store.Limits{})
		p := newP(t, st, func(c *middleware.Config) { c.WriteBehind.FlushInterval = time.Millisecond })
		h := p.Handler(echo)
		rec := serve(h, "GET", "/", browserUA)
		id, _, _ := strings.Cut(rec.Body.String(), " ")
		ck := rec.Result().Cookies()
		if again := serve(h, "GET", "/", browserUA, ck...).Result().Cookies(); len(again) > 0 {
			ck = again
		}
		const workers = 4
		var wg sync.WaitGroup
		var sent atomic.Int64
		aliased := make(chan struct{})
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; n < 2000; n++ {
					select {
					case <-aliased:
						return
					default:
					}
					r := httptest.NewRequest("GET", "/", nil)
					r.Header.Set("User-Agent", browserUA)
					for _, c := range ck {
						r.AddCookie(c)
					}
					if err := p.VisitorOf(r).Track("click", nil); err != nil {
						t.Error(err)
					}
					sent.Add(1)
				}
			}()
		}
		for sent.Load() < 10 {
			time.Sleep(time.Millisecond)
		}
		if err := p.Alias(context.Background(), id, "carl"); err != nil {
			t.Fatal(err)
		}
		close(aliased)
		wg.Wait()
		// Forwards are queued by the flush that finds the frozen profile.
		for range 3 {
			if err := p.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		u, err := st.Load(context.Background(), "user:carl")
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Counts["click"]; got != int(sent.Load()) {
			t.Fatalf("round %d: %d clicks reached the user, want %d", round, got, sent.Load())
		}
	}
}

// TestCacheMissDuringAFlush: a visitor whose cached state is rebuilt while
// a flush is writing their events still sees those events.
func TestCacheMissDuringAFlush(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	bst := newBlockingStore(st, nil)
	p := newP(t, bst, func(c *middleware.Config) { c.WriteBehind.FlushInterval = time.Hour })
	h := p.Handler(echo)
	rec := serve(h, "GET", "/a", browserUA)
	id, _, _ := strings.Cut(rec.Body.String(), " ")
	ck := rec.Result().Cookies()
	serve(h, "GET", "/b", browserUA, ck...)
	serve(h, "GET", "/c", browserUA, ck...)
	flushed := make(chan error, 1)
	go func() { flushed <- p.Flush(context.Background()) }()
	<-bst.entered // the flush has taken the events, the store has none yet
	middleware.Evict(p, id)
	prof, err := p.Profile(context.Background(), id)
	close(bst.release)
	if err != nil {
		t.Fatal(err)
	}
	if n := prof.Counts["page"]; n != 3 {
		t.Errorf("during the flush the visitor has %d page views, want 3", n)
	}
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	// After the write, the state rebuilt then is complete, not double.
	prof, _ = p.Profile(context.Background(), id)
	if n := prof.Counts["page"]; n != 3 {
		t.Errorf("after the flush %d page views, want 3", n)
	}
}

// failOnce fails its first ApplyBatch, after applying it (a lost
// acknowledgement), when armed.
type failOnce struct {
	*memory.Store
	armed atomic.Bool
}

func (s *failOnce) ApplyBatch(ctx context.Context, bs []store.Batch) ([]*store.Profile, error) {
	if s.armed.CompareAndSwap(true, false) {
		return nil, errors.New("connection reset")
	}
	return s.Store.ApplyBatch(ctx, bs)
}

// TestFailedWriteHidesNoAnnouncement: a write that failed does not leave an
// expected announcement behind that would swallow another instance's.
func TestFailedWriteHidesNoAnnouncement(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	fst := &failOnce{Store: st}
	a := newP(t, st, nil)
	b := newP(t, fst, func(c *middleware.Config) { c.WriteBehind.FlushInterval = time.Hour; c.Cache.Freshness = time.Hour })
	hb := b.Handler(echo)
	rec := serve(hb, "GET", "/", browserUA)
	id, _, _ := strings.Cut(rec.Body.String(), " ")
	ck := rec.Result().Cookies()
	serve(hb, "GET", "/", browserUA, ck...)
	fst.armed.Store(true)
	if err := b.Flush(context.Background()); err == nil {
		t.Fatal("the armed write did not fail")
	}
	// B writes its events again; the store announces that write once, and
	// A's write after it must not be taken for it.
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("User-Agent", browserUA)
	for _, c := range ck {
		r.AddCookie(c)
	}
	if err := a.VisitorOf(r).Track("signed_up", nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	prof, err := b.Profile(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if prof.Counts["signed_up"] != 1 {
		t.Fatalf("B does not see A's write: %v", prof.Counts)
	}
}

// deaf is a store whose announcements are never heard: an instance on it
// stands for one that missed them (it subscribed late, or its subscription
// was reconnecting).
type deaf struct{ store.Store }

// TestErasureWithoutTheAnnouncement: an instance that did not hear an
// erasure neither re-creates the erased profile with the events it held
// nor keeps serving the visitor; the store's tombstone tells it.
func TestErasureWithoutTheAnnouncement(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	a := newP(t, st, nil)
	b := newP(t, deaf{st}, func(c *middleware.Config) { c.WriteBehind.FlushInterval = time.Hour })
	hb := b.Handler(echo)
	rec := serve(hb, "GET", "/", browserUA)
	id, _, _ := strings.Cut(rec.Body.String(), " ")
	ck := rec.Result().Cookies()
	serve(hb, "GET", "/?cat=red-sox", browserUA, ck...)
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	serve(hb, "GET", "/?cat=red-sox", browserUA, ck...) // pending on b only
	if err := a.Forget(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if !middleware.Cached(b, id) || middleware.PendingFor(b, id) == 0 {
		t.Fatal("b heard the erasure: the test needs an instance that did not")
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	noTrace(t, b, st, id)
	got := serve(hb, "GET", "/again", browserUA, ck...)
	if cs := got.Result().Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Errorf("b's cookies %v, want the cookie deleted", cs)
	}
	b.Flush(context.Background())
	noTrace(t, b, st, id)

	// A third instance that never held the visitor learns it on load.
	c := newP(t, deaf{st}, nil)
	got = serve(c.Handler(echo), "GET", "/", browserUA, ck...)
	if cs := got.Result().Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Errorf("c's cookies %v, want the cookie deleted", cs)
	}
	c.Flush(context.Background())
	noTrace(t, c, st, id)
}

// hanging is a store that, while down, answers nothing until the caller's
// deadline, as a server that stopped answering does.
type hanging struct {
	*memory.Store
	down atomic.Bool
}

// wait holds a call while the store is down, until ctx ends or the store
// is back (then the call goes on, as a store that answers again would).
func (h *hanging) wait(ctx context.Context) error {
	for h.down.Load() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

func (h *hanging) Load(ctx context.Context, id string) (*store.Profile, error) {
	if err := h.wait(ctx); err != nil {
		return nil, err
	}
	return h.Store.Load(ctx, id)
}

func (h *hanging) ApplyBatch(ctx context.Context, bs []store.Batch) ([]*store.Profile, error) {
	if err := h.wait(ctx); err != nil {
		return nil, err
	}
	return h.Store.ApplyBatch(ctx, bs)
}

// TestSignInDuringAnOutage: once the store is known to be failing, a
// sign-in does not wait for it; the merge is written when it answers.
func TestSignInDuringAnOutage(t *testing.T) {
	t.Parallel()
	hs := &hanging{Store: memory.New(store.Limits{})}
	p := newP(t, hs, func(c *middleware.Config) {
		c.WriteBehind.FlushInterval = time.Hour // flushed by hand
		c.StoreTimeout = time.Minute
		c.LoadTimeout = 50 * time.Millisecond
	})
	h := p.Handler(echo)
	rec := serve(h, "GET", "/", browserUA)
	id, _, _ := strings.Cut(rec.Body.String(), " ")
	ck := rec.Result().Cookies()
	serve(h, "GET", "/?cat=red-sox", browserUA, ck...)
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs.down.Store(true)
	// A request whose load times out tells the Personalizer the store is down.
	serve(h, "GET", "/", browserUA, rec.Result().Cookies()[:0]...)
	other := serve(h, "GET", "/", browserUA)
	serve(h, "GET", "/", browserUA, other.Result().Cookies()...)
	start := time.Now()
	if err := p.Alias(context.Background(), id, "fay"); err == nil {
		t.Fatal("Alias succeeded with the store down")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Alias waited %v for a store known to be down (StoreTimeout is a minute)", d)
	}
	hs.down.Store(false)
	for range 3 {
		if err := p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	u, err := hs.Store.Load(context.Background(), "user:fay")
	if err != nil || u.Categories["red-sox"] != 1 {
		t.Fatalf("after the outage the user's profile is %v, %v", u, err)
	}
}

// TestForgetFindsMergesHeldForAFrozenProfile: a visitor's merge into u2
// waits in this instance's queue when u2 is aliased to u3 elsewhere; the
// frozen u2 does not list the visitor, yet erasing u3 erases it.
func TestForgetFindsMergesHeldForAFrozenProfile(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	a := newP(t, st, nil)
	b := newP(t, st, func(c *middleware.Config) { c.WriteBehind.FlushInterval = time.Hour })
	ctx := context.Background()
	const v = "0123456789abcdef0123456789abcdef"
	// v signed in as u2 through b: v is frozen, and b holds its merge.
	frozen, err := st.Apply(ctx, v, []store.Event{
		{ID: "#p", Type: store.TypePage, Path: "/", Time: time.Now()},
		{ID: "#a", Type: store.TypeAlias, UserID: "u2", Time: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	middleware.Queue(b, "user:u2", store.Event{ID: "#merge>" + v, Type: store.TypeMerge, Time: time.Now(), Merge: frozen})
	if err := a.Alias(ctx, "u2", "u3"); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil { // u3 lists u2
		t.Fatal(err)
	}
	if err := b.Forget(ctx, "u3"); err != nil {
		t.Fatal(err)
	}
	b.Flush(ctx)
	a.Flush(ctx)
	for _, id := range []string{v, "user:u2", "user:u3"} {
		if prof, err := st.Load(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s is stored after Forget(u3): %+v", id, prof)
		}
	}
}

// lostAck applies an ApplyBatch holding an alias, then reports a timeout,
// as a store whose acknowledgement was lost does, when armed.
type lostAck struct {
	*memory.Store
	armed atomic.Bool
}

func (s *lostAck) ApplyBatch(ctx context.Context, bs []store.Batch) ([]*store.Profile, error) {
	profs, err := s.Store.ApplyBatch(ctx, bs)
	for _, b := range bs {
		for _, e := range b.Events {
			if e.Type == store.TypeAlias && err == nil && s.armed.CompareAndSwap(true, false) {
				return nil, context.DeadlineExceeded
			}
		}
	}
	return profs, err
}

// TestAliasCommittedButNotAcknowledged: a sign-in whose write the store
// committed but did not acknowledge (the visitor's profile is frozen, its
// merge never sent) is completed by the flusher, and the history counts
// once even when the browser signs in again.
func TestAliasCommittedButNotAcknowledged(t *testing.T) {
	t.Parallel()
	st := &lostAck{Store: memory.New(store.Limits{})}
	p := newP(t, st, func(c *middleware.Config) { c.WriteBehind.FlushInterval = time.Hour })
	h := p.Handler(echo)
	rec := serve(h, "GET", "/", browserUA)
	id, _, _ := strings.Cut(rec.Body.String(), " ")
	ck := rec.Result().Cookies()
	serve(h, "GET", "/?cat=red-sox", browserUA, ck...)
	st.armed.Store(true)
	if err := p.Alias(context.Background(), id, "gus"); err == nil {
		t.Fatal("the lost acknowledgement was not reported")
	}
	if v, err := st.Store.Load(context.Background(), id); err != nil || v.MergedInto != "user:gus" {
		t.Fatalf("the store did not commit the alias: %v %v", v, err)
	}
	check := func(when string) {
		t.Helper()
		for range 2 {
			if err := p.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		u, err := st.Store.Load(context.Background(), "user:gus")
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if u.Categories["red-sox"] != 1 || u.Counts["page"] != 2 || !slices.Contains(u.Aliases, id) {
			t.Fatalf("%s, the user's profile: pages %v categories %v aliases %v", when, u.Counts, u.Categories, u.Aliases)
		}
	}
	check("after the flushes")
	if err := p.Alias(context.Background(), id, "gus"); err != nil {
		t.Fatal(err)
	}
	check("after signing in again")
}
