package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tailorhq/tailor/internal/testenv"
	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/collect"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

const segmentWriteKey = "wk_integration_0123456789"

// collectSite is a site with tailor's collection endpoint at /_tailor/ and
// a page that shows the visitor's id and segments, and loads the snippet.
type collectSite struct {
	p   *middleware.Personalizer
	st  store.Store
	srv *httptest.Server
}

func startCollectSite(t *testing.T) *collectSite {
	t.Helper()
	engine, err := rules.NewEngine(
		rules.Segment{Name: "crm-opportunity", Priority: 50, Rule: rules.Trait("crm_stage", "opportunity")},
		rules.Segment{Name: "customer", Priority: 40, Rule: rules.Purchased(1)},
		rules.Segment{Name: "email-clicker", Priority: 30, Rule: rules.EventCount("email_clicked", 1)},
		rules.Segment{Name: "shopper", Priority: 20, Rule: rules.EventCount("add_to_cart", 1)},
		rules.Segment{Name: "viewer", Priority: 10, Rule: rules.EventCount("video_played", 1)},
	)
	if err != nil {
		t.Fatal(err)
	}
	st := memory.New(store.Limits{})
	p, err := middleware.New(middleware.Config{
		Keys: []middleware.KeyPair{middleware.GenerateKeyPair()}, Store: st, Engine: engine, Logger: quietLogger(), WriteBehind: middleware.WriteBehindConfig{FlushInterval: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := collect.New(p, collect.Config{WriteKeys: []string{segmentWriteKey}})
	if err != nil {
		t.Fatal(err)
	}
	root := http.NewServeMux()
	// With a "GET /" pattern, the endpoint goes in by method: a plain
	// "/_tailor/" would conflict with it.
	root.Handle("POST /_tailor/v1/", c)
	root.Handle("GET /_tailor/t.js", c)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>t</title><body data-visitor=%q data-segments=%q>
<button id="add" data-track="add_to_cart" data-track-product-id="moneyball" data-track-price="16.99">Add</button>
<script>window.tailor = [["page_ready", {"early": true}]]</script>
<script src="/_tailor/t.js"></script></body>`, v.ID(), strings.Join(v.Segments(), " "))
	})
	root.Handle("/", p.Handler(mux))
	srv := httptest.NewServer(root)
	t.Cleanup(func() {
		srv.Close()
		p.Close(context.Background())
	})
	return &collectSite{p: p, st: st, srv: srv}
}

// browserClient is a Go HTTP client with a cookie jar and a browser's
// User-Agent.
type browserClient struct {
	c    *http.Client
	base string
}

func newBrowserClient(base string) *browserClient {
	jar, _ := cookiejar.New(nil)
	return &browserClient{c: &http.Client{Jar: jar}, base: base}
}

// visit returns the visitor id and segments of a page.
func (b *browserClient) visit(t *testing.T) (id string, segments []string) {
	t.Helper()
	req, _ := http.NewRequest("GET", b.base+"/", nil)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/150.0 Safari/537.36")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	body := sb.String()
	id = attr(body, "data-visitor")
	return id, strings.Fields(attr(body, "data-segments"))
}

func attr(html, name string) string {
	_, rest, ok := strings.Cut(html, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// installSegment installs @segment/analytics-node from npm into a
// temporary folder and returns it.
func installSegment(t *testing.T) string {
	t.Helper()
	npm := testenv.Command(t, "npm", "install Node.js and npm (`apt-get install -y nodejs npm`)")
	testenv.Command(t, "node", "install Node.js (`apt-get install -y nodejs`)")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--prefix", dir, "--no-audit", "--no-fund", "@segment/analytics-node")
	if out, err := cmd.CombinedOutput(); err != nil {
		testenv.Missing(t, fmt.Sprintf("npm install @segment/analytics-node failed (no network?): %v\n%s", err, out))
	}
	return dir
}

// segmentScript sends, with Segment's own Node.js client: an identify that
// ties the browser's visitor to a user and sets CRM traits, an order, and
// a batch of three events (an email opened and clicked, a page). It prints
// the HTTP status of every request.
const segmentScript = `
const { Analytics } = require('@segment/analytics-node')
const [host, writeKey, visitor] = process.argv.slice(2)
const statuses = []
let last = ''
const client = (flushAt) => {
  // host is the server; path puts the endpoint under tailor's prefix.
  const a = new Analytics({ writeKey, host, path: '/_tailor/v1/batch', flushAt, flushInterval: 60000, maxRetries: 2 })
  a.on('http_request', (r) => { last = r.body })
  a.on('http_response', (r) => statuses.push(r.status))
  a.on('error', (e) => { console.error('error', e && e.reason || e); process.exitCode = 1 })
  return a
}
async function main() {
  const one = client(1)
  one.identify({ userId: 'ana@example.com', anonymousId: visitor, traits: { crm_stage: 'opportunity', name: 'Ana' } })
  await one.flush()
  one.track({ userId: 'ana@example.com', event: 'Order Completed',
    properties: { order_id: 'o-1', revenue: 33.98, products: [{ product_id: 'moneyball', category: 'books', price: 16.99, quantity: 2 }] } })
  await one.closeAndFlush()
  const batch = client(3)
  batch.track({ userId: 'ana@example.com', event: 'email_opened', properties: { campaign: 'spring' } })
  batch.track({ userId: 'ana@example.com', event: 'email_clicked', properties: { campaign: 'spring' } })
  batch.page({ userId: 'ana@example.com', name: 'Pricing', properties: { path: '/pricing', category: 'plans' } })
  await batch.closeAndFlush()
  console.log(JSON.stringify({ statuses, last }))
}
main().catch((e) => { console.error(e); process.exit(1) })
`

// TestSegmentNodeClient: Segment's Node.js library, pointed at tailor,
// identifies a browser's visitor as a user with CRM traits, tracks an
// order and sends a batch; the browser's next page shows the segments.
func TestSegmentNodeClient(t *testing.T) {
	dir := installSegment(t)
	s := startCollectSite(t)

	browser := newBrowserClient(s.srv.URL)
	id, _ := browser.visit(t)
	if _, segs := browser.visit(t); len(segs) != 0 {
		t.Fatalf("segments before: %v", segs)
	}

	script := filepath.Join(dir, "send.js")
	if err := os.WriteFile(script, []byte(segmentScript), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "node", script, s.srv.URL, segmentWriteKey, id).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var sent struct {
		Statuses []int
		Last     string // the body of the batch
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(lastLine(string(out)))), &sent); err != nil || len(sent.Statuses) != 3 {
		t.Fatalf("requests: %+v %v\n%s", sent, err, out)
	}
	for _, st := range sent.Statuses {
		if st != 200 {
			t.Fatalf("statuses %v\n%s", sent.Statuses, out)
		}
	}
	// A retried delivery of the batch counts once.
	req, _ := http.NewRequest("POST", s.srv.URL+"/_tailor/v1/batch", strings.NewReader(sent.Last))
	req.SetBasicAuth(segmentWriteKey, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("resending the batch: %v %v", resp, err)
	}
	resp.Body.Close()

	prof, err := s.p.Profile(context.Background(), "user:ana@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if string(prof.Trait("crm_stage")) != `"opportunity"` || prof.Purchases.Count != 1 || prof.Purchases.Items["moneyball"] != 2 ||
		prof.Counts["email_opened"] != 1 || prof.Counts["email_clicked"] != 1 || prof.Pages["/pricing"] != 1 || prof.Categories["plans"] != 1 {
		t.Errorf("profile: traits %s, purchases %+v, counts %v, pages %v", prof.Traits, prof.Purchases, prof.Counts, prof.Pages)
	}
	if !slices.Contains(prof.Aliases, id) {
		t.Errorf("the browser's visitor %s is not merged: %v", id, prof.Aliases)
	}
	// The browser's next page: the identify named it, so it is the user now.
	gotID, segs := browser.visit(t)
	if gotID != id {
		t.Errorf("visitor id %s, want %s", gotID, id)
	}
	for _, want := range []string{"crm-opportunity", "customer", "email-clicker"} {
		if !slices.Contains(segs, want) {
			t.Errorf("segments %v lack %s", segs, want)
		}
	}
	st := s.p.Stats()
	if st.Collected != 8 || st.Merges != 1 {
		t.Errorf("stats: collected %d, merges %d", st.Collected, st.Merges)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestSnippetInBrowser: the browser snippet in Chromium sends a click on
// a data-track element, with its data-track-* properties, and calls of
// tailor.track (made before and after it loaded), with sendBeacon; they
// count on the visitor's next page.
func TestSnippetInBrowser(t *testing.T) {
	ctx := newBrowser(t)
	s := startCollectSite(t)
	page := func() (string, string) {
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(c, chromedp.Navigate(s.srv.URL+"/")); err != nil {
			t.Fatal(err)
		}
		id, err := chromedp.Run(c, chromedp.AttributeValue(chromedp.CSS("body"), "data-visitor"))
		if err != nil {
			t.Fatal(err)
		}
		segs, err := chromedp.Run(c, chromedp.AttributeValue(chromedp.CSS("body"), "data-segments"))
		if err != nil {
			t.Fatal(err)
		}
		return id.Value, segs.Value
	}
	id, _ := page()
	if again, _ := page(); again != id || id == "" {
		t.Fatalf("visitor %q then %q", id, again)
	}
	do(t, ctx,
		chromedp.Click(chromedp.CSS("#add")),
		chromedp.Evaluate[chromedp.Void](`tailor.track("video_played", {seconds: 30})`),
	)
	deadline := time.Now().Add(10 * time.Second)
	var prof *store.Profile
	for {
		var err error
		prof, err = s.p.Profile(context.Background(), id)
		if err == nil && prof.Counts["add_to_cart"] == 1 && prof.Counts["video_played"] == 1 && prof.Counts["page_ready"] >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events did not arrive: %+v %v", prof, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range prof.Recent.Len() {
		e := prof.Recent.At(i)
		if e.Name == "add_to_cart" && string(e.Props) != `{"product_id":"moneyball","price":"16.99"}` {
			t.Errorf("click properties %s", e.Props)
		}
		if e.Name == "video_played" && string(e.Props) != `{"seconds":30}` {
			t.Errorf("track properties %s", e.Props)
		}
	}
	if _, segs := page(); !strings.Contains(segs, "shopper") || !strings.Contains(segs, "viewer") {
		t.Errorf("segments %q", segs)
	}
}
