// Package parallel runs independent pieces of work on all CPUs.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// For calls fn(0) ... fn(n-1) on up to GOMAXPROCS goroutines and returns
// when all calls have returned. With one CPU or one item it calls fn in
// order on the calling goroutine.
func For(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}
