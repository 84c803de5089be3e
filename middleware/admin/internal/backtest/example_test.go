package backtest_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tailorhq/tailor/middleware/admin/internal/backtest"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// A draft segment, "visited the pricing page twice this week", run against
// three stored visitors before it is published.
func Example() {
	ctx := context.Background()
	st := memory.New(store.Limits{})
	defer st.Close()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for i, days := range [][]int{{1, 2}, {1, 9, 10}, {3, 4, 5}} {
		var evs []store.Event
		for k, d := range days {
			evs = append(evs, store.Event{ID: store.EventID("example", uint64(10*i+k+1)), Type: store.TypePage,
				Path: "/pricing", Time: now.Add(-time.Duration(d) * 24 * time.Hour)})
		}
		st.Apply(ctx, fmt.Sprint("visitor-", i), evs)
	}
	draft, err := rules.Parse([]byte(`{"segments": [
		{"name": "pricing-curious", "rule": {"pageVisited": {"path": "/pricing", "min": 2, "within": "7d"}}}
	]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := backtest.New(backtest.Config{Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	id, err := r.Start(ctx, backtest.Request{Draft: draft, Segment: "pricing-curious", Now: now, Weeks: 2, By: "ann"})
	if err != nil {
		fmt.Println(err)
		return
	}
	var p backtest.Progress
	for p, err = r.Progress(ctx, id); err == nil && p.Running(); p, err = r.Progress(ctx, id) {
		time.Sleep(10 * time.Millisecond) // a dashboard shows p.Done, p.Total, p.Remaining()
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d of %d visitors\n", p.Result.Members, p.Result.Scanned)
	for _, s := range p.Result.Samples {
		fmt.Println(s.ID, s.Explanation.Clauses[0])
	}
	for _, h := range p.Result.History {
		fmt.Println(h.At.Format("Jan 2"), h.Members)
	}
	// Output:
	// 2 of 3 visitors
	// visitor-0 pass pages[/pricing] within 7d = 2, want >= 2
	// visitor-2 pass pages[/pricing] within 7d = 3, want >= 2
	// Nov 23 0
	// Nov 30 1
	// Dec 7 2
}
