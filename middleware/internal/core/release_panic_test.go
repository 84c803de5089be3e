package core

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/tailorhq/tailor/store"
)

// panicky is a store whose ApplyBatch panics once, when armed.
type panicky struct {
	*flaky
	once, armed atomic.Bool
}

func (p *panicky) ApplyBatch(ctx context.Context, bs []store.Batch) ([]*store.Profile, error) {
	if p.armed.Load() && p.once.CompareAndSwap(false, true) {
		panic("store bug")
	}
	return p.flaky.ApplyBatch(ctx, bs)
}

// TestFlushPanicKeepsEventsInFlight checks that a flush whose store
// panics (recovered by a caller of Flush) does not give the queue back
// the arrays of the batches still in flight: the queue keeps serving the
// events, not cleared ones.
func TestFlushPanicKeepsEventsInFlight(t *testing.T) {
	st := &panicky{flaky: newFlaky(0, false)}
	c, _, pid, w := storedVisitor(t, st)
	st.armed.Store(true)
	c.Record(w, track("boom"))
	func() {
		defer func() { recover() }()
		c.Flush(context.Background())
	}()
	evs := c.queue.Get(pid)
	if len(evs) == 0 {
		t.Fatal("the event in flight is gone from the queue")
	}
	for _, e := range evs {
		if e.ID == "" {
			t.Fatalf("the queue serves a cleared event in flight: %+v", evs)
		}
	}
}
