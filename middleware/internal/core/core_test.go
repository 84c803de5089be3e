package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware/internal/cookie"
	"github.com/tailorhq/tailor/middleware/internal/reqfacts"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

const browserUA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

// wait is how long a test waits for something that happens in the
// background: long, so that a busy machine does not fail it.
const wait = 10 * time.Second

// newCore returns a Core over st with the defaults package middleware
// sets, closed when the test ends.
func newCore(t *testing.T, st store.Store) *Core {
	t.Helper()
	key := func(b byte) []byte { return []byte(fmt.Sprintf("%032d", b)) }
	cookies := cookie.New(cookie.Config{Name: "tailor", MaxAge: 400 * 24 * time.Hour,
		Keys: []cookie.Key{{Hash: key(1), Block: key(2)}}})
	t.Cleanup(cookies.Close)
	eng, err := rules.NewEngine(rules.Segment{Name: "buyer", Rule: rules.EventCount("buy", 1)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{
		Store: st, Engine: eng, Cookies: cookies, CookieMaxAge: 400 * 24 * time.Hour,
		VisitTimeout: 30 * time.Minute, FlushInterval: time.Second, FlushBatch: 500,
		MaxPending: 100_000, StoreTimeout: 5 * time.Second, LoadTimeout: 250 * time.Millisecond,
		Freshness: time.Second, CacheBytes: 64 << 20, Retention: -1,
		IsBot:   reqfacts.IsBot,
		Consent: func(*http.Request) Consent { return ConsentFull },
		Logger:  slog.New(slog.DiscardHandler),
		Now:     time.Now,
		Hooks: Hooks{
			WantsSegments: func() bool { return false },
			SegmentChange: func(SegmentChange) {},
			WantsTiming:   func() bool { return false },
			Classified:    func(time.Duration) {},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// flaky is a store whose next writes fail: fails counts them down. With
// lostAck, a failing write is applied before it fails, as when the
// store's acknowledgement is lost.
type flaky struct {
	*memory.Store
	// The segment jobs' writes would take the failures meant for the
	// flushes: no recheck index, so no jobs.
	store.Rechecker // nil: hides memory.Store.Due (an ambiguous selector)
	fails           atomic.Int32
	lostAck         bool
	writes          atomic.Int32 // writes tried
}

var errFlaky = errors.New("flaky: write failed")

func newFlaky(fails int, lostAck bool) *flaky {
	f := &flaky{Store: memory.New(store.Limits{}), lostAck: lostAck}
	f.fails.Store(int32(fails))
	return f
}

func (f *flaky) fail() bool {
	f.writes.Add(1)
	return f.fails.Add(-1) >= 0
}

func (f *flaky) Apply(ctx context.Context, id string, evs []store.Event) (*store.Profile, error) {
	if f.fail() {
		if f.lostAck {
			f.Store.Apply(ctx, id, evs)
		}
		return nil, errFlaky
	}
	return f.Store.Apply(ctx, id, evs)
}

func (f *flaky) ApplyBatch(ctx context.Context, bs []store.Batch) ([]*store.Profile, error) {
	if f.fail() {
		if f.lostAck {
			f.Store.ApplyBatch(ctx, bs)
		}
		return nil, errFlaky
	}
	return f.Store.ApplyBatch(ctx, bs)
}

// request returns a browser's request for path, with the cookie c if not
// nil.
func request(path string, c *http.Cookie) *http.Request {
	r := httptest.NewRequest("GET", path, nil)
	r.Header.Set("User-Agent", browserUA)
	if c != nil {
		r.AddCookie(c)
	}
	return r
}

// newVisitor returns the Visit of a new visitor, and the cookie it got.
func newVisitor(t *testing.T, c *Core) (*Visit, *http.Cookie) {
	t.Helper()
	v := new(Visit)
	r := request("/", nil)
	c.Lookup(r, v, true)
	if !v.Tracked || !v.New || v.ID() == "" {
		t.Fatalf("Lookup of a new browser: tracked %v, new %v, id %q", v.Tracked, v.New, v.ID())
	}
	ck, err := c.cfg.Cookies.Cookie(cookie.ID{Visitor: v.ID(), User: v.UserID()}, nil, r, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	return v, ck
}

// returning returns the Visit of the request of a visitor who comes back
// with cookie ck, after Begin, with the visitor's profile in the cache.
func returning(t *testing.T, c *Core, ck *http.Cookie) *Visit {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		v := new(Visit)
		c.Begin(request("/again", ck), v)
		if !v.Tracked || v.New {
			t.Fatalf("Begin with a cookie: tracked %v, new %v", v.Tracked, v.New)
		}
		// The cache may refuse a Set: come back until it keeps the state.
		if c.Cached(v.bind().pid) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("profile %s not cached after %v of requests", v.bind().pid, wait)
		}
	}
}

func track(name string) store.Event {
	return store.Event{Type: store.TypeTrack, Name: name}
}

// flushAll flushes until nothing is left unacknowledged, within wait.
func flushAll(t *testing.T, c *Core) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := c.Flush(context.Background())
		if err == nil && c.Unacked() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d events unacknowledged after %v (last flush: %v)", c.Unacked(), wait, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// load returns the stored profile id, failing the test if there is none.
func load(t *testing.T, st store.Store, id string) *store.Profile {
	t.Helper()
	p, err := st.Load(context.Background(), id)
	if err != nil {
		t.Fatalf("Load(%s): %v", id, err)
	}
	return p
}

func TestRecordFlushOnce(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		fails   int
		lostAck bool
	}{
		{"store answers", 0, false},
		{"store fails twice", 2, false},
		{"store applies but the answer is lost twice", 2, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := newFlaky(tt.fails, tt.lostAck)
			c := newCore(t, st)
			v, _ := newVisitor(t, c)
			c.Record(v, track("buy"))
			c.Record(v, store.Event{Type: store.TypePage, Path: "/first"}) // travels in the cookie
			if got := c.PendingFor(v.ID()); got != 1 {
				t.Errorf("PendingFor = %d, want the track event only", got)
			}
			flushAll(t, c)
			if n := st.writes.Load(); n < int32(tt.fails)+1 {
				t.Errorf("%d writes, want at least %d", n, tt.fails+1)
			}
			prof := load(t, st, v.ID())
			if prof.Counts["buy"] != 1 || prof.Counts["page"] != 0 {
				t.Errorf("stored counts %v, want buy once and no page", prof.Counts)
			}
			// More flushes write nothing again.
			flushAll(t, c)
			if prof := load(t, st, v.ID()); prof.Counts["buy"] != 1 {
				t.Errorf("after another flush, buy counted %d times", prof.Counts["buy"])
			}
			if got := c.Counters().Flushed.Load(); got != 1 {
				t.Errorf("Flushed = %d, want 1", got)
			}
			if got := c.Counters().FlushErrors.Load(); got < uint64(tt.fails) {
				t.Errorf("FlushErrors = %d, want at least %d", got, tt.fails)
			}
			// The cached profile, if any, is the stored one.
			if p := c.Profile(v); p.Counts["buy"] != 1 {
				t.Errorf("Profile counts %v, want buy once", p.Counts)
			}
		})
	}
}

// TestRecordReturning records for a visitor who came back: the first page
// view the cookie carried is recorded once, and the profile built from the
// store with what is pending.
func TestRecordReturning(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	c := newCore(t, st)
	v, ck := newVisitor(t, c)
	c.Record(v, track("buy"))
	flushAll(t, c)
	w := returning(t, c, ck)
	if w.ID() != v.ID() {
		t.Fatalf("returning visitor %q, want %q", w.ID(), v.ID())
	}
	if !slices.Equal(w.Segments, []string{"buyer"}) {
		t.Errorf("Segments = %v, want [buyer]", w.Segments)
	}
	c.Record(w, track("buy"))
	if p := c.Profile(w); p.Counts["buy"] != 2 {
		t.Errorf("Profile before the flush: buy %d, want 2", p.Counts["buy"])
	}
	flushAll(t, c)
	if p := load(t, st, v.ID()); p.Counts["buy"] != 2 {
		t.Errorf("stored buy %d, want 2", p.Counts["buy"])
	}
}

// linked returns a visitor with a stored profile, cached, linked to the
// user "u1", and the store.
func linked(t *testing.T) (*Core, *memory.Store, *Visit) {
	t.Helper()
	st := memory.New(store.Limits{})
	c := newCore(t, st)
	v0, ck := newVisitor(t, c)
	c.Record(v0, track("buy"))
	flushAll(t, c)
	v := returning(t, c, ck)
	c.Record(v, track("viewed_pricing")) // pending when linked
	if err := c.Link(context.Background(), []LinkReq{{From: v.ID(), UserID: "u1", At: time.Now()}}); err != nil {
		t.Fatalf("Link: %v", err)
	}
	return c, st, v
}

func TestLinkMergesOnce(t *testing.T) {
	t.Parallel()
	c, st, v := linked(t)
	// A second link of the same visitor, and the merge event once more as
	// another instance would queue it: merged once all the same.
	if err := c.Link(context.Background(), []LinkReq{{From: v.ID(), UserID: "u1", At: time.Now()}}); err != nil {
		t.Fatalf("second Link: %v", err)
	}
	frozen := load(t, st, v.ID())
	c.RecordTo("user:u1", store.Event{ID: mergeID(v.ID()), Type: store.TypeMerge, Time: time.Now(), Merge: frozen})
	flushAll(t, c)

	if frozen.MergedInto != "user:u1" {
		t.Fatalf("visitor's MergedInto = %q, want user:u1", frozen.MergedInto)
	}
	user := load(t, st, "user:u1")
	if !slices.Equal(user.Aliases, []string{v.ID()}) {
		t.Errorf("user's Aliases = %v, want [%s]", user.Aliases, v.ID())
	}
	if user.Counts["buy"] != 1 || user.Counts["viewed_pricing"] != 1 {
		t.Errorf("user's counts %v, want buy and viewed_pricing once", user.Counts)
	}
	if got := c.Counters().Merges.Load(); got < 1 {
		t.Errorf("Merges = %d, want at least 1", got)
	}
	// Linking a user's profile into the visitor merged into it is a cycle.
	if err := c.Link(context.Background(), []LinkReq{{From: "user:u1", UserID: "u1"}}); err != nil {
		t.Errorf("Link of a profile into itself: %v", err)
	}
	if err := c.Link(context.Background(), []LinkReq{{From: "user:u2", UserID: "u1"}}); err != nil {
		t.Fatalf("Link u2 into u1: %v", err)
	}
	flushAll(t, c)
	if err := c.Link(context.Background(), []LinkReq{{From: "user:u1", UserID: "u2"}}); !errors.Is(err, ErrCycle) {
		t.Errorf("Link u1 into u2 after u2 into u1: %v, want ErrCycle", err)
	}
}

func TestRecordToFrozenForwards(t *testing.T) {
	t.Parallel()
	c, st, v := linked(t)
	flushAll(t, c)
	// The visitor's state is cached frozen (refreshed by the link's write),
	// unless the cache dropped it: bring it back.
	pid := v.ID()
	deadline := time.Now().Add(wait)
	for !c.Cached(pid) {
		c.state(context.Background(), pid)
		if time.Now().After(deadline) {
			t.Fatalf("frozen profile %s not cached after %v", pid, wait)
		}
	}
	if into := c.mergedInto(pid, c.state(context.Background(), pid)); into != "user:u1" {
		t.Fatalf("cached visitor merged into %q, want user:u1", into)
	}
	late := track("late")
	late.ID = "other:7"
	c.RecordTo(pid, late)
	if n := c.PendingFor(pid); n != 0 {
		t.Errorf("%d events pending for the frozen profile, want 0", n)
	}
	if got := c.queue.Get("user:u1"); len(got) != 1 || got[0].ID != forwardID(pid, "other:7") {
		t.Errorf("pending for the user: %v, want the forward of other:7", got)
	}
	// Forwarded again (a client's retry), it counts once.
	c.RecordTo(pid, late)
	flushAll(t, c)
	if u := load(t, st, "user:u1"); u.Counts["late"] != 1 {
		t.Errorf("user's late count %d, want 1", u.Counts["late"])
	}
	if p := load(t, st, pid); p.Counts["late"] != 0 {
		t.Errorf("frozen profile counts late %d times, want 0", p.Counts["late"])
	}
	if got := c.Counters().Forwarded.Load(); got < 1 {
		t.Errorf("Forwarded = %d, want at least 1", got)
	}
}

func TestForgetVisitor(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	c := newCore(t, st)
	v0, ck := newVisitor(t, c)
	c.Record(v0, track("buy"))
	flushAll(t, c)
	v := returning(t, c, ck)
	id := v.ID()
	c.Queue(id, store.Event{ID: "x:1", Type: store.TypeTrack, Name: "pending", Time: time.Now()})
	if err := c.Forget(context.Background(), id); err != nil {
		t.Fatalf("Forget: %v", err)
	}
	if c.Cached(id) {
		t.Error("still cached after Forget")
	}
	if n := c.PendingFor(id); n != 0 {
		t.Errorf("%d events pending after Forget", n)
	}
	if _, err := st.Load(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load after Forget: %v, want ErrNotFound", err)
	}
	// Nothing recorded for it reaches the store; its cookie is refused.
	c.Record(v, track("after"))
	flushAll(t, c)
	if _, err := st.Load(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load after recording for a forgotten visitor: %v, want ErrNotFound", err)
	}
	w := new(Visit)
	c.Begin(request("/", ck), w)
	if w.Tracked || !w.ExpireCookie {
		t.Errorf("forgotten visitor's next request: tracked %v, expire cookie %v; want untracked, cookie expired", w.Tracked, w.ExpireCookie)
	}
	if got := c.Counters().Forgotten.Load(); got < 1 {
		t.Errorf("Forgotten = %d, want at least 1", got)
	}
}

func TestForgetUser(t *testing.T) {
	t.Parallel()
	c, st, v := linked(t)
	flushAll(t, c)
	if err := c.Forget(context.Background(), "u1"); err != nil {
		t.Fatalf("Forget: %v", err)
	}
	for _, id := range []string{"user:u1", v.ID()} {
		if _, err := st.Load(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Load(%s) after Forget of the user: %v, want ErrNotFound", id, err)
		}
		if c.Cached(id) || c.PendingFor(id) != 0 {
			t.Errorf("%s: cached %v, %d pending after Forget", id, c.Cached(id), c.PendingFor(id))
		}
	}
}

func TestCloseWritesPending(t *testing.T) {
	t.Parallel()
	st := newFlaky(2, false)
	c := newCore(t, st)
	now := time.Now()
	c.Queue("v1", store.Event{ID: "x:1", Type: store.TypeTrack, Name: "buy", Time: now},
		store.Event{ID: "x:2", Type: store.TypeTrack, Name: "buy", Time: now})
	c.Queue("v2", store.Event{ID: "x:3", Type: store.TypeTrack, Name: "buy", Time: now})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if p := load(t, st, "v1"); p.Counts["buy"] != 2 {
		t.Errorf("v1 buy %d, want 2", p.Counts["buy"])
	}
	if p := load(t, st, "v2"); p.Counts["buy"] != 1 {
		t.Errorf("v2 buy %d, want 1", p.Counts["buy"])
	}
	if n := c.Unacked(); n != 0 {
		t.Errorf("%d events unacknowledged after Close", n)
	}
	if err := c.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCloseGivesUp checks that Close returns, with an error naming what
// was not written, when the store keeps failing until ctx is done.
func TestCloseGivesUp(t *testing.T) {
	t.Parallel()
	st := newFlaky(1<<30, false)
	c := newCore(t, st)
	c.Queue("v1", store.Event{ID: "x:1", Type: store.TypeTrack, Name: "buy", Time: time.Now()})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := c.Close(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errFlaky) {
		t.Fatalf("Close = %v, want the store's error and the deadline", err)
	}
	if n := c.Unacked(); n != 1 {
		t.Errorf("%d events unacknowledged, want 1", n)
	}
}

// TestDocumentAnnouncementNotAProfile checks that the store's announcement
// of a document put, whose Change has no profile id, leaves every cached
// profile as it is: the empty id included, which a careless reading of
// the Change would take for a profile's.
func TestDocumentAnnouncementNotAProfile(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	c := newCore(t, st)
	<-c.Ready()
	heard := make(map[string]func() bool)
	for _, id := range []string{"", "visitor", "after"} {
		h, ok := c.Listen(id)
		if !ok {
			t.Skipf("the cache refused the state of %q", id)
		}
		heard[id] = h
	}
	if err := st.PutDocument(context.Background(), "visitor", []byte(`{"segments":[]}`)); err != nil {
		t.Fatal(err)
	}
	// Announcements come in order: once the write of "after" is heard,
	// the document's has been too.
	if _, err := st.Apply(context.Background(), "after", []store.Event{track("buy")}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(wait); !heard["after"](); {
		if time.Now().After(deadline) {
			t.Fatal("the write of another profile was not heard")
		}
		time.Sleep(time.Millisecond)
	}
	for _, id := range []string{"", "visitor"} {
		if heard[id]() {
			t.Errorf("cached state of %q marked stale by the announcement of a document", id)
		}
	}
}
