package parallel_test

import (
	"sync/atomic"
	"testing"

	"github.com/tailorhq/tailor/internal/parallel"
)

func TestFor(t *testing.T) {
	for _, n := range []int{0, 1, 2, 1000} {
		var calls atomic.Int64
		seen := make([]atomic.Int32, n)
		parallel.For(n, func(i int) { calls.Add(1); seen[i].Add(1) })
		if calls.Load() != int64(n) {
			t.Fatalf("n=%d: %d calls", n, calls.Load())
		}
		for i := range seen {
			if seen[i].Load() != 1 {
				t.Fatalf("n=%d: item %d called %d times", n, i, seen[i].Load())
			}
		}
	}
}
