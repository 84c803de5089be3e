package integration_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tailorhq/tailor/examples/shop/site"
)

// Screenshots of TestMarketerLoop, for people to look at.
const (
	marketerEditorShot   = "/tmp/tailor-marketer-editor.png"
	marketerBacktestShot = "/tmp/tailor-marketer-backtest.png"
	marketerAuditShot    = "/tmp/tailor-marketer-audit-log.png"
)

// shopVisitor is a browser of the shop, from Go.
type shopVisitor struct {
	t    *testing.T
	c    *http.Client
	base string
}

func newShopVisitor(t *testing.T, base string) *shopVisitor {
	jar, _ := cookiejar.New(nil)
	return &shopVisitor{t: t, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}, base: base}
}

func (v *shopVisitor) get(path string) {
	v.t.Helper()
	req, _ := http.NewRequest("GET", v.base+path, nil)
	req.Header.Set("User-Agent", ua)
	resp, err := v.c.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		v.t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
}

// segments returns the segments the shop at base serves the visitor.
func (v *shopVisitor) segments(base string) []string {
	v.t.Helper()
	req, _ := http.NewRequest("GET", base+"/_tailor/me", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", ua)
	// The cookie was set by v.base; the jar keys cookies by host, and
	// both shops listen on 127.0.0.1.
	resp, err := v.c.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	var me struct {
		Segments []string `json:"segments"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&me); err != nil {
		v.t.Fatalf("/_tailor/me: %v", err)
	}
	return me.Segments
}

// TestMarketerLoop is the marketer's loop end to end, on two shop
// instances sharing a Redis store: an editor signs in, creates "visited
// /pricing twice this week" with the form, backtests it, publishes it, and
// the other instance classifies a visitor into it within a second; the
// editor restores the previous version and the segment is gone as fast; a
// viewer cannot publish, and a forged cross-site POST is refused.
func TestMarketerLoop(t *testing.T) {
	ctx := newBrowser(t)
	newStore := redisStores(t)
	keys := filepath.Join(t.TempDir(), "shop.keys")
	openShop := func() (*site.Site, *httptest.Server) {
		s, err := site.Open(site.Config{Opened: newStore(t), Keys: keys, AdminPassword: "ed-pw", ViewerPassword: "view-pw",
			NoDemoHistory: true, FlushInterval: 50 * time.Millisecond, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(s.Handler())
		t.Cleanup(func() { srv.Close(); s.Close(context.Background()) })
		return s, srv
	}
	a, srvA := openShop()
	b, srvB := openShop()
	dash := srvA.URL + "/_tailor/admin/"

	// Visitors of the second shop: two visit /pricing twice, one once.
	var twice []*shopVisitor
	for range 2 {
		v := newShopVisitor(t, srvB.URL)
		for _, p := range []string{"/", "/pricing", "/pricing"} {
			v.get(p)
		}
		twice = append(twice, v)
	}
	once := newShopVisitor(t, srvB.URL)
	once.get("/")
	once.get("/pricing")
	for _, s := range []*site.Site{a, b} {
		if err := s.Personalizer().Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	c, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	if _, err := chromedp.Call(c, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:ed-pw"))
	if _, err := chromedp.Call(c, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(c, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	shot := func(path string) {
		t.Helper()
		png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Errorf("save the screenshot: %v", err)
		}
		t.Logf("screenshot: %s, %d bytes", path, len(png))
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(c, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}

	// The form: "visited /pricing twice this week".
	if err := chromedp.Do(c,
		chromedp.Navigate(dash+"definitions/segments/new"),
		chromedp.WaitVisible(chromedp.CSS("#arg-pageVisited-path")),
		chromedp.SetValue(chromedp.CSS("#seg-name"), "pricing-curious"),
		chromedp.SetValue(chromedp.CSS("#seg-description"), "visited /pricing twice this week"),
		chromedp.SetValue(chromedp.CSS("#arg-pageVisited-path"), "/pricing"),
		chromedp.SetValue(chromedp.CSS("#arg-pageVisited-min"), "2"),
		chromedp.SetValue(chromedp.CSS("#arg-pageVisited-within"), "7d"),
	); err != nil {
		t.Fatal(err)
	}
	shot(marketerEditorShot)
	if err := chromedp.Do(c, chromedp.Click(chromedp.CSS("#save-form")), chromedp.WaitVisible(chromedp.CSS("#done"))); err != nil {
		t.Fatal(err)
	}

	// The backtest: the two visitors who saw /pricing twice.
	if err := chromedp.Do(c,
		chromedp.Navigate(dash+"definitions/backtest"),
		chromedp.WaitVisible(chromedp.CSS("#backtest-segment")),
		chromedp.SetValue(chromedp.CSS("#backtest-segment"), "pricing-curious"),
		chromedp.Click(chromedp.CSS("#backtest-start")),
		chromedp.WaitVisible(chromedp.CSS("#backtest-finished")),
		chromedp.WaitVisible(chromedp.CSS("#backtest-members")),
	); err != nil {
		t.Fatal(err)
	}
	if got := text("#backtest-members"); got != "2" {
		t.Errorf("backtest: %s members, want 2", got)
	}
	shot(marketerBacktestShot)

	// Publish; the other instance classifies within a second.
	if err := chromedp.Do(c,
		chromedp.Navigate(dash+"definitions/publish"),
		chromedp.WaitVisible(chromedp.CSS("#publish-note")),
		chromedp.SetValue(chromedp.CSS("#publish-note"), "pricing page campaign"),
		chromedp.Click(chromedp.CSS("#publish-button")),
		chromedp.WaitVisible(chromedp.CSS("#version-1")),
	); err != nil {
		t.Fatal(err)
	}
	within := func(what string, ok func() bool) {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s: not after 10 s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
		took := time.Since(start)
		t.Logf("%s: %v", what, took)
		if took > time.Second {
			t.Errorf("%s took %v, more than a second", what, took)
		}
	}
	within("the second instance classifies into the published segment", func() bool {
		return slices.Contains(twice[0].segments(srvB.URL), "pricing-curious")
	})
	if slices.Contains(twice[1].segments(srvB.URL), "pricing-curious") != true || slices.Contains(once.segments(srvB.URL), "pricing-curious") {
		t.Errorf("after publishing: the other visitor of /pricing twice is in: %v, the visitor of /pricing once is in: %v",
			twice[1].segments(srvB.URL), once.segments(srvB.URL))
	}
	if row := text("#version-1"); !strings.Contains(row, "admin") || !strings.Contains(row, "pricing page campaign") {
		t.Errorf("audit log row of version 1: %q", row)
	}

	// Restore the previous version (the shop's built-in definitions): gone.
	if err := chromedp.Do(c, chromedp.Click(chromedp.CSS("#restore-0")), chromedp.WaitVisible(chromedp.CSS("#version-2"))); err != nil {
		t.Fatal(err)
	}
	within("the second instance drops the segment after the restore", func() bool {
		return !slices.Contains(twice[0].segments(srvB.URL), "pricing-curious")
	})
	if row := text("#version-2"); !strings.Contains(row, "restore") || !strings.Contains(row, "admin") {
		t.Errorf("audit log row of version 2: %q", row)
	}
	shot(marketerAuditShot)

	versions := func() int {
		req, _ := http.NewRequest("GET", dash+"definitions/versions", nil)
		req.SetBasicAuth("admin", "ed-pw")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for strings.Contains(string(body), fmt.Sprintf(`id="version-%d"`, n+1)) {
			n++
		}
		return n
	}
	if n := versions(); n != 2 {
		t.Fatalf("%d versions before the refusals, want 2", n)
	}

	// A viewer cannot publish, even from the dashboard's own origin.
	form := url.Values{"note": {"viewer"}, "base": {"2"}}
	req, _ := http.NewRequest("POST", dash+"definitions/versions/1/restore", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", srvA.URL)
	req.SetBasicAuth("viewer", "view-pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer's restore: %d, want 403", resp.StatusCode)
	}

	// A forged cross-site POST: a page on another site (localhost, not
	// 127.0.0.1) posts a form to the dashboard, with the editor's
	// credentials, which the browser sends along.
	_, port, _ := net.SplitHostPort(srvA.Listener.Addr().String())
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><form method="post" action="http://127.0.0.1:%s/_tailor/admin/definitions/versions/1/restore">
<input type="hidden" name="note" value="forged"><button id="go" type="submit">Win a prize</button></form>`, port)
	}))
	defer evil.Close()
	_, evilPort, _ := net.SplitHostPort(evil.Listener.Addr().String())
	var status atomic.Int64
	if err := chromedp.Listen(c, func(ev any) {
		if r, ok := ev.(*network.EventResponseReceived); ok && strings.Contains(r.Response.URL, "/restore") {
			status.Store(r.Response.Status)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(c,
		chromedp.Navigate("http://localhost:"+evilPort+"/"),
		chromedp.WaitVisible(chromedp.CSS("#go")),
		chromedp.Click(chromedp.CSS("#go")),
		chromedp.WaitReady(chromedp.CSS("body")),
	); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for status.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := status.Load(); got != http.StatusForbidden {
		t.Errorf("the forged cross-site POST: status %d, want 403", got)
	}
	if n := versions(); n != 2 {
		t.Errorf("%d versions after a viewer's and a forged restore, want 2", n)
	}
}
