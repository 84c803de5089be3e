package assoc_test

import (
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/tailorhq/tailor/rules/assoc"
)

func TestZZProf(t *testing.T) {
	if os.Getenv("ZZPROF") == "" {
		t.Skip()
	}
	m := benchModel(&testing.B{})
	f, _ := os.Create("/tmp/learn.prof")
	pprof.StartCPUProfile(f)
	start := time.Now()
	n := 50000
	for i := range n {
		m.Learn(assoc.Basket{}, assoc.Basket{Bought: bench.baskets[i%len(bench.baskets)]})
	}
	t.Logf("learn %v/op", time.Since(start)/time.Duration(n))
	pprof.StopCPUProfile()
	f2, _ := os.Create("/tmp/rec.prof")
	pprof.StartCPUProfile(f2)
	start = time.Now()
	for i := range n {
		m.Recommend(bench.profiles[i%len(bench.profiles)], 10)
	}
	t.Logf("recommend %v/op", time.Since(start)/time.Duration(n))
	pprof.StopCPUProfile()
}
