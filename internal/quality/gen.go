package quality

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Default sizes of the generated data sets: large enough for thousands of
// test baskets, small enough for the yardstick's own work (brute force,
// baselines) to take seconds.
const (
	DenseBaskets  = 40_000
	TastesBaskets = 30_000
	ShopBaskets   = 200_000
)

// A PlantedRule is a rule Dense puts into its baskets: when a basket holds
// the items of If, Then is added to it with probability P. The rule's
// true confidence is a little more than P, as Then may be in the basket
// anyway: it is what BruteForce counts.
type PlantedRule struct {
	If   []string
	Then string
	P    float64
}

// Planted returns the rules that Dense plants: 108 of one item and 16 of
// two. Antecedents are staples, the first 100 items of the band and the
// first items of the tail; consequents are the other items of the band,
// which without the rules are as frequent as the 200 others:
//
//	{band-0jj} ⇒ band-1jj           P = 0.5 + 0.4·jj/99         (jj = 0..99)
//	{staple-0j} ⇒ band-20j          P = 0.3, 0.4, 0.5, 0.6      (j = 0..3)
//	{tail-00j} ⇒ band-21j           P = 0.7                     (j = 0..3)
//	{staple-(4+2j), staple-(5+2j)} ⇒ band-22j   P = 0.6 + 0.1·j (j = 0..3)
//	{staple-0j, band-02j} ⇒ band-23j            P = 0.6         (j = 0..3)
//	{band-03j, band-04j} ⇒ band-24j             P = 0.9         (j = 0..3)
//	{band-05j, tail-01j} ⇒ band-25j             P = 0.8         (j = 0..3)
//
// A pair's consequent is added only when both items are there: the rules
// of its items alone are weaker. The last two groups are rare: about 50
// baskets in 40,000 hold their antecedents. Rules apply to the items a basket drew,
// not to the consequents other rules added.
func Planted() []PlantedRule {
	var ps []PlantedRule
	add := func(p float64, then string, ifs ...string) {
		slices.Sort(ifs)
		ps = append(ps, PlantedRule{If: ifs, Then: then, P: p})
	}
	for j := range 100 {
		add(0.5+0.4*float64(j)/99, band(100+j), band(j))
	}
	for j := range 4 {
		add(0.3+0.1*float64(j), band(200+j), staple(j))
	}
	for j := range 4 {
		add(0.7, band(210+j), tail(j))
	}
	for j := range 4 {
		add(0.6+0.1*float64(j), band(220+j), staple(4+2*j), staple(5+2*j))
	}
	for j := range 4 {
		add(0.6, band(230+j), staple(j), band(20+j))
	}
	for j := range 4 {
		add(0.9, band(240+j), band(30+j), band(40+j))
	}
	for j := range 4 {
		add(0.8, band(250+j), band(50+j), tail(10+j))
	}
	return ps
}

const (
	denseStaples = 20
	denseBand    = 300
	denseTail    = 900
)

func staple(i int) string { return fmt.Sprintf("staple-%02d", i) }
func band(i int) string   { return fmt.Sprintf("band-%03d", i) }
func tail(i int) string   { return fmt.Sprintf("tail-%03d", i) }

// Dense returns DenseN(seed, DenseBaskets).
func Dense(seed uint64) Dataset { return DenseN(seed, DenseBaskets) }

// DenseN returns n dense baskets over 1,220 items, the same for the same
// seed. A basket's size is log-normal, median 12, mean 15, at most 100
// (heavy buyers). Its items are drawn, without repetition, from three
// tiers: 20 staples (about 30% of the draws, from staple-00 in almost
// half the baskets down to staple-19 in a tenth), a flat band of 300
// items (half the draws, each item in about 3% of the baskets) and a
// tail of 900 items whose weights fall as a power law (a fifth). Then
// the rules of Planted add their consequents (so a basket may exceed 100).
func DenseN(seed uint64, n int) Dataset {
	r := rand.New(rand.NewPCG(seed, 0xde45e))
	var ids []string
	var weights []float64
	for i := range denseStaples {
		ids = append(ids, staple(i))
		weights = append(weights, 12/(1+0.25*float64(i)))
	}
	for i := range denseBand {
		ids = append(ids, band(i))
		weights = append(weights, 0.5)
	}
	for i := range denseTail {
		ids = append(ids, tail(i))
		weights = append(weights, 4/math.Pow(float64(i+1), 0.8))
	}
	pick := newSampler(weights)
	planted := Planted()
	d := Dataset{Name: "dense", Baskets: make([][]string, n)}
	in := make([]bool, len(ids))
	index := make(map[string]int, len(ids))
	for i, id := range ids {
		index[id] = i
	}
	for b := range d.Baskets {
		size := min(max(int(math.Round(math.Exp(math.Log(12)+0.7*r.NormFloat64()))), 1), 100)
		var items []int
		for len(items) < size {
			if it := pick.draw(r); !in[it] {
				in[it] = true
				items = append(items, it)
			}
		}
		// Consequents are never antecedents: rules see the drawn items
		// only.
		for _, p := range planted {
			ok := true
			for _, x := range p.If {
				ok = ok && in[index[x]]
			}
			if z := index[p.Then]; ok && !in[z] && r.Float64() < p.P {
				in[z] = true
				items = append(items, z)
			}
		}
		basket := make([]string, len(items))
		for i, it := range items {
			basket[i] = ids[it]
			in[it] = false
		}
		d.Baskets[b] = set(basket)
	}
	return d
}

// sampler draws indices with probabilities proportional to weights.
type sampler struct{ cum []float64 }

func newSampler(weights []float64) sampler {
	cum := make([]float64, len(weights))
	t := 0.0
	for i, w := range weights {
		t += w
		cum[i] = t
	}
	return sampler{cum}
}

func (s sampler) draw(r *rand.Rand) int {
	x := r.Float64() * s.cum[len(s.cum)-1]
	i, _ := slices.BinarySearch(s.cum, x)
	return min(i, len(s.cum)-1)
}

// Tastes returns TastesN(seed, TastesBaskets).
func Tastes(seed uint64) Dataset { return TastesN(seed, TastesBaskets) }

// TastesN returns n baskets of visitors with tastes, the same for the
// same seed: 60 taste groups of 25 items (t07-i12 is item 12 of taste 7)
// and 40 bestsellers (best-00 to best-39), 1,540 items. A visitor has one
// taste (70%) or two, tastes being drawn from a Zipf law (some are
// common, most are niche). A basket's size is log-normal, median 6, at
// most 40; each item is from one of the visitor's tastes (80%, the first
// items of a group being the most bought), a bestseller (12%) or any item
// (8%). What a visitor bought tells their taste, and so what else they
// buy: co-occurrence beats popularity by far.
func TastesN(seed uint64, n int) Dataset {
	const (
		groups   = 60
		perGroup = 25
		best     = 40
	)
	r := rand.New(rand.NewPCG(seed, 0x7a57e5))
	tastes := rand.NewZipf(r, 1.1, 4, groups-1)
	within := rand.NewZipf(r, 1.2, 2, perGroup-1)
	sellers := rand.NewZipf(r, 1.1, 3, best-1)
	d := Dataset{Name: "tastes", Baskets: make([][]string, n)}
	for b := range d.Baskets {
		mine := []int{int(tastes.Uint64())}
		if r.IntN(10) < 3 {
			mine = append(mine, int(tastes.Uint64()))
		}
		size := min(max(int(math.Round(math.Exp(math.Log(6)+0.6*r.NormFloat64()))), 1), 40)
		var basket []string
		for tries := 0; len(basket) < size && tries < 10*size; tries++ {
			var it string
			switch x := r.IntN(100); {
			case x < 80:
				it = fmt.Sprintf("t%02d-i%02d", mine[r.IntN(len(mine))], within.Uint64())
			case x < 92:
				it = fmt.Sprintf("best-%02d", sellers.Uint64())
			default:
				if k := r.IntN(groups*perGroup + best); k < best {
					it = fmt.Sprintf("best-%02d", k)
				} else {
					k -= best
					it = fmt.Sprintf("t%02d-i%02d", k/perGroup, k%perGroup)
				}
			}
			if !slices.Contains(basket, it) {
				basket = append(basket, it)
			}
		}
		d.Baskets[b] = set(basket)
	}
	return d
}

// Shop returns ShopN(seed, ShopBaskets).
func Shop(seed uint64) Dataset { return ShopN(seed, ShopBaskets) }

// ShopN returns the baskets of the shop of assoc's benchmark
// (rules/assoc/bench_test.go), drawn by the same ShopGen from the same
// seed: n orders over 10,000 items in 500 themes of 20, 10 themes per
// category; theme popularity and item popularity within a theme follow
// Zipf laws; an order holds one to eight items (one 30% of the time, two
// 25%), mostly of one theme, a quarter of them bestsellers from anywhere.
// One order in five is a returning buyer's second order: it joins the
// basket of an earlier visitor (drawn among the last 4,096 slots), so the
// data set has fewer baskets than orders.
func ShopN(seed uint64, n int) Dataset {
	g := NewShopGen(seed)
	r := g.R
	d := Dataset{Name: "shop"}
	recent := make([]int, 4096) // basket index + 1; 0 for none
	for i := range n {
		add := g.Names(g.Order(g.Size()))
		slot := r.IntN(len(recent))
		if i%5 == 4 && recent[slot] != 0 {
			j := recent[slot] - 1
			d.Baskets[j] = set(append(d.Baskets[j], add...))
			recent[slot] = 0
			continue
		}
		d.Baskets = append(d.Baskets, set(add))
		recent[slot] = len(d.Baskets)
	}
	return d
}

// ShopItems is the number of items of the benchmark shop.
const ShopItems = 10_000

const (
	shopThemes   = 500
	shopPerTheme = ShopItems / shopThemes
)

// ShopGen draws the orders of the benchmark shop (see ShopN), for the data
// set and for the benchmarks of rules/assoc, which learn them as a stream.
type ShopGen struct {
	// R is the generator's source, for the draws of its users.
	R                      *rand.Rand
	themes, within, global *rand.Zipf
	// IDs are the items' ids, "sku-00000" to "sku-09999".
	IDs []string
}

// NewShopGen returns the generator of seed.
func NewShopGen(seed uint64) *ShopGen {
	r := rand.New(rand.NewPCG(seed, 42))
	g := &ShopGen{
		R:      r,
		themes: rand.NewZipf(r, 1.1, 1, shopThemes-1),
		within: rand.NewZipf(r, 1.3, 1, shopPerTheme-1),
		global: rand.NewZipf(r, 1.2, 10, ShopItems-1),
		IDs:    make([]string, ShopItems),
	}
	for i := range g.IDs {
		g.IDs[i] = fmt.Sprintf("sku-%05d", i)
	}
	return g
}

// ShopCategory is the category of item: 10 themes of 20 items each.
func ShopCategory(item int) string { return fmt.Sprintf("cat-%02d", item/shopPerTheme/10) }

// Size draws an order's size: 1 (30%), 2 (25%), 3 (18%), 4 (12%), 5 (8%),
// 6 to 8 (7%).
func (g *ShopGen) Size() int {
	x := g.R.IntN(100)
	switch {
	case x < 30:
		return 1
	case x < 55:
		return 2
	case x < 73:
		return 3
	case x < 85:
		return 4
	case x < 93:
		return 5
	}
	return 6 + g.R.IntN(3)
}

// Order draws n distinct items: of one theme, or a bestseller (one in
// four).
func (g *ShopGen) Order(n int) []int {
	theme := int(g.themes.Uint64())
	out := make([]int, 0, n)
	for len(out) < n {
		var it int
		if g.R.IntN(4) == 0 {
			it = g.Bestseller()
		} else {
			it = theme*shopPerTheme + int(g.within.Uint64())
		}
		if !slices.Contains(out, it) {
			out = append(out, it)
		}
	}
	return out
}

// Bestseller draws an item from anywhere, by its popularity.
func (g *ShopGen) Bestseller() int { return int(g.global.Uint64()) }

// Names returns the ids of items.
func (g *ShopGen) Names(items []int) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = g.IDs[it]
	}
	return out
}
