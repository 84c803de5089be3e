package integration_test

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestShopMeInBrowser: /_tailor/me in Chromium stays short (the raw profile
// is folded away), shows the user once signed in, and the sign-out button
// makes the browser a new anonymous visitor.
func TestShopMeInBrowser(t *testing.T) {
	ctx := newBrowser(t)
	s := startShop(t, filepath.Join(t.TempDir(), "tailor.db"))
	defer s.stop(syscall.SIGTERM)
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(c, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	text := func(sel string) string {
		t.Helper()
		got, err := chromedp.Run(c, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return got
	}
	do(t, c,
		chromedp.Navigate(s.URL+"/products/red-sox-banner"),
		chromedp.Navigate(s.URL+"/products/red-sox-potato-head"),
		chromedp.SetValue(chromedp.CSS(`input[name="email"]`), "ana@example.com"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#logout")),
		chromedp.Navigate(s.URL+"/_tailor/me"),
		chromedp.WaitVisible(chromedp.CSS("#identity")),
	)
	visitor := text("#visitor-id")
	if got := text("#user-id"); got != "ana@example.com" || len(visitor) != 32 {
		t.Errorf("signed in: user %q, visitor %q", got, visitor)
	}
	height, err := chromedp.Run(c, chromedp.Evaluate[int](`document.documentElement.scrollHeight`))
	if err != nil || height > 2000 {
		t.Errorf("/_tailor/me is %d px tall (%v), want at most 2000", height, err)
	}
	open, err := chromedp.Run(c, chromedp.Evaluate[bool](`document.querySelector("#profile-details").open`))
	if err != nil || open {
		t.Errorf("the raw profile is unfolded (%v)", err)
	}
	// Unfolded, the profile scrolls within a bounded box.
	do(t, c, chromedp.Click(chromedp.CSS("#profile-details summary")))
	box, err := chromedp.Run(c, chromedp.Evaluate[int](`document.querySelector("#profile").getBoundingClientRect().height`))
	if err != nil || box == 0 || box > 500 {
		t.Errorf("the unfolded profile is %d px tall (%v)", box, err)
	}

	do(t, c,
		chromedp.Click(chromedp.CSS("#me-logout")),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.Navigate(s.URL+"/_tailor/me"),
		chromedp.WaitVisible(chromedp.CSS("#identity")),
	)
	if got, now := text("#user-id"), text("#visitor-id"); got != "not signed in" || now == visitor {
		t.Errorf("signed out: user %q, visitor %q (was %q)", got, now, visitor)
	}
}
