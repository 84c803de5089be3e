package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

func privacyEngine(t testing.TB) *rules.Engine {
	e, err := rules.NewEngine(
		rules.Segment{Name: "newsletter-reader", Priority: 20, Rule: rules.Contextual(rules.Context{Source: []string{"newsletter"}})},
		rules.Segment{Name: "returning", Priority: 10, Rule: rules.Visits(1)},
	)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestConsent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		hook     func(*http.Request) middleware.Consent
		header   map[string]string
		consent  middleware.Consent
		tracked  bool
		segments string
	}{
		{"default", nil, nil, middleware.ConsentFull, true, "newsletter-reader"},
		{"GPC", nil, map[string]string{"Sec-GPC": "1"}, middleware.ConsentContextual, false, "newsletter-reader"},
		{"DNT", nil, map[string]string{"DNT": "1"}, middleware.ConsentContextual, false, "newsletter-reader"},
		{"DNT 0", nil, map[string]string{"DNT": "0"}, middleware.ConsentFull, true, "newsletter-reader"},
		{"hook: none", func(*http.Request) middleware.Consent { return middleware.ConsentNone }, nil, middleware.ConsentNone, false, ""},
		{"hook: contextual", func(*http.Request) middleware.Consent { return middleware.ConsentContextual }, nil, middleware.ConsentContextual, false, "newsletter-reader"},
		{"hook overrides GPC", func(*http.Request) middleware.Consent { return middleware.ConsentFull }, map[string]string{"Sec-GPC": "1"}, middleware.ConsentFull, true, "newsletter-reader"},
		{"hook defers", func(*http.Request) middleware.Consent { return middleware.ConsentDefault }, map[string]string{"Sec-GPC": "1"}, middleware.ConsentContextual, false, "newsletter-reader"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := memory.New(store.Limits{})
			p := newP(t, st, func(c *middleware.Config) { c.Consent, c.Engine = tc.hook, privacyEngine(t) })
			var got *middleware.Visitor
			h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = middleware.FromContext(r.Context())
			}))
			var ck []*http.Cookie
			for i := range 3 {
				r := httptest.NewRequest("GET", "/?utm_source=newsletter", nil)
				r.Header.Set("User-Agent", browserUA)
				for k, v := range tc.header {
					r.Header.Set(k, v)
				}
				for _, c := range ck {
					r.AddCookie(c)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if len(rec.Result().Cookies()) > 0 {
					ck = rec.Result().Cookies()
				}
				if got.Consent() != tc.consent || got.Tracked() != tc.tracked || (got.ID() != "") != tc.tracked {
					t.Fatalf("request %d: consent %v tracked %v id %q", i, got.Consent(), got.Tracked(), got.ID())
				}
				if i == 2 && strings.Join(got.Segments(), " ") != strings.TrimSpace(tc.segments+map[bool]string{true: " returning"}[tc.tracked]) {
					t.Errorf("segments %v", got.Segments())
				}
			}
			if tc.tracked != (len(ck) > 0) {
				t.Errorf("cookies %v", ck)
			}
			p.Flush(context.Background())
			n := 0
			st.Range(context.Background(), func(*store.Profile) bool { n++; return true })
			if tracked := n > 0; tracked != tc.tracked {
				t.Errorf("%d profiles stored", n)
			}
		})
	}
}

// noTrace checks that nothing is left of the profile id.
func noTrace(t *testing.T, p *middleware.Personalizer, st store.Store, id string) {
	t.Helper()
	if _, err := st.Load(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: in the store: %v", id, err)
	}
	if _, err := p.Profile(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: Profile: %v", id, err)
	}
	if middleware.PendingFor(p, id) != 0 {
		t.Errorf("%s: events pending", id)
	}
}

func TestWithdrawingConsentErases(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	gpc := false
	p := newP(t, st, func(c *middleware.Config) {
		c.Consent = func(r *http.Request) middleware.Consent {
			if gpc {
				return middleware.ConsentContextual
			}
			return middleware.ConsentFull
		}
	})
	h := p.Handler(echo)
	rec := serve(h, "GET", "/", browserUA)
	id, _, _ := strings.Cut(rec.Body.String(), " ")
	rec = serve(h, "GET", "/", browserUA, rec.Result().Cookies()...)
	ck := rec.Result().Cookies()
	serve(h, "GET", "/a", browserUA, ck...) // pending
	p.Flush(context.Background())
	serve(h, "GET", "/b", browserUA, ck...) // pending, not flushed
	if _, err := st.Load(context.Background(), id); err != nil {
		t.Fatal(err)
	}

	gpc = true
	rec = serve(h, "GET", "/c", browserUA, ck...)
	if got := rec.Result().Cookies(); len(got) != 1 || got[0].MaxAge >= 0 || got[0].Value != "" {
		t.Fatalf("the cookie was not deleted: %v", got)
	}
	if body := rec.Body.String(); body != "" {
		t.Errorf("an untracked visitor got id %q", body)
	}
	middleware.WaitBackground(p)
	p.Flush(context.Background())
	noTrace(t, p, st, id)
	// The old cookie is gone for good here, even with consent again.
	gpc = false
	rec = serve(h, "GET", "/d", browserUA, ck...)
	if got := rec.Result().Cookies(); len(got) != 1 || got[0].MaxAge >= 0 {
		t.Errorf("cookies %v", got)
	}
	p.Flush(context.Background())
	noTrace(t, p, st, id)
}

// pendingVisitor makes a returning visitor through h, with a stored
// profile, a cached state and events pending.
func pendingVisitor(t *testing.T, p *middleware.Personalizer, h http.Handler) (id string, ck []*http.Cookie) {
	t.Helper()
	rec := serve(h, "GET", "/", browserUA)
	id, _, _ = strings.Cut(rec.Body.String(), " ")
	ck = serve(h, "GET", "/", browserUA, rec.Result().Cookies()...).Result().Cookies()
	p.Flush(context.Background())
	serve(h, "GET", "/pending?cat=red-sox", browserUA, ck...)
	if !middleware.Cached(p, id) || middleware.PendingFor(p, id) == 0 {
		t.Fatal("setup: not cached or nothing pending")
	}
	return id, ck
}

func TestForgetVisitor(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	p := newP(t, st, nil)
	h := p.Handler(echo)
	id, ck := pendingVisitor(t, p, h)
	if err := p.Forget(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	noTrace(t, p, st, id)
	if middleware.Cached(p, id) {
		t.Error("still cached")
	}
	// The next response deletes the cookie, and records nothing.
	rec := serve(h, "GET", "/again", browserUA, ck...)
	if got := rec.Result().Cookies(); len(got) != 1 || got[0].MaxAge >= 0 {
		t.Errorf("cookies %v", got)
	}
	p.Flush(context.Background())
	noTrace(t, p, st, id)
	if p.Stats().Forgotten == 0 {
		t.Error("not counted")
	}
	if err := p.Forget(context.Background(), ""); !errors.Is(err, store.ErrInvalidID) {
		t.Errorf("Forget(\"\"): %v", err)
	}
}

// TestForgetOnAnotherInstance: Forget on instance A reaches instance B
// through the store's deletion announcement: B drops its cached copy and
// the events it holds pending, writes nothing for the visitor afterwards,
// and deletes their cookie.
func TestForgetOnAnotherInstance(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	a, b := newP(t, st, nil), newP(t, st, nil)
	hb := b.Handler(echo)
	id, ck := pendingVisitor(t, b, hb)
	if err := a.Forget(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	// The memory store announces synchronously: B has heard.
	if middleware.Cached(b, id) || middleware.PendingFor(b, id) != 0 {
		t.Fatal("B still holds the visitor")
	}
	b.Flush(context.Background())
	noTrace(t, b, st, id)
	rec := serve(hb, "GET", "/again", browserUA, ck...)
	if got := rec.Result().Cookies(); len(got) != 1 || got[0].MaxAge >= 0 {
		t.Errorf("B's cookies %v, want the cookie deleted", got)
	}
	b.Flush(context.Background())
	noTrace(t, b, st, id)

	// An expired profile is not erased: its visitor is still welcome.
	rec = serve(hb, "GET", "/", browserUA)
	other, _, _ := strings.Cut(rec.Body.String(), " ")
	ck = serve(hb, "GET", "/", browserUA, rec.Result().Cookies()...).Result().Cookies()
	b.Flush(context.Background())
	if n, err := st.Expire(context.Background(), time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("Expire: %d, %v", n, err)
	}
	if rec = serve(hb, "GET", "/", browserUA, ck...); len(rec.Result().Cookies()) != 0 || !strings.HasPrefix(rec.Body.String(), other) {
		t.Errorf("after an expiry: cookies %v, body %q", rec.Result().Cookies(), rec.Body.String())
	}
}

func TestForgetUser(t *testing.T) {
	t.Parallel()
	s := newShop(t, nil, nil)
	a, b := newClient(t, s.srv), newClient(t, s.srv)
	var ids []string
	for _, c := range []*client{a, b} {
		_, body := c.get("/?cat=red-sox")
		id, _, _ := strings.Cut(body, " ")
		ids = append(ids, id)
		c.get("/")
		c.login("gil@example.com")
	}
	s.p.TrackUser(context.Background(), "gil@example.com", "email_clicked", nil)
	s.p.Flush(context.Background())
	a.get("/") // pending
	if err := s.p.Forget(context.Background(), "gil@example.com"); err != nil {
		t.Fatal(err)
	}
	for _, id := range append(ids, "user:gil@example.com") {
		noTrace(t, s.p, s.st, id)
		if middleware.Cached(s.p, id) {
			t.Errorf("%s: cached", id)
		}
	}
	for _, c := range []*client{a, b} {
		resp, body := c.get("/")
		if body != "" || len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 {
			t.Errorf("after Forget: body %q, cookies %v", body, resp.Cookies())
		}
	}
	s.p.Flush(context.Background())
	for _, id := range append(ids, "user:gil@example.com") {
		noTrace(t, s.p, s.st, id)
	}
	// A new visit starts afresh.
	_, body := a.get("/")
	if id, _, _ := strings.Cut(body, " "); id == "" || id == ids[0] {
		t.Errorf("new visit: %q", body)
	}
}

func TestRetention(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	c := newClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	p := newP(t, st, func(cfg *middleware.Config) { cfg.Now = c.Now })
	ctx := context.Background()
	p.TrackUser(ctx, "old", "x", nil)
	c.AddDate(1, 0, 0)
	p.TrackUser(ctx, "recent", "x", nil)
	p.Flush(ctx)
	c.AddDate(0, 2, 0) // 14 months after "old", 2 after "recent"
	n, err := middleware.Expire(p, ctx)
	if err != nil || n != 1 {
		t.Fatalf("expired %d, %v", n, err)
	}
	if _, err := st.Load(ctx, "user:old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old: %v", err)
	}
	if _, err := st.Load(ctx, "user:recent"); err != nil {
		t.Errorf("recent: %v", err)
	}
	if p.Stats().Expired != 1 {
		t.Errorf("stats %+v", p.Stats())
	}
	// Negative keeps profiles forever.
	q := newP(t, st, func(cfg *middleware.Config) { cfg.Now, cfg.Retention = c.Now, -1 })
	c.AddDate(10, 0, 0)
	if n, err := middleware.Expire(q, ctx); n != 0 || err != nil {
		t.Errorf("expired %d %v", n, err)
	}
}

// TestRetentionTrimsJournal: the retention job trims the journal of the
// purchases journaled more than JournalRetention ago, which nothing else
// trims without a Follower, whatever Retention says; a negative
// JournalRetention leaves the journal alone.
func TestRetentionTrimsJournal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	order := map[string]any{"products": []any{map[string]any{"product_id": "cap", "price": 5, "quantity": 1}}}
	journaled := func(st *memory.Store) int {
		t.Helper()
		ps, _, err := st.Purchases(ctx, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(ps)
	}
	for _, c := range []struct {
		name                        string
		retention, journalRetention time.Duration
		trimmed                     bool
	}{
		{"defaults", 0, 0, true},
		{"profiles kept forever", -1, 0, true},
		{"journal left alone", 0, -1, false},
	} {
		st := memory.New(store.Limits{})
		clock := newClock(time.Now()) // the journal's times are the store's clock
		p := newP(t, st, func(cfg *middleware.Config) {
			cfg.Now, cfg.Retention, cfg.JournalRetention = clock.Now, c.retention, c.journalRetention
		})
		if err := p.TrackUser(ctx, "buyer", "Order Completed", order); err != nil {
			t.Fatal(err)
		}
		p.Flush(ctx)
		if n := journaled(st); n != 1 {
			t.Fatalf("%s: %d purchases journaled, want 1", c.name, n)
		}
		clock.AddDate(0, 0, 29)
		if ran, _, err := middleware.Retain(p, ctx); !ran || err != nil {
			t.Fatalf("%s: retention ran %v, %v", c.name, ran, err)
		}
		if n := journaled(st); n != 1 {
			t.Fatalf("%s: 29 days after: %d purchases journaled, want 1", c.name, n)
		}
		clock.AddDate(0, 0, 2)
		if ran, n, err := middleware.Retain(p, ctx); !ran || n != 0 || err != nil {
			t.Fatalf("%s: retention ran %v, expired %d, %v; want it to run and expire nothing", c.name, ran, n, err)
		}
		want := 1
		if c.trimmed {
			want = 0
		}
		if n := journaled(st); n != want {
			t.Fatalf("%s: 31 days after: %d purchases journaled, want %d", c.name, n, want)
		}
		if _, err := st.Load(ctx, "user:buyer"); err != nil {
			t.Fatalf("%s: the buyer's profile: %v", c.name, err)
		}
	}
}

// blockingStore holds its first ApplyBatch that only (if set) selects
// until release is closed, to put an erasure in the middle of a write.
type blockingStore struct {
	*memory.Store
	only             func([]store.Batch) bool
	entered, release chan struct{}
	once             sync.Once
}

// writes returns a filter for newBlockingStore: writes holding an event
// of type typ.
func writes(typ string) func([]store.Batch) bool {
	return func(bs []store.Batch) bool {
		for _, b := range bs {
			for _, e := range b.Events {
				if e.Type == typ {
					return true
				}
			}
		}
		return false
	}
}

func newBlockingStore(st *memory.Store, only func([]store.Batch) bool) *blockingStore {
	return &blockingStore{Store: st, only: only, entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *blockingStore) ApplyBatch(ctx context.Context, bs []store.Batch) ([]*store.Profile, error) {
	if s.only == nil || s.only(bs) {
		s.once.Do(func() {
			close(s.entered)
			<-s.release
		})
	}
	return s.Store.ApplyBatch(ctx, bs)
}

// TestForgetDuringAWrite: an instance whose write of a visitor's events is
// under way when the visitor is erased on another instance deletes the
// profile again once its write is done.
func TestForgetDuringAWrite(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	bst := newBlockingStore(st, nil)
	a := newP(t, st, nil)
	b := newP(t, bst, func(c *middleware.Config) { c.WriteBehind.FlushInterval = time.Hour })
	hb := b.Handler(echo)
	rec := serve(hb, "GET", "/", browserUA)
	id, _, _ := strings.Cut(rec.Body.String(), " ")
	serve(hb, "GET", "/", browserUA, rec.Result().Cookies()...) // pending on b
	flushed := make(chan error, 1)
	go func() { flushed <- b.Flush(context.Background()) }()
	<-bst.entered // b's write has taken the visitor's events
	if err := a.Forget(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	close(bst.release)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	noTrace(t, b, st, id)
}

// TestForgetDuringAMerge: a visitor erased on another instance while this
// one merges their profile into a user's (they signed in) is deleted again,
// and nothing of theirs reaches the user's profile.
func TestForgetDuringAMerge(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	bst := newBlockingStore(st, writes(store.TypeAlias))
	a := newP(t, st, nil)
	b := newShop(t, bst, func(c *middleware.Config) { c.WriteBehind.FlushInterval = time.Hour })
	c := newClient(t, b.srv)
	_, body := c.get("/?cat=red-sox")
	id, _, _ := strings.Cut(body, " ")
	c.get("/?cat=red-sox")
	signedIn := make(chan struct{})
	go func() {
		defer close(signedIn)
		c.login("zoe@example.com")
	}()
	<-bst.entered // b is writing the alias of the visitor
	if err := a.Forget(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	close(bst.release)
	<-signedIn
	b.p.Flush(context.Background())
	if _, err := st.Load(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the erased visitor is in the store: %v", err)
	}
	if u, err := st.Load(context.Background(), "user:zoe@example.com"); err == nil && (u.Counts["page"] > 0 || u.Categories["red-sox"] > 0) {
		t.Errorf("the erased visitor's views reached the user's profile: %v %v", u.Counts, u.Categories)
	}
}

// TestForgetUserDuringASignInElsewhere: a user erased on instance A while
// instance B signs a visitor in as them is erased with that visitor, also
// when the erasure reaches B before B has queued the merge (it is then
// dropped) or while B is writing it.
func TestForgetUserDuringASignInElsewhere(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		block string
	}{
		{"before the merge is queued", store.TypeAlias},
		{"while the merge is written", store.TypeMerge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := memory.New(store.Limits{})
			bst := newBlockingStore(st, writes(tc.block))
			a := newP(t, st, nil)
			b := newShop(t, bst, func(c *middleware.Config) { c.WriteBehind.FlushInterval = time.Hour })
			ctx := context.Background()
			if err := a.TrackUser(ctx, "kim@example.com", "email_opened", nil); err != nil {
				t.Fatal(err)
			}
			if err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			c := newClient(t, b.srv)
			_, body := c.get("/?cat=red-sox")
			id, _, _ := strings.Cut(body, " ")
			c.get("/?cat=red-sox")
			signedIn := make(chan struct{})
			go func() {
				defer close(signedIn)
				c.login("kim@example.com")
			}()
			<-bst.entered
			if err := a.Forget(ctx, "kim@example.com"); err != nil {
				t.Fatal(err)
			}
			close(bst.release)
			<-signedIn
			for range 3 {
				if err := b.p.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			middleware.WaitBackground(b.p)
			for _, pid := range []string{id, "user:kim@example.com"} {
				if prof, err := st.Load(ctx, pid); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("%s is stored after the user's erasure: %v %v, merged into %q", pid, prof.Counts, prof.Categories, prof.MergedInto)
				}
			}
		})
	}
}

// TestForgetUserWithAStaleCopy: Forget finds every visitor merged into the
// user as the store has it, also when the instance that runs it holds an
// older copy of the user's profile (the announcement of the merge has not
// reached it yet).
func TestForgetUserWithAStaleCopy(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	one := newShop(t, st, nil)
	// Instance two hears of no change, and keeps what it cached for an hour.
	two := newP(t, &failing{Store: st}, func(c *middleware.Config) { c.Cache.Freshness = time.Hour })
	ctx := context.Background()
	if err := two.TrackUser(ctx, "lee@example.com", "email_opened", nil); err != nil {
		t.Fatal(err)
	}
	if err := two.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := two.Profile(ctx, "user:lee@example.com"); err != nil { // cached
		t.Fatal(err)
	}
	c := newClient(t, one.srv)
	_, body := c.get("/?cat=red-sox")
	id, _, _ := strings.Cut(body, " ")
	c.get("/?cat=red-sox")
	c.login("lee@example.com")
	if err := one.p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := two.Forget(ctx, "lee@example.com"); err != nil {
		t.Fatal(err)
	}
	for _, pid := range []string{id, "user:lee@example.com"} {
		if prof, err := st.Load(ctx, pid); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s is stored after the user's erasure: %v %v", pid, prof.Counts, prof.Categories)
		}
	}
}

// TestRetentionRunsOnOneInstance: of the instances that share a store,
// only the holder of the retention lease expires profiles; when it stops,
// another takes over.
func TestRetentionRunsOnOneInstance(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	c := newClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	p, err := middleware.New(middleware.Config{Keys: []middleware.KeyPair{testKeys}, Store: st, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	q := newP(t, st, func(cfg *middleware.Config) { cfg.Now = c.Now })
	ctx := context.Background()
	p.TrackUser(ctx, "old", "x", nil)
	p.Flush(ctx)
	c.AddDate(2, 0, 0)
	if ran, n, err := middleware.Retain(p, ctx); !ran || n != 1 || err != nil {
		t.Fatalf("first instance: ran %v, expired %d, %v; want it to take the lease and expire 1", ran, n, err)
	}
	if ran, _, err := middleware.Retain(q, ctx); ran || err != nil {
		t.Fatalf("second instance: ran %v, %v; want it to leave retention to the lease holder", ran, err)
	}
	if ran, _, _ := middleware.Retain(p, ctx); !ran {
		t.Fatal("the holder could not renew its lease")
	}
	if err := p.Close(ctx); err != nil { // releases the lease
		t.Fatal(err)
	}
	if ran, _, err := middleware.Retain(q, ctx); !ran || err != nil {
		t.Fatalf("after the holder stopped: ran %v, %v; want the second instance to take over", ran, err)
	}
}
