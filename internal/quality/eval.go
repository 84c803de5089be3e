package quality

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// A Recommender learns baskets and recommends items to complete one.
type Recommender interface {
	// Learn learns one visitor's basket, a set of items.
	Learn(basket []string)
	// Recommend returns up to k items, best first, for a visitor whose
	// basket holds the visible items, never one of them and never one
	// twice. Once learning is done, it must be safe for concurrent use:
	// Evaluate calls it from several goroutines.
	Recommend(visible []string, k int) []string
}

// An Explainer is a Recommender that can say how many of its
// recommendations a rule explains, rather than popularity.
type Explainer interface {
	Recommender
	// RecommendExplained returns what Recommend returns, and how many of
	// the items come with a rule.
	RecommendExplained(visible []string, k int) (items []string, explained int)
}

// A Result is what Evaluate measured.
type Result struct {
	// Baskets is the number of test baskets evaluated: those of at least
	// two items.
	Baskets int
	// HitRate is the share of the baskets whose hidden item (one, drawn at
	// random) was among the k recommendations for the others.
	HitRate float64
	// Recall is the mean over the baskets of |hidden ∩ recommended| /
	// min(|hidden|, k), where half the items (at least one, drawn at
	// random) are hidden.
	Recall float64
	// Explained is the share of the recommendations that come with a
	// rule, for an Explainer; NaN for another Recommender.
	Explained float64
	// Invalid counts the recommendations that broke the contract of
	// Recommend: a visible item, an item given twice, more than k items.
	Invalid int
}

// Evaluate trains rec on the baskets of train, in order, then measures
// how well it completes the baskets of test that hold at least two items
// (see Result), with k recommendations each. What is hidden is drawn from
// seed and the basket's position in test, so that it does not depend on
// the order baskets are evaluated in, which is concurrent.
func Evaluate(train, test Dataset, rec Recommender, k int, seed uint64) Result {
	for _, b := range train.Baskets {
		rec.Learn(b)
	}
	ask := rec.Recommend
	ex, explains := rec.(Explainer)
	var explained, given atomic.Int64
	if explains {
		ask = func(visible []string, k int) []string {
			items, n := ex.RecommendExplained(visible, k)
			explained.Add(int64(n))
			given.Add(int64(len(items)))
			return items
		}
	}

	hits := make([]bool, len(test.Baskets))
	recall := make([]float64, len(test.Baskets))
	var invalid atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			visible := make([]string, 0, 64)
			var hidden []string
			for {
				i := int(next.Add(1) - 1)
				if i >= len(test.Baskets) {
					return
				}
				b := test.Baskets[i]
				if len(b) < 2 {
					continue
				}
				r := rand.New(rand.NewPCG(seed, uint64(i)))

				// One item hidden.
				h := r.IntN(len(b))
				visible = append(append(visible[:0], b[:h]...), b[h+1:]...)
				recs := ask(visible, k)
				invalid.Add(int64(broken(recs, visible, k)))
				hits[i] = slices.Contains(recs, b[h])

				// Half the items hidden.
				perm := r.Perm(len(b))
				nh := max(1, len(b)/2)
				hide := make([]bool, len(b))
				for _, j := range perm[:nh] {
					hide[j] = true
				}
				visible, hidden = visible[:0], hidden[:0]
				for j, it := range b {
					if hide[j] {
						hidden = append(hidden, it)
					} else {
						visible = append(visible, it)
					}
				}
				recs = ask(visible, k)
				invalid.Add(int64(broken(recs, visible, k)))
				found := 0
				for _, it := range hidden {
					if slices.Contains(recs, it) {
						found++
					}
				}
				recall[i] = float64(found) / float64(min(nh, k))
			}
		}()
	}
	wg.Wait()

	res := Result{Explained: math.NaN(), Invalid: int(invalid.Load())}
	nHits, sum := 0, 0.0
	for i, b := range test.Baskets {
		if len(b) < 2 {
			continue
		}
		res.Baskets++
		if hits[i] {
			nHits++
		}
		sum += recall[i]
	}
	if res.Baskets > 0 {
		res.HitRate = float64(nHits) / float64(res.Baskets)
		res.Recall = sum / float64(res.Baskets)
	}
	if explains && given.Load() > 0 {
		res.Explained = float64(explained.Load()) / float64(given.Load())
	}
	return res
}

// broken counts the recommendations that break Recommend's contract.
func broken(recs, visible []string, k int) int {
	n := max(len(recs)-k, 0)
	for i, it := range recs {
		if slices.Contains(visible, it) || slices.Contains(recs[:i], it) {
			n++
		}
	}
	return n
}
