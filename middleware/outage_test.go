package middleware_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// flakyStore is a memory store that can fail (down: every call returns
// errStoreDown at once) or hang (Load blocks, ignoring its context, until
// release is closed), as a store behind a client that does not honour
// deadlines does.
type flakyStore struct {
	store.Store
	down    atomic.Bool
	hang    atomic.Bool
	release chan struct{}

	mu       sync.Mutex
	deadline time.Duration // the time left before the deadline of the last hung Load
}

var errStoreDown = errors.New("store down")

func newFlakyStore() *flakyStore {
	return &flakyStore{Store: memory.New(store.Limits{}), release: make(chan struct{})}
}

func (s *flakyStore) Load(ctx context.Context, id string) (*store.Profile, error) {
	if s.hang.Load() {
		d, ok := ctx.Deadline()
		s.mu.Lock()
		s.deadline = -1
		if ok {
			s.deadline = time.Until(d)
		}
		s.mu.Unlock()
		<-s.release
	}
	if s.down.Load() {
		return nil, errStoreDown
	}
	return s.Store.Load(ctx, id)
}

func (s *flakyStore) Apply(ctx context.Context, id string, evs []store.Event) (*store.Profile, error) {
	if s.down.Load() {
		return nil, errStoreDown
	}
	return s.Store.Apply(ctx, id, evs)
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLoadTimeoutBoundsRequests: a store that does not answer, and ignores
// the context's deadline, holds a request no longer than
// Config.LoadTimeout; the store call gets that deadline too.
func TestLoadTimeoutBoundsRequests(t *testing.T) {
	t.Parallel()
	st := newFlakyStore()
	defer close(st.release)
	const bound = 100 * time.Millisecond
	p := newP(t, st, func(c *middleware.Config) {
		c.LoadTimeout = bound
		c.Logger = slog.New(slog.DiscardHandler)
	})
	h := p.Handler(echo)
	ck := serve(h, "GET", "/", browserUA).Result().Cookies() // a new visitor: nothing loaded
	st.hang.Store(true)
	served := make(chan int, 1)
	start := time.Now()
	go func() { served <- serve(h, "GET", "/", browserUA, ck...).Code }()
	select {
	case code := <-served:
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the request still waits on the store after 20s")
	}
	// A generous margin for busy machines: what matters is that the
	// request did not wait for the store.
	if d := time.Since(start); d > bound+2*time.Second {
		t.Errorf("the request took %v, LoadTimeout is %v", d, bound)
	}
	st.mu.Lock()
	left := st.deadline
	st.mu.Unlock()
	if left < 0 || left > bound {
		t.Errorf("the store's Load had %v left before its deadline, want at most %v", left, bound)
	}
	if n := p.Stats().LoadErrors; n != 1 {
		t.Errorf("LoadErrors = %d, want 1", n)
	}
}

// TestFlushRecoversWithinInterval: after a long outage (long enough that
// a doubling backoff would wait seconds), pending events are written
// within a few FlushIntervals of the store answering again, and the
// outage is logged once, and its end once.
func TestFlushRecoversWithinInterval(t *testing.T) {
	t.Parallel()
	st := newFlakyStore()
	defer close(st.release)
	var logs lockedBuffer
	const interval = 100 * time.Millisecond
	p := newP(t, st, func(c *middleware.Config) {
		c.WriteBehind.FlushInterval = interval
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	h := p.Handler(echo)
	rec := serve(h, "GET", "/", browserUA)
	id, _, _ := strings.Cut(rec.Body.String(), " ")
	ck := rec.Result().Cookies()
	st.down.Store(true)
	serve(h, "GET", "/down", browserUA, ck...) // the first view, and this one, pend
	deadline := time.Now().Add(30 * time.Second)
	for p.Stats().FlushErrors == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no flush failed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(80 * interval) // the outage goes on: a backoff would reach 64 intervals
	st.down.Store(false)
	healed := time.Now()
	for middleware.PendingFor(p, id) != 0 {
		if time.Now().After(healed.Add(30 * time.Second)) {
			t.Fatal("events still pending 30s after the store came back")
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(healed)
	prof, err := st.Store.Load(context.Background(), id)
	if err != nil || prof.Counts["page"] != 2 {
		t.Fatalf("stored profile %+v, %v; want 2 page views", prof, err)
	}
	// One interval to the next probe, one flush; thirty leave room for a
	// busy machine, and are far below what a backoff would wait.
	if took > 30*interval {
		t.Errorf("events written %v after the store came back, FlushInterval %v", took, interval)
	}
	out := logs.String()
	if n := strings.Count(out, "retrying every FlushInterval"); n != 1 {
		t.Errorf("the flusher logged %d failures, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "the store answers again") {
		t.Errorf("the recovery was not logged:\n%s", out)
	}
}
