package integration_test

import (
	"context"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tailorhq/tailor/internal/testenv"
	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/collect"
	"github.com/tailorhq/tailor/middleware/slots"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

const edgeUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"

// edgeOrigin is a small tailor site: a personalised home page ("/",
// cacheable, its hero slot varying on the visitor's favourite category),
// category pages served by Handler, and the collection endpoint.
type edgeOrigin struct {
	srv  *httptest.Server
	p    *middleware.Personalizer
	edge *middleware.Edge
}

var homeTmpl = template.Must(template.New("home").Parse(
	`<main data-visitor="{{.ID}}">{{with .Hero}}<section {{.Attrs}}><h1>{{.Fields.title}}</h1></section>{{end}}</main>` +
		`<script src="/_tailor/t.js" data-page></script>`))

func newEdgeOrigin(t *testing.T) *edgeOrigin {
	t.Helper()
	var segs []rules.Segment
	for _, c := range []string{"sports", "books", "music"} {
		segs = append(segs, rules.Segment{Name: c + "-fan", Rule: rules.CategoryViews(c, 1)})
	}
	engine, err := rules.NewEngine(segs...)
	if err != nil {
		t.Fatal(err)
	}
	hero, err := slots.NewEngine(slots.Slot{
		Name: "hero",
		Variants: []slots.Variant{
			{Key: "sports", Segments: []string{"sports-fan"}, Priority: 10, Fields: map[string]any{"title": "Game day"}},
			{Key: "books", Segments: []string{"books-fan"}, Priority: 20, Fields: map[string]any{"title": "New novels"}},
			{Key: "music", Segments: []string{"music-fan"}, Priority: 30, Fields: map[string]any{"title": "On tour"}},
		},
		Default: slots.Variant{Key: "welcome", Fields: map[string]any{"title": "Welcome"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := middleware.New(middleware.Config{
		Keys: []middleware.KeyPair{middleware.GenerateKeyPair()}, Store: memory.New(store.Limits{}),
		Engine: engine, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	edge, err := p.Edge(middleware.EdgeConfig{Slots: []string{"hero"}, Picker: hero, SMaxAge: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Every visitor of the test comes from 127.0.0.1: no per-address
	// bound on the snippet's calls.
	c, err := collect.New(p, collect.Config{BrowserRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/_tailor/", c)
	mux.Handle("/{$}", edge.Cacheable(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		homeTmpl.Execute(w, map[string]any{"ID": v.ID(), "Hero": hero.Pick(v, "hero")})
	})))
	mux.Handle("/c/{cat}", p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		middleware.FromContext(r.Context()).Describe(r.PathValue("cat"), "")
		io.WriteString(w, "category "+r.PathValue("cat"))
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &edgeOrigin{srv: srv, p: p, edge: edge}
}

// varnish is a varnishd of the test's own, in front of an origin.
type varnish struct {
	addr string
	dir  string
}

// startVarnish starts varnishd on a free loopback port with
// testdata/edge.vcl pointed at origin, in the foreground of a subprocess
// that is killed when the test ends, and waits until it answers.
func startVarnish(t *testing.T, origin string) *varnish {
	t.Helper()
	// Debian installs it in /usr/sbin, which is not on every user's PATH.
	bin := "/usr/sbin/varnishd"
	if _, err := os.Stat(bin); err != nil {
		bin = testenv.Command(t, "varnishd", "install it with `apt-get install -y varnish`")
	}
	_, oport, err := net.SplitHostPort(strings.TrimPrefix(origin, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join("testdata", "edge.vcl"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	vcl := filepath.Join(dir, "edge.vcl")
	if err := os.WriteFile(vcl, []byte(strings.ReplaceAll(string(src), "ORIGIN_PORT", oport)), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	v := &varnish{addr: addr, dir: filepath.Join(dir, "n")}
	// -j none: no jail, so that it runs as whoever runs the test; -T none:
	// no management port to collide with.
	cmd := exec.Command(bin, "-F", "-j", "none", "-n", v.dir, "-a", addr, "-T", "none", "-f", vcl, "-s", "malloc,32m")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return v
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("varnishd did not listen on %s within 60s:\n%s", addr, out.String())
		}
	}
}

// stat returns a counter of varnishstat (MAIN.cache_hit...), or -1 when
// varnishstat is not there.
func (v *varnish) stat(t *testing.T, name string) int {
	t.Helper()
	bin, err := exec.LookPath("varnishstat")
	if err != nil {
		return -1
	}
	out, err := exec.Command(bin, "-n", v.dir, "-1", "-f", name).CombinedOutput()
	if err != nil {
		t.Fatalf("varnishstat: %v: %s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 || f[0] != name {
		t.Fatalf("varnishstat -f %s: %q", name, out)
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// edgeVisitor is a browser behind the edge: its own cookies, set and sent
// by hand so that the test sees each one.
type edgeVisitor struct {
	n       int
	id      string // the visitor id, from the first (personalised) page
	cookies map[string]string
	want    string // the hero variant its key cookie stands for
}

var heroVariant = regexp.MustCompile(`data-slot="hero" data-variant="([^"]*)"`)
var pageVisitor = regexp.MustCompile(`data-visitor="([^"]*)"`)

// edgeRun holds what the test saw, across visitors.
type edgeRun struct {
	t        *testing.T
	base     string
	mu       sync.Mutex
	cookieOf map[string]int // each visitor cookie value received, by visitor
	hits     int            // home page responses from the cache
	keyed    int            // home page requests with a key (the edge looked them up)
}

// do sends a request of v and checks what no response may carry: a
// cookie or a page of another visitor, a cookie from the cache.
func (e *edgeRun) do(v *edgeVisitor, method, path, body string) (*http.Response, string) {
	t := e.t
	t.Helper()
	req, _ := http.NewRequest(method, e.base+path, strings.NewReader(body))
	req.Header.Set("User-Agent", edgeUA)
	if method == "POST" {
		req.Header.Set("Sec-Fetch-Site", "same-origin") // the snippet's call
		req.Header.Set("Content-Type", "application/json")
	}
	var cs []string
	for k, val := range v.cookies {
		cs = append(cs, k+"="+val)
	}
	if len(cs) > 0 {
		req.Header.Set("Cookie", strings.Join(cs, "; "))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("visitor %d: %s %s: %d %s", v.n, method, path, resp.StatusCode, b)
	}
	xc := resp.Header.Get("X-Cache")
	if xc == "HIT" && len(resp.Cookies()) > 0 {
		t.Errorf("visitor %d: %s from the cache sets cookies %v", v.n, path, resp.Header.Values("Set-Cookie"))
	}
	if m := pageVisitor.FindStringSubmatch(string(b)); m != nil && m[1] != "" && m[1] != v.id && v.id != "" {
		t.Errorf("visitor %d (%s) got the page of visitor %s", v.n, v.id, m[1])
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range resp.Cookies() {
		if c.Name == "tailor" && c.Value != "" {
			if o, ok := e.cookieOf[c.Value]; ok && o != v.n {
				t.Errorf("visitor %d got the visitor cookie of visitor %d", v.n, o)
			}
			e.cookieOf[c.Value] = v.n
		}
		if c.MaxAge < 0 {
			delete(v.cookies, c.Name)
		} else {
			v.cookies[c.Name] = c.Value
		}
	}
	if path == "/" && xc != "PASS" {
		e.keyed++
		if xc == "HIT" {
			e.hits++
		}
	}
	return resp, string(b)
}

// home requests the home page as v and checks it shows v's variant.
func (e *edgeRun) home(v *edgeVisitor) *http.Response {
	e.t.Helper()
	key := v.cookies["tailor_v"]
	resp, body := e.do(v, "GET", "/", "")
	m := heroVariant.FindStringSubmatch(body)
	if m == nil || m[1] != v.want {
		e.t.Errorf("visitor %d: home page shows %v, want variant %q (X-Cache %s)", v.n, m, v.want, resp.Header.Get("X-Cache"))
	}
	if xc := resp.Header.Get("X-Cache"); xc != "PASS" && resp.Header.Get("Cache-Control") != "no-store" &&
		resp.Header.Get(middleware.VariantHeader) != key {
		e.t.Errorf("visitor %d: page of key %q for the key %q", v.n, resp.Header.Get(middleware.VariantHeader), key)
	}
	return resp
}

// enter makes v view a page of cat (served by Handler) and then, as the
// snippet of the next cached page does, send its page view: the answer
// carries the key of the segment v entered.
func (e *edgeRun) enter(v *edgeVisitor, cat, want string) {
	e.t.Helper()
	old := v.cookies["tailor_v"]
	e.do(v, "GET", "/c/"+cat, "")
	// The home page still shows the old variant: the key is one origin
	// response behind.
	e.home(v)
	e.do(v, "POST", "/_tailor/v1/page", `{"properties":{"path":"/"}}`)
	if v.cookies["tailor_v"] == old {
		e.t.Fatalf("visitor %d: no new key after entering %s", v.n, cat)
	}
	v.want = want
}

// 100 visitors of four variants behind a real Varnish: the personalised
// home page is served from the cache, each visitor sees their variant, no
// one gets another's page or cookie, and a visitor who enters a segment
// sees the new variant.
func TestEdgeVarnish(t *testing.T) {
	o := newEdgeOrigin(t)
	vn := startVarnish(t, o.srv.URL)
	run := &edgeRun{t: t, base: "http://" + vn.addr, cookieOf: map[string]int{}}

	cats := []string{"sports", "books", "music", ""}
	visitors := make([]*edgeVisitor, 100)
	for i := range visitors {
		v := &edgeVisitor{n: i, cookies: map[string]string{}, want: "welcome"}
		visitors[i] = v
		// First request: no key, so Varnish passes it with its cookies:
		// personalised and private, both cookies set.
		resp := run.home(v)
		if resp.Header.Get("X-Cache") != "PASS" || !strings.HasPrefix(resp.Header.Get("Cache-Control"), "private") {
			t.Fatalf("visitor %d: first request %s, Cache-Control %q", i, resp.Header.Get("X-Cache"), resp.Header.Get("Cache-Control"))
		}
		if v.cookies["tailor"] == "" || v.cookies["tailor_v"] == "" {
			t.Fatalf("visitor %d: cookies after the first request: %v", i, v.cookies)
		}
		if cat := cats[i%len(cats)]; cat != "" {
			run.enter(v, cat, cat)
		}
	}
	keys := map[string]string{} // variant by key
	for _, v := range visitors {
		if w, ok := keys[v.cookies["tailor_v"]]; ok && w != v.want {
			t.Errorf("one key for the variants %q and %q", w, v.want)
		}
		keys[v.cookies["tailor_v"]] = v.want
	}
	if len(keys) != 4 {
		t.Fatalf("%d keys for 4 variants: %v", len(keys), keys)
	}

	// After warm-up: every visitor loads the home page five times, ten at
	// a time.
	run.mu.Lock()
	run.hits, run.keyed = 0, 0
	run.mu.Unlock()
	var wg sync.WaitGroup
	work := make(chan *edgeVisitor)
	for range 10 {
		wg.Go(func() {
			for v := range work {
				for range 5 {
					run.home(v)
				}
			}
		})
	}
	for _, v := range visitors {
		work <- v
	}
	close(work)
	wg.Wait()
	ratio := float64(run.hits) / float64(run.keyed)
	t.Logf("after warm-up: %d of %d home pages from Varnish's cache (%.1f%%), %d keys", run.hits, run.keyed, 100*ratio, len(keys))
	if run.keyed != 500 || ratio <= 0.9 {
		t.Errorf("hit ratio %d/%d, want above 90%% of 500", run.hits, run.keyed)
	}
	// Varnish's workers add their counters to the shared ones from time
	// to time: wait for them.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		n := vn.stat(t, "MAIN.cache_hit")
		if n < 0 || n >= run.hits {
			t.Logf("varnishstat: MAIN.cache_hit %d (-1: no varnishstat)", n)
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("varnishstat counts %d hits, the responses %d", n, run.hits)
			break
		}
	}

	// A sports fan enters books (which the hero ranks higher): the new
	// variant, from the cache of the books fans' key.
	fan := visitors[0]
	run.enter(fan, "books", "books")
	if resp := run.home(fan); resp.Header.Get("X-Cache") != "HIT" {
		t.Errorf("the books fans' page was not served from the cache: %s", resp.Header.Get("X-Cache"))
	}
	// A visitor of no segment enters music.
	none := visitors[3]
	run.enter(none, "music", "music")
	run.home(none)

	// A forged key (the form of a key, another signature) is refused by
	// the origin and never kept: each time to the origin, each time
	// the deletion of the cookie.
	forged := &edgeVisitor{n: -1, cookies: map[string]string{}, want: "welcome"}
	k := visitors[1].cookies["tailor_v"]
	payload, _, _ := strings.Cut(k, ".")
	for range 2 {
		forged.cookies["tailor_v"] = payload + ".AAAAAAAAAAAAAAAAAAAAAA"
		resp := run.home(forged)
		if resp.Header.Get("X-Cache") != "MISS" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("forged key: X-Cache %s, Cache-Control %q", resp.Header.Get("X-Cache"), resp.Header.Get("Cache-Control"))
		}
		if _, ok := forged.cookies["tailor_v"]; ok {
			t.Error("forged key: the cookie was not deleted")
		}
	}
	if o.edge.Refused() != 2 {
		t.Errorf("Refused = %d, want 2", o.edge.Refused())
	}
	// A client's own Tailor-Variant header is dropped by the edge: without
	// the cookie it is passed to the origin and personalised.
	req, _ := http.NewRequest("GET", run.base+"/", nil)
	req.Header.Set("User-Agent", edgeUA)
	req.Header.Set(middleware.VariantHeader, k)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Cache") != "PASS" {
		t.Errorf("a client's own header was used: X-Cache %s", resp.Header.Get("X-Cache"))
	}
}

// TestEdgeVarnishInBrowser: Chromium behind Varnish. The cached home
// page's snippet records its page view, and its answer brings the key of
// the segment the visitor entered: the home page after that shows the
// new variant.
func TestEdgeVarnishInBrowser(t *testing.T) {
	ctx := newBrowser(t)
	o := newEdgeOrigin(t)
	vn := startVarnish(t, o.srv.URL)
	base := "http://" + vn.addr

	if h := hero(t, ctx, base); h != "welcome" {
		t.Fatalf("first visit: hero %q", h)
	}
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := chromedp.Run(c, chromedp.AttributeValue(chromedp.CSS("main"), "data-visitor"))
	if err != nil || len(res.Value) != 32 {
		t.Fatalf("the first (personalised) page names no visitor: %+v %v", res, err)
	}
	id := res.Value
	do(t, ctx, chromedp.Navigate(base+"/c/books"))
	// The key is one response of the origin behind: this home page is the
	// cached copy of the welcome key; its snippet's page view brings the
	// books fans' key.
	if h := hero(t, ctx, base); h != "welcome" {
		t.Errorf("home page right after entering books: %q, want the old variant", h)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if hero(t, ctx, base) == "books" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the home page never showed the books variant")
		}
	}
	// The cached pages' views came from the snippet, with the page's path.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		views := 0
		if prof, err := o.p.Profile(context.Background(), id); err == nil {
			for i := range prof.Recent.Len() {
				if e := prof.Recent.At(i); e.Type == store.TypePage && e.Path == "/" {
					views++
				}
			}
		}
		if views >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d page views of / recorded, want at least 3 (one per load)", views)
		}
	}
}
