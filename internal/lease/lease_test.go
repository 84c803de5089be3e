package lease

import (
	"context"
	"testing"
	"time"
)

// The table's own clock decides expiry: a lease lives exactly its ttl.
func TestTableExpiresByItsClock(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tb := &Table{now: func() time.Time { return now }}
	ctx := context.Background()
	if ok, _ := tb.Lease(ctx, false, "jobs", "a", time.Minute); !ok {
		t.Fatal("a free lease was refused")
	}
	now = now.Add(time.Minute - time.Nanosecond)
	if ok, _ := tb.Lease(ctx, false, "jobs", "b", time.Minute); ok {
		t.Fatal("b took the lease a nanosecond before it expired")
	}
	now = now.Add(time.Nanosecond)
	if ok, _ := tb.Lease(ctx, false, "jobs", "b", time.Minute); !ok {
		t.Fatal("b could not take an expired lease")
	}
}
