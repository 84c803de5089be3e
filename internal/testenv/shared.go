package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/chromedp/chromedp"
	goredis "github.com/redis/go-redis/v9"
)

// RedisPrefix returns a client of the local Redis server and a fresh key
// prefix ("tailortest:<name>:<random>:") whose keys are deleted when t
// ends, or skips t without a server.
func RedisPrefix(t testing.TB, name string) (*goredis.Client, string) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: Redis(t)})
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "tailortest:" + name + ":" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		defer c.Close()
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("delete test keys %s*: %v", prefix, err)
		}
	})
	return c, prefix
}

// NewBrowser starts headless Chromium with its own profile directory and
// the flags every browser test uses, or skips t without Chromium. The
// browser stops when t ends.
func NewBrowser(t testing.TB) context.Context {
	t.Helper()
	path := Browser(t)
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	// Start the browser with a context without timeout (see chromedp.Run).
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}
