package quality

import (
	"cmp"
	"math"
	"slices"
	"sync"

	"github.com/tailorhq/tailor/rules/assoc"
	"github.com/tailorhq/tailor/store"
)

// Popularity recommends the items in the most baskets that are not
// visible (ties by id). The zero value is ready to use.
type Popularity struct {
	mu    sync.Mutex
	count map[string]int
	rank  []string // nil when learning made it stale
}

// Learn counts the items of basket.
func (p *Popularity) Learn(basket []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count == nil {
		p.count = make(map[string]int)
	}
	for _, it := range basket {
		p.count[it]++
	}
	p.rank = nil
}

func (p *Popularity) ranking() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rank == nil {
		p.rank = make([]string, 0, len(p.count))
		for it := range p.count {
			p.rank = append(p.rank, it)
		}
		slices.SortFunc(p.rank, func(a, b string) int {
			if c := cmp.Compare(p.count[b], p.count[a]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
	}
	return p.rank
}

// Recommend returns the k most popular items that are not visible.
func (p *Popularity) Recommend(visible []string, k int) []string {
	out := make([]string, 0, k)
	for _, it := range p.ranking() {
		if len(out) == k {
			break
		}
		if !slices.Contains(visible, it) {
			out = append(out, it)
		}
	}
	return out
}

// ItemKNN recommends by item-to-item co-occurrence: an item z scores the
// sum, over the visible items x, of the cosine similarity
// count(x,z) / sqrt(count(x)·count(z)); ties go to the more popular item,
// then the smaller id. When fewer than k items score, the most popular
// others complete the list. The zero value is ready to use.
type ItemKNN struct {
	mu      sync.Mutex
	index   map[string]int32
	ids     []string
	count   []int
	baskets [][]int32
	built   *knn // nil when learning made it stale
	pool    sync.Pool
}

// knn is what ItemKNN computes from the baskets it learnt.
type knn struct {
	ids    []string
	index  map[string]int32
	byPop  []int32      // items, the most popular first, then by id
	rankOf []int32      // item → its position in byPop
	nbr    [][]neighbor // item → the items it occurs with
}

type neighbor struct {
	item int32
	cos  float64
}

// Learn records basket.
func (kn *ItemKNN) Learn(basket []string) {
	kn.mu.Lock()
	defer kn.mu.Unlock()
	if kn.index == nil {
		kn.index = make(map[string]int32)
	}
	row := make([]int32, 0, len(basket))
	for _, it := range basket {
		i, ok := kn.index[it]
		if !ok {
			i = int32(len(kn.ids))
			kn.index[it] = i
			kn.ids = append(kn.ids, it)
			kn.count = append(kn.count, 0)
		}
		kn.count[i]++
		row = append(row, i)
	}
	kn.baskets = append(kn.baskets, row)
	kn.built = nil
}

// model returns the similarities of the baskets learnt so far, computing
// them after learning.
func (kn *ItemKNN) model() *knn {
	kn.mu.Lock()
	defer kn.mu.Unlock()
	if kn.built != nil {
		return kn.built
	}
	n := len(kn.ids)
	m := &knn{ids: kn.ids[:n:n], index: make(map[string]int32, n), rankOf: make([]int32, n), nbr: make([][]neighbor, n)}
	for id, i := range kn.index {
		m.index[id] = i
	}
	m.byPop = make([]int32, n)
	for i := range m.byPop {
		m.byPop[i] = int32(i)
	}
	slices.SortFunc(m.byPop, func(a, b int32) int {
		if c := cmp.Compare(kn.count[b], kn.count[a]); c != 0 {
			return c
		}
		return cmp.Compare(kn.ids[a], kn.ids[b])
	})
	for r, i := range m.byPop {
		m.rankOf[i] = int32(r)
	}
	postings := make([][]int32, n)
	for b, row := range kn.baskets {
		for _, i := range row {
			postings[i] = append(postings[i], int32(b))
		}
	}
	co := make([]int, n)
	var touched []int32
	for x := range n {
		touched = touched[:0]
		for _, b := range postings[x] {
			for _, z := range kn.baskets[b] {
				if z == int32(x) {
					continue
				}
				if co[z] == 0 {
					touched = append(touched, z)
				}
				co[z]++
			}
		}
		slices.Sort(touched)
		nb := make([]neighbor, len(touched))
		for j, z := range touched {
			nb[j] = neighbor{z, float64(co[z]) / math.Sqrt(float64(kn.count[x])*float64(kn.count[z]))}
			co[z] = 0
		}
		m.nbr[x] = nb
	}
	kn.built = m
	return m
}

// knnScratch is the memory of one ItemKNN.Recommend.
type knnScratch struct {
	score   []float64
	mark    []bool
	touched []int32
}

// Recommend returns the k items of best score that are not visible.
func (kn *ItemKNN) Recommend(visible []string, k int) []string {
	m := kn.model()
	sc, _ := kn.pool.Get().(*knnScratch)
	if sc == nil || len(sc.score) < len(m.ids) {
		sc = &knnScratch{score: make([]float64, len(m.ids)), mark: make([]bool, len(m.ids))}
	}
	defer kn.pool.Put(sc)
	var vis []int32
	for _, it := range visible {
		if i, ok := m.index[it]; ok && !sc.mark[i] {
			sc.mark[i] = true
			vis = append(vis, i)
		}
	}
	sc.touched = sc.touched[:0]
	for _, x := range vis {
		for _, nb := range m.nbr[x] {
			if sc.mark[nb.item] {
				continue
			}
			if sc.score[nb.item] == 0 {
				sc.touched = append(sc.touched, nb.item)
			}
			sc.score[nb.item] += nb.cos
		}
	}
	// The k best, by insertion into a sorted list: there are many
	// candidates and few places.
	better := func(a, b int32) bool {
		if sc.score[a] != sc.score[b] {
			return sc.score[a] > sc.score[b]
		}
		return m.rankOf[a] < m.rankOf[b]
	}
	top := make([]int32, 0, k)
	for _, z := range sc.touched {
		j := len(top)
		if j < k {
			top = append(top, z)
		} else if better(z, top[k-1]) {
			j = k - 1
		} else {
			continue
		}
		for ; j > 0 && better(z, top[j-1]); j-- {
			top[j] = top[j-1]
		}
		top[j] = z
	}
	out := make([]string, 0, k)
	for _, z := range top {
		out = append(out, m.ids[z])
	}
	for _, z := range top {
		sc.mark[z] = true // not again in the fill
	}
	for _, z := range m.byPop {
		if len(out) == k {
			break
		}
		if !sc.mark[z] {
			out = append(out, m.ids[z])
		}
	}
	for _, z := range sc.touched {
		sc.score[z] = 0
		sc.mark[z] = false
	}
	for _, x := range vis {
		sc.mark[x] = false
	}
	return out
}

// Tailor recommends with an assoc.Model made from Config. The zero value
// uses assoc's defaults.
type Tailor struct {
	Config assoc.Config
	once   sync.Once
	m      *assoc.Model
}

// Model returns the model, made on first use.
func (t *Tailor) Model() *assoc.Model {
	t.once.Do(func() { t.m = assoc.New(t.Config) })
	return t.m
}

// Learn learns basket as a new visitor's: Learn(Basket{}, Basket{Bought:
// basket}).
func (t *Tailor) Learn(basket []string) {
	t.Model().Learn(assoc.Basket{}, assoc.Basket{Bought: basket})
}

// Recommend returns the items of the model's Recommend for a visitor who
// bought the visible items, one unit each.
func (t *Tailor) Recommend(visible []string, k int) []string {
	items, _ := t.RecommendExplained(visible, k)
	return items
}

// RecommendExplained is Recommend, with the number of items that came
// with a rule (the others are popular items that complete the list). The
// data sets have no categories, so the visitor's profile has none either:
// Recommend completes with the most popular items overall.
func (t *Tailor) RecommendExplained(visible []string, k int) ([]string, int) {
	p := store.New("visitor")
	p.Purchases.Items = make(map[string]int, len(visible))
	for _, it := range visible {
		p.Purchases.Items[it] = 1
	}
	p.Purchases.Count = 1
	recs := t.Model().Recommend(p, k)
	items := make([]string, len(recs))
	explained := 0
	for i, r := range recs {
		items[i] = r.Item
		if r.Rule != nil {
			explained++
		}
	}
	return items, explained
}
