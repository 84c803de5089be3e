package integration_test

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tailorhq/tailor/internal/testenv"
)

// newBrowser starts headless Chromium with its own profile directory.
func newBrowser(t *testing.T) context.Context { return testenv.NewBrowser(t) }

// hero returns the variant of the home page hero.
func hero(t *testing.T, ctx context.Context, base string) string {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("open %s/: %v", base, err)
	}
	res, err := chromedp.Run(c, chromedp.AttributeValue(chromedp.CSS(`[data-slot="hero"]`), "data-variant"))
	if err != nil || !res.Exists {
		t.Fatalf("hero data-variant: %+v %v", res, err)
	}
	return res.Value
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatal(err)
	}
}

// TestShopInBrowser: open the shop and see welcome; view two Red Sox
// products and see red-sox; buy something and see thank-you; restart the
// shop on the same database and the same browser is still recognised.
func TestShopInBrowser(t *testing.T) {
	ctx := newBrowser(t)
	db := filepath.Join(t.TempDir(), "tailor.db")
	s := startShop(t, db)

	if got := hero(t, ctx, s.URL); got != "welcome" {
		t.Fatalf("first visit: hero %q, want welcome", got)
	}
	do(t, ctx, chromedp.Navigate(s.URL+"/products/red-sox-banner"), chromedp.Navigate(s.URL+"/products/red-sox-potato-head"))
	if got := hero(t, ctx, s.URL); got != "red-sox" {
		t.Fatalf("after two Red Sox products: hero %q, want red-sox", got)
	}
	do(t, ctx,
		chromedp.Navigate(s.URL+"/products/moneyball"),
		chromedp.Click(chromedp.CSS("#add-to-cart")),
		chromedp.WaitVisible(chromedp.CSS("#checkout")),
		chromedp.Click(chromedp.CSS("#checkout")),
		chromedp.WaitVisible(chromedp.CSS(`[data-slot="hero"][data-variant="thank-you"]`)),
	)
	if got := hero(t, ctx, s.URL); got != "thank-you" {
		t.Fatalf("after buying: hero %q, want thank-you", got)
	}

	s.stop(syscall.SIGINT)
	s2 := startShop(t, db)
	defer s2.stop(syscall.SIGTERM)
	if got := hero(t, ctx, s2.URL); got == "welcome" || got != "thank-you" {
		t.Fatalf("after a restart: hero %q, want thank-you", got)
	}
}
