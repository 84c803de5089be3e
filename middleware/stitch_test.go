package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/collect"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// stitchEngine has segments fed by browsing, CRM traits and email events.
func stitchEngine(t testing.TB) *rules.Engine {
	e, err := rules.NewEngine(
		rules.Segment{Name: "crm-opportunity", Priority: 50, Rule: rules.Trait("crm_stage", "opportunity")},
		rules.Segment{Name: "email-clicker", Priority: 45, Rule: rules.EventCount("email_clicked", 1)},
		rules.Segment{Name: "customer", Priority: 40, Rule: rules.Purchased(1)},
		rules.Segment{Name: "red-sox-fan", Priority: 30, Rule: rules.CategoryViews("red-sox", 2)},
		rules.Segment{Name: "returning", Priority: 10, Rule: rules.Visits(2)},
	)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// shop is a test site with sign-in: POST /login with the form field email
// calls Identify.
type shop struct {
	p   *middleware.Personalizer
	st  store.Store
	srv *httptest.Server
}

func newShop(t testing.TB, st store.Store, mod func(*middleware.Config)) *shop {
	t.Helper()
	if st == nil {
		st = memory.New(store.Limits{})
	}
	p := newP(t, st, func(c *middleware.Config) {
		c.Engine = stitchEngine(t)
		c.WriteBehind.FlushInterval = 10 * time.Millisecond
		if mod != nil {
			mod(c)
		}
	})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := p.Identify(w, r, r.FormValue("email"), map[string]any{"plan": "free"}); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.Handle("/", echo)
	srv := httptest.NewServer(withCollector(t, p, collect.Config{WriteKeys: []string{writeKey}}, p.Handler(mux)))
	t.Cleanup(srv.Close)
	return &shop{p: p, st: st, srv: srv}
}

func (c *client) login(email string) *http.Response {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.base+"/login", strings.NewReader(url.Values{"email": {email}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", browserUA)
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// segments returns the segments of the client's next page.
func (c *client) segments() []string {
	c.t.Helper()
	_, body := c.get("/")
	return strings.Fields(body)[1:]
}

func has(segs []string, s string) bool { return slices.Contains(segs, s) }

func TestStitchTwoBrowsers(t *testing.T) {
	t.Parallel()
	s := newShop(t, nil, nil)
	a, b := newClient(t, s.srv), newClient(t, s.srv)

	// Browser A: a Red Sox fan, anonymous.
	_, body := a.get("/?cat=red-sox")
	idA, _, _ := strings.Cut(body, " ")
	a.get("/?cat=red-sox")
	if segs := a.segments(); !has(segs, "red-sox-fan") {
		t.Fatalf("A before sign-in: %v", segs)
	}
	// Browser B: someone new.
	_, body = b.get("/")
	idB, _, _ := strings.Cut(body, " ")
	b.get("/")
	if segs := b.segments(); has(segs, "red-sox-fan") {
		t.Fatalf("B before sign-in: %v", segs)
	}

	// Both sign in as ana.
	if resp := a.login("ana@example.com"); resp.StatusCode != 200 {
		t.Fatalf("login A: %d", resp.StatusCode)
	}
	if segs := a.segments(); !has(segs, "red-sox-fan") || has(segs, "returning") {
		t.Errorf("A after sign-in: %v", segs)
	}
	b.login("ana@example.com")
	// B's next request: the merged profile.
	if segs := b.segments(); !has(segs, "red-sox-fan") {
		t.Errorf("B after sign-in: %v", segs)
	}

	// Each browser keeps its visitor id; both share the user's profile.
	for _, c := range []*client{a, b} {
		_, body := c.get("/")
		if id, _, _ := strings.Cut(body, " "); id != idA && id != idB {
			t.Errorf("visitor id changed: %s", id)
		}
	}
	prof, err := s.p.Profile(context.Background(), "user:ana@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if prof.UserID != "ana@example.com" || !slices.Contains(prof.Aliases, idA) || !slices.Contains(prof.Aliases, idB) {
		t.Errorf("profile %s, aliases %v", prof.UserID, prof.Aliases)
	}
	if string(prof.Trait("plan")) != `"free"` {
		t.Errorf("traits %s", prof.Traits)
	}
	// Pages: A's 3 before sign-in, B's 3, and the 2 + 2 after, all once.
	if err := s.p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	stored, err := s.st.Load(context.Background(), "user:ana@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Counts["page"] != 12 || stored.Categories["red-sox"] != 2 {
		t.Errorf("stored counts %v categories %v", stored.Counts, stored.Categories)
	}
	// The visitors' own profiles are frozen aliases.
	for _, id := range []string{idA, idB} {
		if v, err := s.st.Load(context.Background(), id); err != nil || v.MergedInto != "user:ana@example.com" {
			t.Errorf("visitor %s: %+v %v", id, v, err)
		}
	}
	if st := s.p.Stats(); st.Merges != 2 {
		t.Errorf("merges %d", st.Merges)
	}
}

func TestServerEventsReachTheBrowser(t *testing.T) {
	t.Parallel()
	s := newShop(t, nil, nil)
	a := newClient(t, s.srv)
	a.get("/")
	a.get("/")
	a.login("lead@example.com")
	if segs := a.segments(); has(segs, "crm-opportunity") || has(segs, "email-clicker") {
		t.Fatalf("before: %v", segs)
	}
	// A CRM marks the lead an opportunity; an email tool reports a click.
	if err := s.p.IdentifyUser(context.Background(), "lead@example.com", map[string]any{"crm_stage": "opportunity"}); err != nil {
		t.Fatal(err)
	}
	if err := s.p.TrackUser(context.Background(), "lead@example.com", "email_clicked", map[string]any{"campaign": "spring"}); err != nil {
		t.Fatal(err)
	}
	if segs := a.segments(); !has(segs, "crm-opportunity") || !has(segs, "email-clicker") {
		t.Fatalf("after: %v", segs)
	}
	// Through the collection endpoint too, for another user.
	b := newClient(t, s.srv)
	b.get("/")
	b.login("bo@example.com")
	req, _ := http.NewRequest("POST", s.srv.URL+"/_tailor/v1/identify", strings.NewReader(`{"userId":"bo@example.com","traits":{"crm_stage":"opportunity"}}`))
	req.SetBasicAuth(writeKey, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(resp, err)
	}
	resp.Body.Close()
	if segs := b.segments(); !has(segs, "crm-opportunity") {
		t.Fatalf("after the endpoint: %v", segs)
	}
	// Errors name what is wrong.
	if err := s.p.TrackUser(context.Background(), "", "x", nil); !errors.Is(err, store.ErrInvalidID) {
		t.Errorf("TrackUser without user: %v", err)
	}
	if err := s.p.IdentifyUser(context.Background(), strings.Repeat("x", 300), nil); !errors.Is(err, store.ErrInvalidID) {
		t.Errorf("IdentifyUser with a long id: %v", err)
	}
}

// An identify call from a server, naming the visitor's id as anonymousId,
// merges the visitor whose cookie does not say so yet: its next request
// follows the merge, and its cookie learns the user.
func TestServerIdentifyByAnonymousID(t *testing.T) {
	t.Parallel()
	s := newShop(t, nil, nil)
	a := newClient(t, s.srv)
	_, body := a.get("/?cat=red-sox")
	id, _, _ := strings.Cut(body, " ")
	a.get("/?cat=red-sox")
	s.p.IdentifyUser(context.Background(), "cy", map[string]any{"crm_stage": "opportunity"})

	req, _ := http.NewRequest("POST", s.srv.URL+"/_tailor/v1/identify", strings.NewReader(`{"userId":"cy","anonymousId":"`+id+`"}`))
	req.SetBasicAuth(writeKey, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(resp, err)
	}
	resp.Body.Close()
	resp, body = a.get("/")
	if segs := strings.Fields(body)[1:]; !has(segs, "crm-opportunity") || !has(segs, "red-sox-fan") {
		t.Fatalf("segments %v", segs)
	}
	if len(resp.Cookies()) != 1 {
		t.Fatalf("the cookie was not re-issued with the user")
	}
	// Later events go to the user directly.
	a.get("/?cat=books")
	prof, _ := s.p.Profile(context.Background(), "user:cy")
	if prof.Categories["books"] != 1 || prof.Categories["red-sox"] != 2 {
		t.Errorf("categories %v", prof.Categories)
	}
}

// Another instance that has the visitor cached records page views on the
// visitor's profile before it learns of the merge: they are forwarded to
// the user's profile, and every view counts once.
func TestStitchWindowForwarded(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	one := newShop(t, st, nil)
	// Instance two hears of no change (its store does not announce them),
	// keeps what it cached for an hour, and writes when told to: its
	// views after the sign-in are both written to the frozen visitor and
	// forwarded, whatever the machine's speed.
	two := newShop(t, &failing{Store: st}, func(c *middleware.Config) {
		c.Cache.Freshness = time.Hour
		c.WriteBehind.FlushInterval = time.Hour
	})
	a := newClient(t, one.srv)
	_, body := a.get("/")
	id, _, _ := strings.Cut(body, " ")
	a.get("/")
	cookie := a.c.Jar.Cookies(mustURL(one.srv.URL))
	one.p.Flush(context.Background())

	// The same browser's old cookie on instance two: cached there.
	old := func(path string) {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("User-Agent", browserUA)
		for _, c := range cookie {
			req.AddCookie(c)
		}
		two.srv.Config.Handler.ServeHTTP(httptest.NewRecorder(), req)
	}
	old("/?cat=red-sox")
	two.p.Flush(context.Background())

	a.login("dee@example.com") // on instance one
	// Instance two does not know yet: two more views there.
	old("/?cat=red-sox")
	old("/?cat=red-sox")
	for _, p := range []*middleware.Personalizer{two.p, one.p, two.p, one.p} {
		if err := p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	prof, err := st.Load(context.Background(), "user:dee@example.com")
	if err != nil {
		t.Fatal(err)
	}
	// Views: two on instance one, one on two, the page after sign-in, and
	// the two forwarded.
	if prof.Categories["red-sox"] != 3 || prof.Counts["page"] != 6 {
		t.Errorf("categories %v counts %v", prof.Categories, prof.Counts)
	}
	if n := two.p.Stats().Forwarded; n != 2 {
		t.Errorf("instance two forwarded %d events, want 2", n)
	}
	v, _ := st.Load(context.Background(), id)
	if v.MergedInto == "" || v.Categories["red-sox"] > 1 {
		t.Errorf("visitor %+v", v)
	}
	// And the browser sees all of it, on either instance.
	if segs := a.segments(); !has(segs, "red-sox-fan") {
		t.Errorf("segments %v", segs)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestAnotherUserOnTheSameBrowser(t *testing.T) {
	t.Parallel()
	s := newShop(t, nil, nil)
	a := newClient(t, s.srv)
	a.get("/?cat=red-sox")
	a.get("/?cat=red-sox")
	a.login("first@example.com")
	_, body := a.get("/")
	first, _, _ := strings.Cut(body, " ")
	a.login("second@example.com")
	_, body = a.get("/")
	second, _, _ := strings.Cut(body, " ")
	if first == second {
		t.Error("the second user kept the first's visitor id")
	}
	if segs := strings.Fields(body)[1:]; has(segs, "red-sox-fan") {
		t.Errorf("the second user got the first's history: %v", segs)
	}
	prof, _ := s.p.Profile(context.Background(), "user:second@example.com")
	if !slices.Contains(prof.Aliases, second) {
		t.Errorf("aliases %v", prof.Aliases)
	}
}

func TestAlias(t *testing.T) {
	t.Parallel()
	s := newShop(t, nil, nil)
	ctx := context.Background()
	s.p.TrackUser(ctx, "old-id", "purchase", map[string]any{"products": []any{map[string]any{"id": "x", "price": 2}}})
	if err := s.p.Alias(ctx, "old-id", "new-id"); err != nil {
		t.Fatal(err)
	}
	s.p.TrackUser(ctx, "old-id", "email_opened", nil) // forwarded
	for range 3 {
		s.p.Flush(ctx)
	}
	prof, err := s.st.Load(ctx, "user:new-id")
	if err != nil || prof.Purchases.Count != 1 || prof.Counts["email_opened"] != 1 || !slices.Contains(prof.Aliases, "user:old-id") {
		t.Fatalf("%+v %v", prof, err)
	}
	if err := s.p.Alias(ctx, "", "x"); !errors.Is(err, store.ErrInvalidID) {
		t.Errorf("Alias without previous id: %v", err)
	}
	// Back again would make a cycle: refused.
	if err := s.p.Alias(ctx, "new-id", "old-id"); err == nil || !strings.Contains(err.Error(), "merged into the profile to merge") {
		t.Errorf("Alias back: %v", err)
	}
	if prof, _ := s.p.Profile(ctx, "user:new-id"); prof.MergedInto != "" {
		t.Errorf("new-id merged into %s", prof.MergedInto)
	}
}

// failing is a store whose writes fail while fail is set.
type failing struct {
	store.Store
	fail atomic.Bool
}

var errDown = errors.New("store down")

func (f *failing) Apply(ctx context.Context, id string, evs []store.Event) (*store.Profile, error) {
	if f.fail.Load() {
		return nil, errDown
	}
	return f.Store.Apply(ctx, id, evs)
}

func TestIdentifyWhenTheStoreFails(t *testing.T) {
	t.Parallel()
	st := &failing{Store: memory.New(store.Limits{})}
	s := newShop(t, st, nil)
	a := newClient(t, s.srv)
	a.get("/?cat=red-sox")
	a.get("/?cat=red-sox")
	st.fail.Store(true)
	if resp := a.login("eve@example.com"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if segs := a.segments(); !has(segs, "red-sox-fan") {
		t.Fatalf("the anonymous history is lost: %v", segs)
	}
	st.fail.Store(false)
	if resp := a.login("eve@example.com"); resp.StatusCode != 200 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if segs := a.segments(); !has(segs, "red-sox-fan") {
		t.Fatalf("after sign-in: %v", segs)
	}
}

// Identify outside Handler sets the cookie itself.
func TestIdentifyStandalone(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, func(c *middleware.Config) { c.Engine = stitchEngine(t) })
	login := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := p.Identify(w, r, "fay", nil); err != nil {
			t.Error(err)
		}
	})
	rec := serve(login, "POST", "/login", browserUA)
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v", cookies)
	}
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := middleware.FromContext(r.Context()).UserID(); u != "fay" {
			t.Errorf("user %q", u)
		}
	}))
	serve(h, "GET", "/", browserUA, cookies...)
	if err := p.Identify(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), "", nil); !errors.Is(err, store.ErrInvalidID) {
		t.Errorf("Identify without user id: %v", err)
	}
}

// Track and Page from any handler, with the request's cookie alone.
func TestTrackAndPageFromGo(t *testing.T) {
	t.Parallel()
	s := newShop(t, nil, nil)
	a := newClient(t, s.srv)
	_, body := a.get("/")
	id, _, _ := strings.Cut(body, " ")
	a.get("/")
	jar := a.c.Jar.Cookies(mustURL(s.srv.URL))
	r := httptest.NewRequest("POST", "/api/checkout", nil)
	r.Header.Set("User-Agent", browserUA)
	for _, c := range jar {
		r.AddCookie(c)
	}
	if err := s.p.VisitorOf(r).Track("Order Completed", map[string]any{"products": []any{map[string]any{"product_id": "cap", "price": 5, "quantity": 2}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.p.VisitorOf(r).Page("Pricing", map[string]any{"path": "/pricing", "category": "plans"}); err != nil {
		t.Fatal(err)
	}
	prof, _ := s.p.Profile(context.Background(), id)
	if prof.Purchases.Count != 1 || prof.Purchases.Revenue != 10 || prof.Pages["/pricing"] != 1 || prof.Categories["plans"] != 1 {
		t.Errorf("profile %+v", prof)
	}
	if segs := a.segments(); !has(segs, "customer") {
		t.Errorf("segments %v", segs)
	}
	if err := s.p.VisitorOf(r).Track("", nil); err == nil {
		t.Error("Track without a name")
	}
	if err := s.p.VisitorOf(r).Track("x", map[string]any{"f": func() {}}); err == nil {
		t.Error("Track with properties that do not encode")
	}
	// A request without cookie records nothing.
	if err := s.p.VisitorOf(httptest.NewRequest("GET", "/", nil)).Track("x", nil); err != nil {
		t.Error(err)
	}
}

// A new visitor who signs in through a handler that Handler does not wrap
// keeps its first page view: it is recorded when the visitor comes back,
// in the user's profile.
func TestIdentifyStandaloneKeepsTheFirstView(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	p := newP(t, st, func(c *middleware.Config) { c.Engine = stitchEngine(t) })
	h := p.Handler(echo)
	rec := serve(h, "GET", "/?cat=red-sox", browserUA)
	login := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := p.Identify(w, r, "mo", nil); err != nil {
			t.Error(err)
		}
	})
	ck := serve(login, "POST", "/login", browserUA, rec.Result().Cookies()...).Result().Cookies()
	if len(ck) != 1 {
		t.Fatalf("cookies after the sign-in: %v", ck)
	}
	serve(h, "GET", "/?cat=red-sox", browserUA, ck...)
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	u, err := st.Load(context.Background(), "user:mo")
	if err != nil {
		t.Fatal(err)
	}
	if u.Counts["page"] != 2 || u.Categories["red-sox"] != 2 {
		t.Errorf("the user's profile holds %v %v, want both page views", u.Counts, u.Categories)
	}
}
