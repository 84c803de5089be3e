package middleware_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tailorhq/tailor/internal/testenv"
	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
	"github.com/tailorhq/tailor/store/postgres"
	"github.com/tailorhq/tailor/store/redis"
)

// TestModel drives two Personalizers, A and B, sharing one store with a
// random interleaving of what a site does — page views and actions of
// browsers that go to either instance, server-side events, sign-ins
// (again and again, and as another user), aliases, erasures, cache
// evictions, flushes, rule reloads, several at once — and checks the store
// and the segment changes reported against a sequential model of what must
// count.
//
// Replay a failure with -model.seed; run longer with -model.ops.
var (
	modelSeed = flag.Uint64("model.seed", 0, "seed of TestModel's operations (0: a new one, printed on failure)")
	modelOps  = flag.Int("model.ops", 300, "operations per store in TestModel")
)

func TestModel(t *testing.T) {
	t.Parallel()
	seed := *modelSeed
	if seed == 0 {
		seed = mrand.Uint64()
	}
	for _, sc := range []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"memory", func(*testing.T) store.Store { return memory.New(store.Limits{}) }},
		{"redis", openRedis},
		{"postgres", openPostgres},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			m := newModel(t, sc.open(t), seed)
			t.Cleanup(func() {
				if t.Failed() {
					m.dumpTrace(sc.name)
					t.Logf("replay with: go test ./middleware -run 'TestModel/%s$' -model.seed=%d -model.ops=%d", sc.name, seed, *modelOps)
				}
			})
			start := time.Now()
			m.run(*modelOps)
			m.finish()
			t.Logf("seed %d: %d operations in %d steps, %v", seed, m.ops, m.step, time.Since(start).Round(time.Millisecond))
		})
	}
}

// openRedis returns a Redis store under a fresh key prefix, removed at the
// end of the test, or skips t without a server.
func openRedis(t *testing.T) store.Store {
	c, prefix := testenv.RedisPrefix(t, "model")
	s, err := redis.New(c, redis.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openPostgres returns a PostgreSQL store on a fresh table, dropped at the
// end of the test, or skips t without a server.
func openPostgres(t *testing.T) store.Store {
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b := make([]byte, 6)
	rand.Read(b)
	table := "tailor_model_" + hex.EncodeToString(b)
	s, err := postgres.New(pool, postgres.Options{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		if testenv.Required() {
			t.Fatal(err)
		}
		t.Skipf("PostgreSQL at %s does not answer: %v", testenv.Postgres(t), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, name := range []string{table, table + "_leases", table + "_counts", table + "_documents", table + "_journal", table + "_journal_head"} {
			if _, err := pool.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
				t.Errorf("drop table %s: %v", name, err)
			}
		}
	})
	t.Cleanup(func() { s.Close() })
	return s
}

// The segment sets that rule reloads switch between: the same segments
// with slightly different thresholds, one added, one dropped.
var modelSets = []string{
	`{"segments": [
		{"name": "big-spender", "priority": 50, "condition": {"purchases.revenue": {"$gte": 100}}},
		{"name": "customer", "priority": 40, "rule": {"purchased": {"min": 1}}},
		{"name": "red-sox-fan", "priority": 30, "rule": {"categoryViews": {"category": "red-sox", "min": 2}}},
		{"name": "clicker", "priority": 20, "rule": {"eventCount": {"name": "click", "min": 2}}}
	]}`,
	`{"segments": [
		{"name": "customer", "priority": 40, "rule": {"purchased": {"min": 1}}},
		{"name": "red-sox-fan", "priority": 30, "rule": {"categoryViews": {"category": "red-sox", "min": 3}}},
		{"name": "clicker", "priority": 20, "rule": {"eventCount": {"name": "click", "min": 1}}},
		{"name": "hat-lover", "priority": 10, "rule": {"categoryViews": {"category": "hats", "min": 1}}}
	]}`,
	`{"segments": [
		{"name": "big-spender", "priority": 50, "condition": {"purchases.revenue": {"$gte": 50}}},
		{"name": "customer", "priority": 40, "rule": {"purchased": {"min": 1}}},
		{"name": "red-sox-fan", "priority": 30, "rule": {"categoryViews": {"category": "red-sox", "min": 2}}},
		{"name": "clicker", "priority": 20, "rule": {"eventCount": {"name": "click", "min": 3}}},
		{"name": "hat-lover", "priority": 10, "rule": {"categoryViews": {"category": "hats", "min": 2}}}
	]}`,
}

// expectSegments is what set v makes of a profile with tally c, sorted.
func expectSegments(v int, c *tally) []string {
	var out []string
	add := func(name string, ok bool) {
		if ok {
			out = append(out, name)
		}
	}
	switch v {
	case 0:
		add("big-spender", c.revenue >= 100)
		add("customer", c.purchases >= 1)
		add("red-sox-fan", c.cats["red-sox"] >= 2)
		add("clicker", c.clicks >= 2)
	case 1:
		add("customer", c.purchases >= 1)
		add("red-sox-fan", c.cats["red-sox"] >= 3)
		add("clicker", c.clicks >= 1)
		add("hat-lover", c.cats["hats"] >= 1)
	case 2:
		add("big-spender", c.revenue >= 50)
		add("customer", c.purchases >= 1)
		add("red-sox-fan", c.cats["red-sox"] >= 2)
		add("clicker", c.clicks >= 3)
		add("hat-lover", c.cats["hats"] >= 2)
	}
	sort.Strings(out)
	return out
}

// tally is what must count in a profile.
type tally struct {
	pages, clicks, purchases, identifies int
	revenue                              float64 // whole numbers: sums are exact
	cats                                 map[string]int
}

func (c *tally) add(o *tally) {
	c.pages += o.pages
	c.clicks += o.clicks
	c.purchases += o.purchases
	c.identifies += o.identifies
	c.revenue += o.revenue
	for k, n := range o.cats {
		c.count(k, n)
	}
}

func (c *tally) count(cat string, n int) {
	if cat == "" {
		return
	}
	if c.cats == nil {
		c.cats = make(map[string]int)
	}
	c.cats[cat] += n
}

func (c *tally) clone() *tally {
	d := *c
	d.cats = nil
	for k, n := range c.cats {
		d.count(k, n)
	}
	return &d
}

func (c *tally) String() string {
	var cats []string
	for _, k := range slices.Sorted(mapKeys(c.cats)) {
		if c.cats[k] != 0 {
			cats = append(cats, fmt.Sprintf("%s:%d", k, c.cats[k]))
		}
	}
	return fmt.Sprintf("pages %d cats %v clicks %d purchases %d revenue %v identifies %d",
		c.pages, cats, c.clicks, c.purchases, c.revenue, c.identifies)
}

func mapKeys(m map[string]int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// tallyOf reads what counted in a stored profile.
func tallyOf(p *store.Profile) *tally {
	c := &tally{pages: p.Counts["page"], clicks: p.Counts["click"], purchases: p.Purchases.Count,
		identifies: p.Counts["identify"], revenue: p.Purchases.Revenue}
	for k, n := range p.Categories {
		c.count(k, n)
	}
	return c
}

// within reports whether c holds at most what o holds, everywhere.
func (c *tally) within(o *tally) bool {
	if c.pages > o.pages || c.clicks > o.clicks || c.purchases > o.purchases || c.identifies > o.identifies || c.revenue > o.revenue {
		return false
	}
	for k, n := range c.cats {
		if n > o.cats[k] {
			return false
		}
	}
	return true
}

func (c *tally) equal(o *tally) bool { return c.within(o) && o.within(c) }

// mprof is the model of one profile.
type mprof struct {
	id      string
	c       tally
	frozen  *tally // what it held when merged; nil while not merged
	into    string // the profile it was merged into
	virtual bool   // the visitor id of a second user on a browser: never stored
	stored  bool   // something was written to it
	erased  int    // the step that erased it, 0 if none
}

// bstate is what a browser's cookie is.
type bstate int

const (
	bNone  bstate = iota // no cookie
	bFirst               // a new visitor's cookie, carrying its first page view
	bKept                // a returning visitor's cookie
	bDead                // the cookie of an erased visitor, not deleted yet
)

func (s bstate) String() string { return [...]string{"none", "first", "kept", "dead"}[s] }

type pageView struct{ path, cat string }

// mbrowser is one browser: its cookie jar and what the model knows of it.
type mbrowser struct {
	n       int
	jar     *cookiejar.Jar
	st      bstate
	vid     string    // its visitor id; "" when unknown (a standalone sign-in)
	pending *mprof    // the profile of an unknown vid, registered when learned
	user    string    // the user it identified as
	first   *pageView // the first page view its cookie carries
	retired bool      // no more operations but the final requests
}

// muser is a user of the site.
type muser struct {
	name    string
	retired bool // erased or done: no more operations name it
}

// instance is one Personalizer of the site.
type instance struct {
	name   string
	p      *middleware.Personalizer
	engine *rules.Engine
	h      http.Handler // the site, wrapped by Handler
	login  http.Handler // a sign-in handler not wrapped by Handler
	rec    recorder     // segment changes reported
}

var siteURL = mustURL("http://shop.example/")

// barrierID is the profile that barrier writes.
const barrierID = "~barrier"

type model struct {
	t       *testing.T
	rng     *mrand.Rand
	st      *tapStore
	inst    [2]*instance
	bs      []*mbrowser
	users   []*muser
	profs   map[string]*mprof
	version int // the segment set in force
	step    int
	ops     int
	nuser   int
	barrN   int
	trace   []string
	traceMu sync.Mutex

	// reloadMu orders reloads like publications of a definition: one
	// reload switches both instances before the next starts. reloads
	// counts them, and versionAt is the count of the reload that set
	// version: two reloads in one step run in either order, and the
	// set in force is the one that ran last, not the one listed last.
	reloadMu  sync.Mutex
	reloads   int
	versionAt int
}

func newModel(t *testing.T, st store.Store, seed uint64) *model {
	m := &model{t: t, rng: mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		st: newTapStore(st), profs: make(map[string]*mprof)}
	// How often the flushers write by themselves varies with the seed:
	// all the time, now and then, or only when actions ask for it.
	interval := []time.Duration{2 * time.Millisecond, 30 * time.Millisecond, time.Hour}[m.rng.IntN(3)]
	m.logf("flush interval %v", interval)
	for i, name := range []string{"A", "B"} {
		in := &instance{name: name}
		e, err := rules.NewEngine()
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Reload([]byte(modelSets[0])); err != nil {
			t.Fatal(err)
		}
		in.engine = e
		in.p = newP(t, m.st, func(c *middleware.Config) {
			c.Engine = e
			c.WriteBehind.FlushInterval = interval
		})
		in.p.Observe(middleware.Observer{SegmentChange: in.rec.add})
		p := in.p
		mux := http.NewServeMux()
		mux.HandleFunc("POST /act", func(w http.ResponseWriter, r *http.Request) {
			v := middleware.FromContext(r.Context())
			q := r.URL.Query()
			var err error
			switch q.Get("kind") {
			case "click":
				err = v.Track("click", nil)
			case "purchase":
				price, _ := strconv.Atoi(q.Get("price"))
				err = v.Purchase(store.Item{ID: "cap", Price: float64(price)})
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			io.WriteString(w, v.ID())
		})
		mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
			if err := p.Identify(w, r, r.URL.Query().Get("user"), nil); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, middleware.FromContext(r.Context()).ID())
		})
		mux.Handle("/", echo)
		in.h = p.Handler(mux)
		in.login = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := p.Identify(w, r, r.URL.Query().Get("user"), nil); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
			}
		})
		m.inst[i] = in
	}
	return m
}

// logf adds a line to the trace.
func (m *model) logf(format string, args ...any) {
	m.traceMu.Lock()
	m.trace = append(m.trace, fmt.Sprintf("%5d  ", m.step)+fmt.Sprintf(format, args...))
	m.traceMu.Unlock()
}

// dumpTrace logs the end of the trace and writes all of it to a file.
func (m *model) dumpTrace(name string) {
	m.traceMu.Lock()
	defer m.traceMu.Unlock()
	tail := m.trace[max(0, len(m.trace)-60):]
	m.t.Logf("the last %d of %d trace lines:\n%s", len(tail), len(m.trace), strings.Join(tail, "\n"))
	path := filepath.Join(os.TempDir(), fmt.Sprintf("tailor-model-%s-%d.trace", name, time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(strings.Join(m.trace, "\n")+"\n"), 0o644); err == nil {
		m.t.Logf("the whole trace: %s", path)
	}
}

func (m *model) prof(id string) *mprof {
	p := m.profs[id]
	if p == nil {
		p = &mprof{id: id}
		m.profs[id] = p
	}
	return p
}

// root returns the profile that id's events count in: id, or the end of
// the chain of profiles it was merged into.
func (m *model) root(id string) string {
	for range 10 {
		p := m.profs[id]
		if p == nil || p.into == "" {
			return id
		}
		id = p.into
	}
	m.t.Fatalf("model: a cycle of merges from %s", id)
	return ""
}

// target returns the profile a browser's events count in.
func (m *model) target(b *mbrowser) string {
	if b.user != "" {
		return m.root(store.UserPrefix + b.user)
	}
	return m.root(b.vid)
}

// count adds to the tally of the profile id.
func (m *model) count(id string, f func(*tally)) {
	p := m.prof(id)
	f(&p.c)
	p.stored = true
}

// merge models the merge of the profile from into the profile into: from
// is frozen, and what it holds counts in into's root.
func (m *model) merge(from, into string) {
	p := m.prof(from)
	p.frozen = p.c.clone()
	p.into = into
	p.stored = true
	r := m.prof(m.root(into))
	r.c.add(&p.c)
	r.stored = true
}

// family is the key that a step's operations on one person share.
func (m *model) family(b *mbrowser) string {
	if b.user != "" {
		return "u:" + m.root(store.UserPrefix+b.user)
	}
	if b.vid != "" && m.root(b.vid) != b.vid {
		return "u:" + m.root(b.vid)
	}
	return fmt.Sprintf("b:%d", b.n)
}

func (m *model) userFamily(u string) string { return "u:" + m.root(store.UserPrefix+u) }

// An op is one operation of a step. run does it, without touching the
// model, and returns what it did to the model, which apply then does,
// after every operation of the step has run.
type op struct {
	desc     string
	b        *mbrowser // the browser it uses, if any
	families []string
	identity bool // changes whose profile events go to
	barrier  bool // wait for both instances to hear its writes
	run      func() (apply func(), err error)
}

// do sends a request of browser b to h, with and into its cookie jar.
func (b *mbrowser) do(h http.Handler, method, target string) (*http.Response, string) {
	r := httptest.NewRequest(method, "http://shop.example"+target, nil)
	r.Header.Set("User-Agent", browserUA)
	for _, c := range b.jar.Cookies(siteURL) {
		r.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	res := rec.Result()
	b.jar.SetCookies(siteURL, res.Cookies())
	return res, rec.Body.String()
}

// request returns a request carrying b's cookies, for calls outside
// Handler.
func (b *mbrowser) request(method, target string) *http.Request {
	r := httptest.NewRequest(method, "http://shop.example"+target, nil)
	r.Header.Set("User-Agent", browserUA)
	for _, c := range b.jar.Cookies(siteURL) {
		r.AddCookie(c)
	}
	return r
}

func (b *mbrowser) hasCookie() bool { return len(b.jar.Cookies(siteURL)) > 0 }

func (b *mbrowser) String() string {
	return fmt.Sprintf("browser %d (%s, vid %.8s, user %q)", b.n, b.st, b.vid, b.user)
}

// run runs n operations.
func (m *model) run(n int) {
	for m.ops < n && !m.t.Failed() {
		m.step++
		var ops []*op
		k := 1
		if m.rng.IntN(5) == 0 {
			k = 2 + m.rng.IntN(3)
		}
		for tries := 0; len(ops) < k && tries < 4*k; tries++ {
			o := m.gen()
			if o != nil && m.fits(o, ops) {
				ops = append(ops, o)
			}
		}
		m.ops += len(ops)
		m.do(ops)
	}
}

// fits reports whether o may run concurrently with ops: one operation per
// browser, and an operation that changes identities shares no person with
// the others.
func (m *model) fits(o *op, ops []*op) bool {
	for _, x := range ops {
		if o.b != nil && o.b == x.b {
			return false
		}
		if o.identity || x.identity {
			for _, f := range o.families {
				if slices.Contains(x.families, f) {
					return false
				}
			}
		}
	}
	return true
}

// do runs the operations of a step concurrently, then applies them to the
// model.
func (m *model) do(ops []*op) {
	applies := make([]func(), len(ops))
	errs := make([]error, len(ops))
	for _, o := range ops {
		m.logf("%s", o.desc)
	}
	if len(ops) == 1 {
		applies[0], errs[0] = ops[0].run()
	} else {
		var wg sync.WaitGroup
		for i, o := range ops {
			wg.Go(func() { applies[i], errs[i] = o.run() })
		}
		wg.Wait()
	}
	barrier, forget := false, false
	for i, o := range ops {
		if errs[i] != nil {
			m.t.Errorf("step %d: %s: %v", m.step, o.desc, errs[i])
			continue
		}
		if applies[i] != nil {
			applies[i]()
		}
		barrier = barrier || o.barrier
		forget = forget || strings.Contains(o.desc, "Forget(")
	}
	if barrier {
		m.barrier()
	}
	if forget {
		// An instance that hears of an erasure may erase more in turn (the
		// visitors whose merge into the user it held): the instance that
		// ran Forget hears of those a moment later.
		m.barrier()
	}
}

// barrier waits until both instances have heard every change the store
// announced so far: a store that announces asynchronously (Redis,
// PostgreSQL) tells other instances of a sign-in or an erasure a moment
// later, which the model does not guess at.
func (m *model) barrier() {
	m.barrN++
	var heard []func() bool
	for _, in := range m.inst {
		h, ok := middleware.Listen(in.p, barrierID)
		if !ok {
			m.t.Fatalf("barrier: the cache of %s does not keep %s", in.name, barrierID)
		}
		heard = append(heard, h)
	}
	ev := store.Event{ID: fmt.Sprintf("#barrier-%d", m.barrN), Type: store.TypeTrack, Name: "barrier", Time: time.Now()}
	if _, err := m.st.Store.Apply(context.Background(), barrierID, []store.Event{ev}); err != nil {
		m.t.Fatalf("barrier: %v", err)
	}
	for i, h := range heard {
		waitFor(m.t, 30*time.Second, fmt.Sprintf("%s to hear the store's announcements", m.inst[i].name), h)
	}
}

// waitFor polls cond until it holds, or fails t after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// flushAll flushes both instances until neither holds anything: a flush
// may queue forwards and merges for the next.
func (m *model) flushAll() {
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, in := range m.inst {
			if err := in.p.Flush(context.Background()); err != nil {
				m.t.Fatalf("flush %s: %v", in.name, err)
			}
		}
		if middleware.Pending(m.inst[0].p) == 0 && middleware.Pending(m.inst[1].p) == 0 {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("events still pending after 30s of flushes: A %d, B %d", middleware.Pending(m.inst[0].p), middleware.Pending(m.inst[1].p))
		}
	}
}

// Choosing what to do.

func (m *model) pick() *instance { return m.inst[m.rng.IntN(2)] }

// activeBrowser returns a browser for an operation: a new one now and then.
func (m *model) activeBrowser() *mbrowser {
	var active []*mbrowser
	for _, b := range m.bs {
		if !b.retired {
			active = append(active, b)
		}
	}
	if len(active) < 3 || m.rng.IntN(12) == 0 {
		if len(active) >= 8 {
			active[m.rng.IntN(len(active))].retired = true
		}
		jar, _ := cookiejar.New(nil)
		b := &mbrowser{n: len(m.bs), jar: jar}
		m.bs = append(m.bs, b)
		return b
	}
	return active[m.rng.IntN(len(active))]
}

// activeUser returns a user for an operation: a new one now and then.
func (m *model) activeUser() *muser {
	var active []*muser
	for _, u := range m.users {
		if !u.retired {
			active = append(active, u)
		}
	}
	if len(active) == 0 || m.rng.IntN(8) == 0 {
		if len(active) >= 6 {
			active[m.rng.IntN(len(active))].retired = true
		}
		u := &muser{name: fmt.Sprintf("u%d", m.nuser)}
		m.nuser++
		m.users = append(m.users, u)
		return u
	}
	return active[m.rng.IntN(len(active))]
}

var modelCats = []string{"", "", "red-sox", "hats", "books"}

// gen returns a random operation, or nil when the one it drew cannot be
// done now.
func (m *model) gen() *op {
	switch r := m.rng.IntN(100); {
	case r < 30:
		return m.opPage(m.activeBrowser(), m.pick(), fmt.Sprintf("/p/%d", m.rng.IntN(50)), modelCats[m.rng.IntN(len(modelCats))])
	case r < 42:
		return m.opAct(m.activeBrowser(), m.pick())
	case r < 49:
		return m.opTrack(m.activeBrowser(), m.pick())
	case r < 55:
		return m.opTrackUser(m.activeUser(), m.pick())
	case r < 58:
		return m.opIdentifyUser(m.activeUser(), m.pick())
	case r < 68:
		return m.opLogin(m.pick())
	case r < 71:
		return m.opAliasVisitor(m.pick())
	case r < 73:
		return m.opAliasUser(m.pick())
	case r < 77:
		return m.opForget(m.pick())
	case r < 85:
		return m.opEvict(m.pick())
	case r < 93:
		return m.opFlush(m.pick())
	default:
		return m.opReload()
	}
}

// visitorID reports whether body starts with a visitor id, and returns it.
func visitorID(body string) (string, bool) {
	id, _, _ := strings.Cut(body, " ")
	if len(id) != 32 {
		return "", false
	}
	_, err := hex.DecodeString(id)
	return id, err == nil
}

// arrive models what the start of a request through Handler does for b:
// a new visitor gets its id, a cookie carrying the first page view is
// recorded, an erased visitor's cookie is deleted. It returns false when
// the request was not tracked (an erased visitor).
func (m *model) arrive(b *mbrowser, pre bstate, body string, res *http.Response, page *pageView) (tracked bool, err error) {
	switch pre {
	case bDead:
		if body != "" || b.hasCookie() {
			return false, fmt.Errorf("%s: the response to an erased visitor is %q with cookies %v, want no visitor and the cookie deleted", b, body, res.Cookies())
		}
		b.st, b.vid, b.user, b.first = bNone, "", "", nil
		return false, nil
	case bNone:
		vid, ok := visitorID(body)
		if !ok {
			return false, fmt.Errorf("%s: new visitor: response %q", b, body)
		}
		if p := m.profs[vid]; p != nil {
			return false, fmt.Errorf("%s: new visitor got the visitor id %s of a profile seen before", b, vid)
		}
		if segs := strings.Fields(body)[1:]; len(segs) > 0 {
			return false, fmt.Errorf("%s: new visitor in segments %v", b, segs)
		}
		m.prof(vid)
		b.vid, b.user, b.st = vid, "", bKept
		if page != nil {
			b.st, b.first = bFirst, page
		}
		return true, nil
	}
	if err := m.learn(b, body); err != nil {
		return false, err
	}
	if pre == bFirst {
		f := b.first
		m.count(m.target(b), func(c *tally) { c.pages++; c.count(f.cat, 1) })
		b.st, b.first = bKept, nil
	}
	return true, nil
}

// learn checks or learns b's visitor id from a response body.
func (m *model) learn(b *mbrowser, body string) error {
	vid, ok := visitorID(body)
	if !ok {
		return fmt.Errorf("%s: response %q, want the visitor's id", b, body)
	}
	if b.vid == "" {
		b.vid = vid
		if p := b.pending; p != nil {
			p.id = vid
			m.profs[vid] = p
			b.pending = nil
		}
		return nil
	}
	if vid != b.vid {
		return fmt.Errorf("%s: response names the visitor %s", b, vid)
	}
	return nil
}

func (m *model) opPage(b *mbrowser, in *instance, path, cat string) *op {
	pre := b.st
	target := path
	if cat != "" {
		target += "?cat=" + cat
	}
	return &op{desc: fmt.Sprintf("%s: GET %s on %s", b, target, in.name), b: b, families: []string{m.family(b)},
		run: func() (func(), error) {
			res, body := b.do(in.h, "GET", target)
			return func() {
				tracked, err := m.arrive(b, pre, body, res, &pageView{path, cat})
				if err != nil {
					m.t.Errorf("step %d: %v", m.step, err)
				}
				if tracked && pre != bNone {
					m.count(m.target(b), func(c *tally) { c.pages++; c.count(cat, 1) })
				}
			}, nil
		}}
}

// action returns a random action: a click or a purchase and its price.
func (m *model) action() (kind string, price int) {
	if m.rng.IntN(3) == 0 {
		return "purchase", []int{10, 25, 60}[m.rng.IntN(3)]
	}
	return "click", 0
}

func countAction(kind string, price int) func(*tally) {
	return func(c *tally) {
		if kind == "click" {
			c.clicks++
		} else {
			c.purchases++
			c.revenue += float64(price)
		}
	}
}

// opAct: an action recorded by a handler (Visitor.Track, Visitor.Purchase).
func (m *model) opAct(b *mbrowser, in *instance) *op {
	pre := b.st
	kind, price := m.action()
	target := fmt.Sprintf("/act?kind=%s&price=%d", kind, price)
	return &op{desc: fmt.Sprintf("%s: POST %s on %s", b, target, in.name), b: b, families: []string{m.family(b)},
		run: func() (func(), error) {
			res, body := b.do(in.h, "POST", target)
			if res.StatusCode != 200 {
				return nil, fmt.Errorf("status %d: %s", res.StatusCode, body)
			}
			return func() {
				tracked, err := m.arrive(b, pre, body, res, nil)
				if err != nil {
					m.t.Errorf("step %d: %v", m.step, err)
				}
				if tracked {
					m.count(m.target(b), countAction(kind, price))
				}
			}, nil
		}}
}

// opTrack: an action recorded outside Handler (Personalizer.VisitorOf), with
// the browser's cookie alone.
func (m *model) opTrack(b *mbrowser, in *instance) *op {
	pre := b.st
	kind, price := m.action()
	var props map[string]any
	if kind == "purchase" {
		props = map[string]any{"products": []any{map[string]any{"id": "cap", "price": price}}}
	}
	return &op{desc: fmt.Sprintf("%s: Track %s %d on %s", b, kind, price, in.name), b: b, families: []string{m.family(b)},
		run: func() (func(), error) {
			if err := in.p.VisitorOf(b.request("POST", "/api")).Track(kind, props); err != nil {
				return nil, err
			}
			return func() {
				if pre == bFirst || pre == bKept {
					m.count(m.target(b), countAction(kind, price))
				}
			}, nil
		}}
}

func (m *model) opTrackUser(u *muser, in *instance) *op {
	kind, price := m.action()
	var props map[string]any
	if kind == "purchase" {
		props = map[string]any{"products": []any{map[string]any{"id": "cap", "price": price}}}
	}
	return &op{desc: fmt.Sprintf("TrackUser %s %s %d on %s", u.name, kind, price, in.name), families: []string{m.userFamily(u.name)},
		run: func() (func(), error) {
			if err := in.p.TrackUser(context.Background(), u.name, kind, props); err != nil {
				return nil, err
			}
			return func() { m.count(m.root(store.UserPrefix+u.name), countAction(kind, price)) }, nil
		}}
}

func (m *model) opIdentifyUser(u *muser, in *instance) *op {
	plan := fmt.Sprintf("plan-%d", m.rng.IntN(3))
	return &op{desc: fmt.Sprintf("IdentifyUser %s on %s", u.name, in.name), families: []string{m.userFamily(u.name)},
		run: func() (func(), error) {
			if err := in.p.IdentifyUser(context.Background(), u.name, map[string]any{"plan": plan}); err != nil {
				return nil, err
			}
			return func() { m.count(m.root(store.UserPrefix+u.name), func(c *tally) { c.identifies++ }) }, nil
		}}
}

// opLogin: a browser signs in, through Handler or from a handler that
// Handler does not wrap: as a user for the first time, again as the same
// user (sites identify on every sign-in), or as another user.
func (m *model) opLogin(in *instance) *op {
	b := m.activeBrowser()
	if b.st == bKept && b.vid == "" {
		// Signing in as another user would give it a new visitor id before
		// the model learnt the one it has: a page view first tells it.
		return m.opPage(b, in, "/learn", "")
	}
	var u *muser
	if b.user != "" && m.rng.IntN(2) == 0 {
		// Again, as the same user, if still active.
		for _, x := range m.users {
			if x.name == b.user && !x.retired {
				u = x
			}
		}
	}
	if u == nil {
		u = m.activeUser()
	}
	standalone := m.rng.IntN(3) == 0
	pre := b.st
	how := "through Handler"
	if standalone {
		how = "standalone"
	}
	return &op{desc: fmt.Sprintf("%s: sign in as %s %s on %s", b, u.name, how, in.name), b: b,
		families: []string{m.family(b), m.userFamily(u.name)}, identity: true, barrier: true,
		run: func() (func(), error) {
			var res *http.Response
			var body string
			if standalone {
				r := b.request("POST", "/login?user="+u.name)
				rec := httptest.NewRecorder()
				in.login.ServeHTTP(rec, r)
				res, body = rec.Result(), rec.Body.String()
				b.jar.SetCookies(siteURL, res.Cookies())
			} else {
				res, body = b.do(in.h, "POST", "/login?user="+u.name)
			}
			if res.StatusCode >= 300 {
				return nil, fmt.Errorf("status %d: %s", res.StatusCode, body)
			}
			return func() {
				if err := m.signIn(b, pre, u.name, standalone, body, res); err != nil {
					m.t.Errorf("step %d: %v", m.step, err)
				}
			}, nil
		}}
}

// signIn models Identify of browser b as user u.
func (m *model) signIn(b *mbrowser, pre bstate, u string, standalone bool, body string, res *http.Response) error {
	to := store.UserPrefix + u
	if standalone {
		switch pre {
		case bDead:
			return nil // not tracked: nothing happens, the cookie stays
		case bNone:
			// A new visitor, whose id the model learns on its next request.
			p := &mprof{}
			b.vid, b.pending, b.user, b.st = "", p, u, bKept
			p.frozen, p.into, p.stored = &tally{}, to, true
			r := m.prof(m.root(to))
			r.stored = true
			r.c.identifies++
			return nil
		case bFirst:
			// The re-issued cookie still carries the first page view: it
			// counts when the browser comes back through Handler.
		}
		if !b.hasCookie() {
			return fmt.Errorf("%s: no cookie after a standalone sign-in", b)
		}
		m.identify(b, u, "")
		return nil
	}
	nvid, _ := visitorID(body)
	switch pre {
	case bDead, bNone:
		tracked, err := m.arrive(b, pre, body, res, nil)
		if err != nil || !tracked {
			return err
		}
	case bFirst:
		f := b.first
		m.count(m.target(b), func(c *tally) { c.pages++; c.count(f.cat, 1) })
		b.st, b.first = bKept, nil
	}
	if nvid == "" {
		return fmt.Errorf("%s: sign-in response %q, want the visitor's id", b, body)
	}
	m.identify(b, u, nvid)
	// The response names the visitor the browser is from now on.
	return m.learn(b, body)
}

// identify models Identify of a tracked browser b as user u; nvid is the
// visitor id the response names, "" when unknown.
func (m *model) identify(b *mbrowser, u, nvid string) {
	to := store.UserPrefix + u
	switch {
	case b.user == "":
		m.merge(b.vid, to)
		b.user = u
	case m.root(store.UserPrefix+b.user) == to:
		// The same user again: nothing to merge.
	default:
		// Another user: a new visitor id, an alias of the user's profile.
		b.user = u
		p := &mprof{virtual: true, into: to, frozen: &tally{}}
		if nvid == "" {
			b.vid, b.pending = "", p
		} else {
			if nvid == b.vid {
				m.t.Errorf("step %d: %s signed in as another user %s and kept its visitor id", m.step, b, u)
			}
			p.id, b.vid = nvid, nvid
			m.profs[nvid] = p
		}
		m.prof(m.root(to)).stored = true
	}
	m.count(m.root(to), func(c *tally) { c.identifies++ })
}

// opAliasVisitor: Alias of an anonymous visitor's id (Segment's alias
// call), or of one merged already (a repeated call).
func (m *model) opAliasVisitor(in *instance) *op {
	var cands []*mbrowser
	for _, b := range m.bs {
		if !b.retired && b.vid != "" && (b.st == bFirst || b.st == bKept) && !m.prof(b.vid).virtual {
			cands = append(cands, b)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	b := cands[m.rng.IntN(len(cands))]
	u := m.activeUser()
	vid := b.vid
	return &op{desc: fmt.Sprintf("%s: Alias(%.8s, %s) on %s", b, vid, u.name, in.name), b: b,
		families: []string{m.family(b), m.userFamily(u.name)}, identity: true, barrier: true,
		run: func() (func(), error) {
			if err := in.p.Alias(context.Background(), vid, u.name); err != nil {
				return nil, err
			}
			return func() {
				if m.prof(vid).into != "" {
					return // merged already: nothing changes
				}
				m.merge(vid, store.UserPrefix+u.name)
				b.user = u.name
			}, nil
		}}
}

// opAliasUser: Alias of a former user id to a new one. The chains stay
// within the Personalizer's hops: the former user has no user merged into
// it, the new one is at most one merge from its root.
func (m *model) opAliasUser(in *instance) *op {
	old, nu := m.activeUser(), m.activeUser()
	oldID, newID := store.UserPrefix+old.name, store.UserPrefix+nu.name
	if old == nu || m.prof(oldID).into != "" || m.root(newID) == oldID {
		return nil
	}
	if p := m.prof(newID); p.into != "" && m.prof(p.into).into != "" {
		return nil
	}
	for _, p := range m.profs {
		if p.into == oldID && strings.HasPrefix(p.id, store.UserPrefix) {
			return nil
		}
	}
	return &op{desc: fmt.Sprintf("Alias(%s, %s) on %s", old.name, nu.name, in.name),
		families: []string{m.userFamily(old.name), m.userFamily(nu.name)}, identity: true, barrier: true,
		run: func() (func(), error) {
			if err := in.p.Alias(context.Background(), old.name, nu.name); err != nil {
				return nil, err
			}
			return func() { m.merge(oldID, newID) }, nil
		}}
}

// opForget erases a visitor or a user.
func (m *model) opForget(in *instance) *op {
	if m.rng.IntN(2) == 0 {
		var cands []*mbrowser
		for _, b := range m.bs {
			if b.vid != "" && (b.st == bFirst || b.st == bKept) {
				cands = append(cands, b)
			}
		}
		if len(cands) == 0 {
			return nil
		}
		b := cands[m.rng.IntN(len(cands))]
		vid := b.vid
		merged := m.prof(vid).into != ""
		return &op{desc: fmt.Sprintf("%s: Forget(%.8s) on %s", b, vid, in.name), b: b,
			families: []string{m.family(b)}, identity: true, barrier: true,
			run: func() (func(), error) {
				if merged {
					// What reaches the user's profile of a merged visitor's
					// events still pending is then erased with the visitor:
					// the model lets the merge complete first.
					m.flushAllConcurrent()
				}
				if err := in.p.Forget(context.Background(), vid); err != nil {
					return nil, err
				}
				return func() { m.erase([]string{vid}) }, nil
			}}
	}
	var cands []*muser
	for _, u := range m.users {
		if p := m.profs[store.UserPrefix+u.name]; p != nil && p.erased == 0 {
			cands = append(cands, u)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	u := cands[m.rng.IntN(len(cands))]
	return &op{desc: fmt.Sprintf("Forget(%s) on %s", u.name, in.name), families: []string{m.userFamily(u.name)}, identity: true, barrier: true,
		run: func() (func(), error) {
			if err := in.p.Forget(context.Background(), u.name); err != nil {
				return nil, err
			}
			return func() {
				// The user, every profile merged into them and every one
				// they were merged into: all that shares their root.
				r := m.root(store.UserPrefix + u.name)
				var ids []string
				for id := range m.profs {
					if m.root(id) == r {
						ids = append(ids, id)
					}
				}
				m.erase(ids)
			}, nil
		}}
}

// flushAllConcurrent is flushAll for an operation's run: it fails with
// Errorf, as run may be on another goroutine.
func (m *model) flushAllConcurrent() {
	for range 100 {
		for _, in := range m.inst {
			if err := in.p.Flush(context.Background()); err != nil {
				m.t.Errorf("flush %s: %v", in.name, err)
				return
			}
		}
		if middleware.Pending(m.inst[0].p) == 0 && middleware.Pending(m.inst[1].p) == 0 {
			return
		}
	}
}

// erase models the erasure of the profiles ids: they are gone, their
// users are done, and their browsers' cookies are deleted on their next
// response.
func (m *model) erase(ids []string) {
	for _, id := range ids {
		p := m.prof(id)
		p.erased, p.stored = m.step, false
		if u, ok := strings.CutPrefix(id, store.UserPrefix); ok {
			for _, x := range m.users {
				if x.name == u {
					x.retired = true
				}
			}
		}
	}
	for _, b := range m.bs {
		if b.st != bFirst && b.st != bKept {
			continue
		}
		if (b.vid != "" && m.prof(b.vid).erased != 0) || (b.user != "" && m.prof(store.UserPrefix+b.user).erased != 0) {
			b.st, b.first, b.pending = bDead, nil, nil
		}
	}
}

func (m *model) opEvict(in *instance) *op {
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range m.profs {
			if !yield(id) {
				return
			}
		}
	})
	if len(ids) == 0 {
		return nil
	}
	id := ids[m.rng.IntN(len(ids))]
	return &op{desc: fmt.Sprintf("evict %.13s from %s", id, in.name),
		run: func() (func(), error) { middleware.Evict(in.p, id); return nil, nil }}
}

func (m *model) opFlush(in *instance) *op {
	return &op{desc: "flush " + in.name,
		run: func() (func(), error) { return nil, in.p.Flush(context.Background()) }}
}

// opReload reloads both instances' engines, one after the other, with the
// same or a slightly different segment set.
func (m *model) opReload() *op { return m.reloadOp(m.rng.IntN(len(modelSets))) }

// reloadOp reloads both instances' engines with set v. The step's other
// operations run while it does; another reload waits for it to switch
// both instances, so that both end on the set of the reload that ran
// last, which the model takes.
func (m *model) reloadOp(v int) *op {
	return &op{desc: fmt.Sprintf("reload set %d", v),
		run: func() (func(), error) {
			m.reloadMu.Lock()
			defer m.reloadMu.Unlock()
			for _, in := range m.inst {
				if err := in.engine.Reload([]byte(modelSets[v])); err != nil {
					return nil, fmt.Errorf("reload %s: %w", in.name, err)
				}
			}
			m.reloads++
			n := m.reloads
			return func() {
				if n > m.versionAt {
					m.version, m.versionAt = v, n
				}
			}, nil
		}}
}

// checkEngines checks that both instances classify with the set the
// model says is in force.
func (m *model) checkEngines() {
	digests := make([]string, len(modelSets))
	for v, text := range modelSets {
		s, err := rules.Parse([]byte(text))
		if err != nil {
			m.t.Fatalf("set %d: %v", v, err)
		}
		digests[v] = s.Digest()
	}
	for _, in := range m.inst {
		if got := in.engine.Set().Digest(); got != digests[m.version] {
			m.t.Errorf("%s classifies with set %d, want set %d", in.name, slices.Index(digests, got), m.version)
		}
	}
}

// TestModelReloadsInOneStep runs two reloads in one step, the one listed
// first after the other: both instances end on the set of the one that
// ran, not was listed, last, and the model must say so.
func TestModelReloadsInOneStep(t *testing.T) {
	t.Parallel()
	m := newModel(t, memory.New(store.Limits{}), 1)
	first, second := m.reloadOp(1), m.reloadOp(2)
	secondDone := make(chan struct{})
	run1, run2 := first.run, second.run
	first.run = func() (func(), error) { <-secondDone; return run1() }
	second.run = func() (func(), error) { defer close(secondDone); return run2() }
	m.do([]*op{first, second})
	if m.version != 1 {
		t.Errorf("the model says set %d is in force, want 1: the reload of set 1 ran last", m.version)
	}
	m.checkEngines()
	b := m.activeBrowser()
	m.do([]*op{m.opPage(b, m.inst[0], "/p/1", "hats")})
	m.finish() // set 1 makes one page of hats a hat-lover; set 2 does not
}

// finish brings every browser back once more, flushes everything and
// checks the store, the instances and the reported segment changes
// against the model.
func (m *model) finish() {
	if m.t.Failed() {
		return
	}
	m.step++
	m.logf("finish")
	m.flushAll()
	m.barrier()
	// Erased visitors get their cookie deleted, new ones record their first
	// page view, visitors whose id the model does not know yet tell it.
	for _, b := range m.bs {
		if b.st == bDead || b.st == bFirst || (b.st == bKept && b.vid == "") {
			m.do([]*op{m.opPage(b, m.pick(), "/settle", "")})
		}
	}
	m.flushAll()
	m.barrier()
	m.checkEngines()
	// Every kept browser is served the segments of what it did, on either
	// instance; erased people's old segments are gone with them.
	for _, b := range m.bs {
		if b.st != bKept {
			continue
		}
		in := m.pick()
		want := expectSegments(m.version, &m.prof(m.target(b)).c)
		_, body := b.do(in.h, "GET", "/final")
		if err := m.learn(b, body); err != nil {
			m.t.Errorf("final request: %v", err)
			continue
		}
		got := strings.Fields(body)[1:]
		sort.Strings(got)
		if !slices.Equal(got, want) {
			m.t.Errorf("%s on %s is served segments %v, want %v (profile %.13s: %v)", b, in.name, got, want, m.target(b), &m.prof(m.target(b)).c)
		}
		m.count(m.target(b), func(c *tally) { c.pages++ })
	}
	m.flushAll()
	for _, in := range m.inst {
		middleware.WaitBackground(in.p) // erasures found on the way
	}
	m.checkStore()
	m.checkSegments()
}

// checkStore checks every stored profile against the model.
func (m *model) checkStore() {
	ctx := context.Background()
	stored := make(map[string]*store.Profile)
	if err := m.st.Store.(store.Ranger).Range(ctx, func(p *store.Profile) bool {
		stored[p.ID] = p
		return true
	}); err != nil {
		m.t.Fatalf("range: %v", err)
	}
	delete(stored, barrierID)
	for id, sp := range stored {
		p := m.profs[id]
		switch {
		case p == nil:
			m.t.Errorf("stored profile %s is unknown to the model: %v", id, tallyOf(sp))
		case p.erased != 0:
			m.t.Errorf("profile %s, erased at step %d, is stored: %v, merged into %q", id, p.erased, tallyOf(sp), sp.MergedInto)
		case !p.stored:
			m.t.Errorf("profile %s is stored, but nothing was written to it: %v", id, tallyOf(sp))
		}
	}
	for _, id := range slices.Sorted(mapKeysP(m.profs)) {
		p := m.profs[id]
		if p.erased != 0 {
			for _, in := range m.inst {
				if _, err := in.p.Profile(ctx, id); !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrInvalidID) {
					m.t.Errorf("%s still has the profile %s, erased at step %d: %v", in.name, id, p.erased, err)
				}
			}
			continue
		}
		if !p.stored {
			continue
		}
		sp := stored[id]
		if sp == nil {
			m.t.Errorf("profile %s is not stored, want %v", id, &p.c)
			continue
		}
		got := tallyOf(sp)
		if sp.Counts["purchase"] != sp.Purchases.Count {
			m.t.Errorf("profile %s: %d purchase events, %d purchases", id, sp.Counts["purchase"], sp.Purchases.Count)
		}
		switch {
		case p.into == "":
			if sp.MergedInto != "" {
				m.t.Errorf("profile %s is merged into %s; the model did not merge it", id, sp.MergedInto)
			}
			if !got.equal(&p.c) {
				m.t.Errorf("profile %s holds %v, want %v", id, got, &p.c)
			}
		default:
			// A merged profile holds what was written to it before its
			// merge; what came later went on to the profile it was merged
			// into.
			if sp.MergedInto != p.into {
				m.t.Errorf("profile %s is merged into %q, want %q", id, sp.MergedInto, p.into)
			}
			if !got.within(p.frozen) {
				m.t.Errorf("merged profile %s holds %v, more than the %v it had when merged", id, got, p.frozen)
			}
		}
	}
}

func mapKeysP(m map[string]*mprof) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// changeKey identifies a segment change across reports, store writes and
// the profiles' logs.
func changeKey(visitor string, t time.Time, entered, exited []string) string {
	return fmt.Sprintf("%s|%d|%s|%s", visitor, t.UnixNano(), strings.Join(entered, ","), strings.Join(exited, ","))
}

// checkSegments checks the segment changes reported by both instances:
// every change that a write made is reported once, by one instance; per
// profile and segment, entries and exits alternate, starting with an
// entry, and what they add up to is what the stored profile says.
func (m *model) checkSegments() {
	ctx := context.Background()
	reported := make(map[string]int)
	var reports []string
	for _, in := range m.inst {
		for _, c := range in.rec.all() {
			k := changeKey(c.VisitorID, c.Time, c.Entered, c.Exited)
			reported[k]++
			reports = append(reports, k)
		}
	}
	made := m.st.changes()
	byProfile := make(map[string][]string)
	for k, n := range reported {
		if n > 1 {
			m.t.Errorf("segment change %s reported %d times", k, n)
		}
		pids := made[k]
		if len(pids) == 0 {
			m.t.Errorf("segment change %s reported, but no write made it", k)
		}
		if len(pids) > 1 {
			m.t.Errorf("segment change %s made in several profiles: %v", k, pids)
		}
		for _, pid := range pids {
			byProfile[pid] = append(byProfile[pid], k)
		}
	}
	for k, pids := range made {
		if reported[k] == 0 {
			m.t.Errorf("segment change %s, made in %v, was never reported", k, pids)
		}
	}
	for _, id := range slices.Sorted(mapKeysP(m.profs)) {
		p := m.profs[id]
		if !p.stored || p.erased != 0 {
			continue
		}
		sp, err := m.st.Load(ctx, id)
		if err != nil {
			continue // reported by checkStore
		}
		// Entries minus exits, per segment, from the reports.
		net := make(map[string]int)
		for _, k := range byProfile[id] {
			parts := strings.Split(k, "|")
			for _, s := range strings.Split(parts[2], ",") {
				if s != "" {
					net[s]++
				}
			}
			for _, s := range strings.Split(parts[3], ",") {
				if s != "" {
					net[s]--
				}
			}
		}
		for s, n := range net {
			if in := slices.Contains(sp.Segments, s); n < 0 || n > 1 || (n == 1) != in {
				m.t.Errorf("profile %s: segment %s entered − exited = %d in the reports, stored segments %v", id, s, n, sp.Segments)
			}
		}
		for _, s := range sp.Segments {
			if net[s] != 1 {
				m.t.Errorf("profile %s is stored in segment %s, entered − exited = %d in the reports", id, s, net[s])
			}
		}
		// In the order of the profile's log: no entry without an exit
		// between, each logged change reported.
		if len(sp.SegmentChanges) >= store.MaxSegmentChanges {
			continue // the log may have lost its oldest changes
		}
		in := make(map[string]bool)
		for _, c := range sp.SegmentChanges {
			k := changeKey(c.Visitor, c.Time, c.Entered, c.Exited)
			if reported[k] != 1 {
				m.t.Errorf("profile %s: logged change %s reported %d times", id, k, reported[k])
			}
			for _, s := range c.Entered {
				if in[s] {
					m.t.Errorf("profile %s: entered %s twice without an exit between (%s)", id, s, k)
				}
				in[s] = true
			}
			for _, s := range c.Exited {
				if !in[s] {
					m.t.Errorf("profile %s: exited %s without being in it (%s)", id, s, k)
				}
				delete(in, s)
			}
		}
		if len(byProfile[id]) != len(sp.SegmentChanges) {
			m.t.Errorf("profile %s: %d changes reported, %d logged", id, len(byProfile[id]), len(sp.SegmentChanges))
		}
		want := slices.Sorted(func(yield func(string) bool) {
			for s := range in {
				if !yield(s) {
					return
				}
			}
		})
		got := slices.Sorted(slices.Values(sp.Segments))
		if !slices.Equal(got, want) {
			m.t.Errorf("profile %s: segments %v, its log adds up to %v", id, got, want)
		}
	}
	m.logf("%d segment changes reported", len(reports))
}

// tapStore is the shared store, noting the segment changes that each write
// made and in which profile, so that reports can be checked against them.
type tapStore struct {
	store.Store
	mu   sync.Mutex
	made map[string][]string // changeKey → profile ids
}

func newTapStore(s store.Store) *tapStore {
	return &tapStore{Store: s, made: make(map[string][]string)}
}

func (s *tapStore) ApplyBatch(ctx context.Context, bs []store.Batch) ([]*store.Profile, error) {
	profs, err := store.ApplyBatch(ctx, s.Store, bs)
	if err == nil {
		s.note(bs, profs)
	}
	return profs, err
}

func (s *tapStore) Apply(ctx context.Context, id string, evs []store.Event) (*store.Profile, error) {
	p, err := s.Store.Apply(ctx, id, evs)
	if err == nil {
		s.note([]store.Batch{{ID: id, Events: evs}}, []*store.Profile{p})
	}
	return p, err
}

func (s *tapStore) note(bs []store.Batch, profs []*store.Profile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, b := range bs {
		for _, e := range b.Events {
			if e.Type != store.TypeSegments || profs[i] == nil {
				continue
			}
			if c, ok := profs[i].SegmentChange(e.ID); ok {
				k := changeKey(c.Visitor, c.Time, c.Entered, c.Exited)
				if !slices.Contains(s.made[k], b.ID) {
					s.made[k] = append(s.made[k], b.ID)
				}
			}
		}
	}
}

func (s *tapStore) changes() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]string, len(s.made))
	for k, v := range s.made {
		out[k] = slices.Clone(v)
	}
	return out
}

func (s *tapStore) Subscribe(ctx context.Context, fn func(store.Change)) error {
	return s.Store.(store.Invalidator).Subscribe(ctx, fn)
}

func (s *tapStore) Limits() store.Limits { return store.LimitsOf(s.Store) }
