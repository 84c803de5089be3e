package middleware_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// slowUser is a memory store whose loads of user profiles take longer than
// the default LoadTimeout (a big profile, a busy database).
type slowUser struct {
	*memory.Store
	slow atomic.Bool
}

func (s *slowUser) Load(ctx context.Context, id string) (*store.Profile, error) {
	if s.slow.Load() && strings.HasPrefix(id, store.UserPrefix) {
		time.Sleep(400 * time.Millisecond)
	}
	return s.Store.Load(ctx, id)
}

// TestForgetReadsAliasesFromTheStore: Forget reads a user's aliases from
// the store itself, not through the request path's loads (bounded by
// LoadTimeout, skipped after a failure), whose partial state has no
// aliases and would leave every merged visitor profile stored.
func TestForgetReadsAliasesFromTheStore(t *testing.T) {
	st := &slowUser{Store: memory.New(store.Limits{})}
	ctx := context.Background()
	p := newP(t, st, nil)
	vid := fmt.Sprintf("%032x", 7)
	storedVisitorOf(t, p, st, vid, "/secret", "zoe")
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Another instance runs Forget, after p restarted (its merge log is gone).
	p.Close(ctx)
	q := newP(t, st, nil)
	st.slow.Store(true)
	if err := q.Forget(ctx, "zoe"); err != nil {
		t.Fatalf("Forget: %v", err)
	}
	st.slow.Store(false)
	if prof, err := st.Store.Load(ctx, vid); err == nil {
		t.Fatalf("Forget(zoe) returned nil but the merged visitor profile %s is still stored (pages %v)", vid, prof.Pages)
	}
}

// TestSignInDoesNotWaitBehindAStuckFlush: a sign-in while the store is
// known to be failing waits neither for the store nor for a flush stuck
// on it (which holds the flush lock for StoreTimeout).
func TestSignInDoesNotWaitBehindAStuckFlush(t *testing.T) {
	hs := &hanging{Store: memory.New(store.Limits{})}
	p := newP(t, hs, func(c *middleware.Config) {
		c.WriteBehind.FlushInterval = time.Hour
		c.StoreTimeout = 3 * time.Second
		c.LoadTimeout = 50 * time.Millisecond
	})
	h := p.Handler(echo)
	rec := serve(h, "GET", "/", browserUA)
	id, _, _ := strings.Cut(rec.Body.String(), " ")
	ck := rec.Result().Cookies()
	serve(h, "GET", "/?cat=red-sox", browserUA, ck...)
	hs.down.Store(true)
	t.Cleanup(func() { hs.down.Store(false) })
	go p.Flush(context.Background()) // the flusher's tick as the outage begins
	time.Sleep(20 * time.Millisecond)
	// A request's load times out: the store is now known to be failing.
	other := serve(h, "GET", "/", browserUA)
	serve(h, "GET", "/", browserUA, other.Result().Cookies()...)
	start := time.Now()
	err := p.Alias(context.Background(), id, "fay")
	hs.down.Store(false)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Alias (err %v) waited %v for a store known to be down", err, d)
	}
}

// failAfter fails ApplyBatch, after release is closed, while fail is set.
type failAfter struct {
	*memory.Store
	fail    atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (f *failAfter) ApplyBatch(ctx context.Context, bs []store.Batch) ([]*store.Profile, error) {
	if f.fail.Load() {
		close(f.entered)
		<-f.release
		return nil, fmt.Errorf("timeout")
	}
	return f.Store.ApplyBatch(ctx, bs)
}

// TestFailedWriteKeepsErasedEventsOut: an erasure announced while a flush
// of the profile is in flight removes its events; the failed write must
// not put them back.
func TestFailedWriteKeepsErasedEventsOut(t *testing.T) {
	mem := memory.New(store.Limits{})
	fs := &failAfter{Store: mem, entered: make(chan struct{}), release: make(chan struct{})}
	a := newP(t, mem, nil)
	b := newP(t, fs, func(c *middleware.Config) { c.WriteBehind.FlushInterval = time.Hour })
	h := b.Handler(echo)
	r0 := serve(h, "GET", "/", browserUA)
	id, _, _ := strings.Cut(r0.Body.String(), " ")
	ck := r0.Result().Cookies()
	serve(h, "GET", "/", browserUA, ck...)
	serve(h, "GET", "/x", browserUA, ck...)
	fs.fail.Store(true)
	done := make(chan error)
	go func() { done <- b.Flush(context.Background()) }()
	<-fs.entered
	if err := a.Forget(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	t.Logf("pending on b after the erasure was announced: %d", middleware.PendingFor(b, id))
	close(fs.release)
	<-done
	fs.fail.Store(false)
	if n := middleware.PendingFor(b, id); n != 0 {
		t.Fatalf("after a failed write, b holds %d events of the erased visitor again", n)
	}
}
