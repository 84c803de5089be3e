package backtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// stallLease is a memory store whose Lease, for a holder of instance b,
// first waits for go: b's Start stalls between reading the latest
// backtest and taking the lease.
type stallLease struct {
	*memory.Store
	stalled chan struct{} // closed when b is stalled
	goOn    chan struct{}
	once    bool
}

func (s *stallLease) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if strings.HasPrefix(holder, "b/") && !s.once {
		s.once = true
		close(s.stalled)
		<-s.goOn
	}
	return s.Store.Lease(ctx, name, holder, ttl)
}

// TestStartsOnTwoInstances: two instances start backtests at once; the one
// that took the lease runs and ends before the other takes it. Each keeps
// its own progress: the second does not write over the first's documents
// (before, both had read the same latest backtest and picked the same
// sequence number, so the first's progress read as gone).
func TestStartsOnTwoInstances(t *testing.T) {
	ctx := context.Background()
	mem := memory.New(store.Limits{})
	t.Cleanup(func() { mem.Close() })
	seed(t, mem, 40)
	st := &stallLease{Store: mem, stalled: make(chan struct{}), goOn: make(chan struct{})}
	a, b := newRunner(t, st, "a"), newRunner(t, st, "b")
	req := Request{Draft: mustParse(t, draftFile), Segment: "pricing-curious", Now: testNow}
	type started struct {
		id  string
		err error
	}
	bc := make(chan started, 1)
	go func() {
		id, err := b.Start(ctx, req)
		bc <- started{id, err}
	}()
	<-st.stalled
	idA, err := a.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	pa := wait(t, a, idA)
	close(st.goOn)
	sb := <-bc
	if sb.err != nil {
		t.Fatal(sb.err)
	}
	wait(t, b, sb.id)
	got, err := a.Progress(ctx, idA)
	if err != nil {
		t.Fatalf("the first backtest %s, after a second one %s ran: %v", idA, sb.id, err)
	}
	if got.Result == nil || got.Result.Members != pa.Result.Members {
		t.Fatalf("the first backtest's progress became %+v", got)
	}
	if last, err := a.Last(ctx); err != nil || last.ID != sb.id {
		t.Fatalf("Last is %+v, %v; want the second backtest %s", last, err, sb.id)
	}
}
