package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tailorhq/tailor/examples/saas/site"
	"github.com/tailorhq/tailor/internal/testenv"
)

const testWriteKey = "wk-browser-test"

// server is the command's run, serving in the test's process.
type server struct {
	URL  string
	stop context.CancelFunc
	done chan error
	mu   sync.Mutex
	logs strings.Builder
}

var servingRE = regexp.MustCompile(`msg="saas: serving" url=(\S+)`)

// start runs the command as main does, on a free port, until the test
// ends; the test checks that it stops cleanly.
func start(t *testing.T) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{stop: cancel, done: make(chan error, 1)}
	pr, pw := io.Pipe()
	urlc := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.mu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
		io.Copy(io.Discard, pr) // a line too long for the scanner: do not block run
	}()
	cfg := site.Config{DB: filepath.Join(t.TempDir(), "saas.db"), WriteKeys: []string{testWriteKey}, AdminPassword: "secret"}
	go func() {
		err := run(ctx, "127.0.0.1:0", cfg, pw)
		pw.Close()
		<-scanned // every line of the output is in s.logs
		s.done <- err
	}()
	select {
	case s.URL = <-urlc:
	case err := <-s.done:
		t.Fatalf("run: %v\n%s", err, s.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("the site did not start within 30s:\n%s", s.log())
	}
	t.Cleanup(func() {
		s.stop()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("the site did not stop within 30s")
		}
		if !strings.Contains(s.log(), "every event written") {
			t.Errorf("the site did not say it wrote every event:\n%s", s.log())
		}
	})
	return s
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// newBrowser starts Chromium, or skips the test without it.
func newBrowser(t *testing.T) context.Context { return testenv.NewBrowser(t) }

// visitor opens a tab in a browser context of its own: a visitor with
// their own cookies.
func visitor(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1200, 900)); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return ctx
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatal(err)
	}
}

// variant returns the variant of the slot on the current page, "" if the
// slot is not on it.
func variant(t *testing.T, ctx context.Context, slot string) string {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[string](`(document.querySelector('[data-slot="`+slot+`"]') || {dataset: {variant: ""}}).dataset.variant`))
	if err != nil {
		t.Fatalf("slot %s: %v", slot, err)
	}
	return v
}

// screenshot saves the page as /tmp/tailor-saas-NAME.png, for people to
// look at.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	shot, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(os.TempDir(), "tailor-saas-"+name+".png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Errorf("save the screenshot: %v", err)
	}
	t.Logf("screenshot: %s", path)
}

// crm sends a Segment identify call with the write key, as the CRM does.
func crm(t *testing.T, base, body string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/_tailor/v1/identify", strings.NewReader(body))
	req.SetBasicAuth(testWriteKey, "")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("identify: %s %s", resp.Status, b)
	}
}

// TestStoriesInBrowser drives the four stories of the site in Chromium,
// each visitor in a browser context of their own, against the command's
// run: the call with sales after two views of the pricing page, the
// community banner after signing in with X as a follower, the case study of
// the industry the CRM sent, and the webinar after a newsletter's link.
func TestStoriesInBrowser(t *testing.T) {
	s := start(t)
	browser := newBrowser(t)

	t.Run("talk to sales", func(t *testing.T) {
		ctx := visitor(t, browser)
		do(t, ctx, chromedp.Navigate(s.URL+"/"))
		if got := variant(t, ctx, "cta"); got != "trial" {
			t.Fatalf("first visit: cta %q, want trial", got)
		}
		do(t, ctx, chromedp.Click(chromedp.CSS(`nav a[href="/pricing"]`)), chromedp.WaitVisible(chromedp.CSS(".plans")),
			chromedp.Navigate(s.URL+"/pricing"), chromedp.Click(chromedp.CSS(".brand")), chromedp.WaitVisible(chromedp.CSS(".hero")))
		if got := variant(t, ctx, "cta"); got != "talk-to-sales" {
			t.Fatalf("after two views of the pricing page: cta %q, want talk-to-sales", got)
		}
		screenshot(t, ctx, "talk-to-sales")
		do(t, ctx, chromedp.Click(chromedp.CSS(`nav a[href="/pricing"]`)), chromedp.WaitVisible(chromedp.CSS(".plans")))
		if got := variant(t, ctx, "cta"); got != "talk-to-sales" {
			t.Fatalf("pricing page: cta %q, want talk-to-sales", got)
		}
		screenshot(t, ctx, "pricing")
		do(t, ctx, chromedp.Navigate(s.URL+"/"))
		do(t, ctx, chromedp.Click(chromedp.CSS(`[data-slot="cta"] a`)),
			chromedp.WaitVisible(chromedp.CSS(`#request-call`)),
			chromedp.SendKeys(chromedp.CSS(`main input[name="email"]`), "lin@example.com"),
			chromedp.Click(chromedp.CSS("#request-call")),
			chromedp.WaitVisible(chromedp.CSS("#sent")))
	})

	t.Run("community banner", func(t *testing.T) {
		ctx := visitor(t, browser)
		do(t, ctx, chromedp.Navigate(s.URL+"/"))
		if got := variant(t, ctx, "community"); got != "" {
			t.Fatalf("anonymous visitor: community banner %q, want none", got)
		}
		do(t, ctx, chromedp.Click(chromedp.CSS("#signin-x")), chromedp.WaitVisible(chromedp.CSS(`input[name="handle"]`)))
		screenshot(t, ctx, "signin-x")
		do(t, ctx,
			chromedp.SendKeys(chromedp.CSS(`input[name="handle"]`), "@grace_h"),
			chromedp.Click(chromedp.CSS("#authorize")),
			chromedp.WaitVisible(chromedp.CSS(`[data-slot="community"]`)))
		if got := variant(t, ctx, "community"); got != "community" {
			t.Fatalf("follower on X: community banner %q, want community", got)
		}
		do(t, ctx, chromedp.Click(chromedp.CSS(`nav a[href="/customers"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-slot="community"]`)))
		screenshot(t, ctx, "community")
	})

	t.Run("case study of their industry", func(t *testing.T) {
		crm(t, s.URL, `{"userId": "ada@example.com", "traits": {"crm": {"stage": "opportunity"}, "industry": "healthcare"}}`)
		ctx := visitor(t, browser)
		do(t, ctx, chromedp.Navigate(s.URL+"/"))
		if got := variant(t, ctx, "case-study"); got != "customers" {
			t.Fatalf("before sign-in: case study %q, want customers", got)
		}
		do(t, ctx, chromedp.SendKeys(chromedp.CSS(`header input[name="email"]`), "ada@example.com"),
			chromedp.Click(chromedp.CSS("#signin")),
			chromedp.WaitVisible(chromedp.CSS("#signout")))
		if got := variant(t, ctx, "case-study"); got != "healthcare" {
			t.Fatalf("opportunity in healthcare: case study %q, want healthcare", got)
		}
		screenshot(t, ctx, "case-study")
		do(t, ctx, chromedp.Click(chromedp.CSS(`[data-slot="case-study"] a`)),
			chromedp.WaitVisible(chromedp.CSS(`article[data-industry="healthcare"]`)))
	})

	t.Run("webinar", func(t *testing.T) {
		ctx := visitor(t, browser)
		do(t, ctx, chromedp.Navigate(s.URL+"/?utm_source=newsletter&utm_medium=email&utm_campaign=dec-digest"))
		if got := variant(t, ctx, "webinar"); got != "" {
			t.Fatalf("the newsletter's landing: webinar %q, want none yet", got)
		}
		do(t, ctx, chromedp.Click(chromedp.CSS(`nav a[href="/pricing"]`)), chromedp.WaitVisible(chromedp.CSS(".plans")),
			chromedp.Click(chromedp.CSS(".brand")), chromedp.WaitVisible(chromedp.CSS(".hero")))
		if got := variant(t, ctx, "webinar"); got != "webinar" {
			t.Fatalf("after a newsletter click: webinar %q, want webinar", got)
		}
		screenshot(t, ctx, "webinar")
		do(t, ctx, chromedp.Click(chromedp.CSS(`[data-slot="webinar"] a`)),
			chromedp.WaitVisible(chromedp.CSS(`main input[name="email"]`)),
			chromedp.SendKeys(chromedp.CSS(`main input[name="email"]`), "lin@example.com"),
			chromedp.Click(chromedp.CSS("#register")),
			chromedp.WaitVisible(chromedp.CSS("#registered")))
	})
}
