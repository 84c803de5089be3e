package cookie

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// TestSeenCacheModel runs random Sets, Gets and Dels of values, more
// than the cache holds, against a map: a value found is always found
// with its own entry, a value deleted is not found, the entries held
// never exceed the cache's size, and a value just set is found.
func TestSeenCacheModel(t *testing.T) {
	c := newSeenCache(64)
	if n := len(c.sets) * seenWays; n != 64 {
		t.Fatalf("a cache of 64 entries holds %d", n)
	}
	r := rand.New(rand.NewPCG(1, 2))
	set := map[string]*seenCookie{}
	for step := range 20_000 {
		v := fmt.Sprint("value-", r.IntN(300))
		switch r.IntN(4) {
		case 0, 1:
			e := &seenCookie{value: v, id: fmt.Sprint(step)}
			c.Set(v, e)
			set[v] = e
			if got, ok := c.Get(v); !ok || got != e {
				t.Fatalf("step %d: %s just set is not found", step, v)
			}
		case 2:
			c.Del(v)
			delete(set, v)
			if _, ok := c.Get(v); ok {
				t.Fatalf("step %d: %s found after Del", step, v)
			}
		default:
			if got, ok := c.Get(v); ok && (got != set[v] || got.value != v) {
				t.Fatalf("step %d: Get(%s) = the entry of %s, set at step %s", step, v, got.value, got.id)
			}
		}
	}
	held := 0
	for i := range c.sets {
		for j := range c.sets[i].ways {
			if c.sets[i].ways[j].Load() != nil {
				held++
			}
		}
	}
	if held > 64 {
		t.Fatalf("%d entries held", held)
	}
	c.Close()
	for v := range set {
		if _, ok := c.Get(v); ok {
			t.Fatalf("%s found after Close", v)
		}
	}
}

// TestSeenCacheConcurrent: Gets, Sets and Dels from several goroutines
// (under -race), every Get finding only its own value's entry.
func TestSeenCacheConcurrent(t *testing.T) {
	c := newSeenCache(16)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for range 20_000 {
				v := fmt.Sprint("value-", r.IntN(100))
				switch r.IntN(3) {
				case 0:
					c.Set(v, &seenCookie{value: v})
				case 1:
					c.Del(v)
				default:
					if e, ok := c.Get(v); ok && e.value != v {
						t.Errorf("Get(%s) found the entry of %s", v, e.value)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
