package assoc_test

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/rules/assoc"
	"github.com/tailorhq/tailor/store"
)

// unbounded is a configuration whose bounds are never reached by the small
// data sets of the tests, and which reports every rule.
var unbounded = assoc.Config{
	MinSupport:    -1,
	MinConfidence: -1,
	MinLift:       -1,
	MaxItems:      1 << 20,
}

// history records events per visitor and folds them into profiles.
type history struct {
	t0       time.Time
	seq      uint64
	profiles map[string]*store.Profile
	order    []string
}

func newHistory() *history {
	return &history{t0: time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC), profiles: make(map[string]*store.Profile)}
}

// apply applies e to visitor's profile, first telling m (if not nil) with
// the profile before it.
func (h *history) apply(m *assoc.Model, visitor string, e store.Event) {
	p, ok := h.profiles[visitor]
	if !ok {
		p = store.New(visitor)
		h.profiles[visitor] = p
		h.order = append(h.order, visitor)
	}
	h.seq++
	e.ID = store.EventID("test", h.seq)
	if e.Time.IsZero() {
		e.Time = h.t0.Add(time.Duration(h.seq) * time.Minute)
	}
	if m != nil {
		m.LearnEvent(p, &e)
	}
	p.Apply(store.Limits{}, e)
}

func purchase(items ...store.Item) store.Event {
	return store.Event{Type: store.TypeTrack, Name: store.EventPurchase, Items: items}
}

func view(item, category string) store.Event {
	return store.Event{Type: store.TypePage, Path: "/p/" + item, Item: item, Category: category}
}

func cart(item string) store.Event {
	return store.Event{Type: store.TypeTrack, Name: "add_to_cart", Item: item}
}

func items(ids ...string) []store.Item {
	out := make([]store.Item, len(ids))
	for i, id := range ids {
		out[i] = store.Item{ID: id}
	}
	return out
}

// Range makes a history a store.Ranger over its profiles, in the order
// visitors appeared.
func (h *history) Range(ctx context.Context, fn func(*store.Profile) bool) error {
	for _, id := range h.order {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !fn(h.profiles[id].Clone()) {
			return nil
		}
	}
	return nil
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*max(1, math.Abs(a), math.Abs(b))
}

// The seed story: 80% of the buyers of Moneyball and a Red Sox banner also
// bought the Red Sox Mr. Potato Head, in the middle of unrelated traffic.
func TestSeedStory(t *testing.T) {
	t.Parallel()
	const (
		moneyball = "moneyball"
		banner    = "red-sox-banner"
		potato    = "red-sox-potato-head"
	)
	r := rand.New(rand.NewPCG(1, 2))
	m := assoc.New(assoc.Config{})
	h := newHistory()
	cat := map[string]string{moneyball: "books", banner: "fan-gear", potato: "toys"}
	noise := func() string {
		i := r.IntN(200)
		id := fmt.Sprintf("item-%03d", i)
		cat[id] = []string{"books", "fan-gear", "toys", "music"}[i%4]
		return id
	}
	type visitor struct {
		id    string
		items []string
	}
	var vs []visitor
	const story, gotPotato = 1000, 800
	for i, k := range r.Perm(story) {
		its := []string{moneyball, banner}
		if k < gotPotato {
			its = append(its, potato)
		}
		for range r.IntN(4) {
			its = append(its, noise())
		}
		vs = append(vs, visitor{fmt.Sprintf("story-%d", i), its})
	}
	for i := range 4000 {
		its := []string{noise()}
		for range r.IntN(4) {
			its = append(its, noise())
		}
		if r.Float64() < 0.1 { // at most one of the story's items
			its = append(its, []string{moneyball, banner, potato}[r.IntN(3)])
		}
		vs = append(vs, visitor{fmt.Sprintf("noise-%d", i), its})
	}
	r.Shuffle(len(vs), func(i, j int) { vs[i], vs[j] = vs[j], vs[i] })
	for _, v := range vs {
		// Browse a few products, then buy in one to three orders.
		for range r.IntN(3) {
			id := noise()
			h.apply(m, v.id, view(id, cat[id]))
		}
		r.Shuffle(len(v.items), func(i, j int) { v.items[i], v.items[j] = v.items[j], v.items[i] })
		orders := 1 + r.IntN(min(3, len(v.items)))
		for o := range orders {
			var its []store.Item
			for i := o; i < len(v.items); i += orders {
				its = append(its, store.Item{ID: v.items[i], Category: cat[v.items[i]], Price: 10})
			}
			h.apply(m, v.id, purchase(its...))
		}
	}

	if err := assoc.CheckInvariants(m); err != nil {
		t.Fatal(err)
	}
	var rule *assoc.Rule
	for _, ru := range m.Rules(banner, moneyball) {
		if ru.Then == potato {
			rule = &ru
		}
	}
	if rule == nil {
		t.Fatalf("no rule {moneyball, red-sox-banner} => red-sox-potato-head in %v", m.Rules(moneyball, banner))
	}
	t.Log(rule)
	if math.Abs(rule.Confidence-0.80) > 0.01 {
		t.Errorf("confidence %.4f, want 0.80 ± 0.01", rule.Confidence)
	}
	if !slices.Equal(rule.If, []string{moneyball, banner}) || rule.Count != gotPotato || rule.Lift <= 1 {
		t.Errorf("rule %v: want If [moneyball red-sox-banner], count 800, lift > 1", rule)
	}
	if lr, ok := m.Likelihood([]string{moneyball, banner}, potato); !ok || lr.Confidence != rule.Confidence {
		t.Errorf("Likelihood = %v, %v; want %v", lr, ok, rule)
	}

	// A new buyer of the two gets the Potato Head first, and why.
	h.apply(m, "newcomer", purchase(store.Item{ID: moneyball, Category: "books"}, store.Item{ID: banner, Category: "fan-gear"}))
	recs := m.Recommend(h.profiles["newcomer"], 10)
	if len(recs) != 10 {
		t.Fatalf("got %d recommendations, want 10", len(recs))
	}
	first := recs[0]
	if first.Item != potato || first.Rule == nil || first.Reason != "bought together with moneyball and red-sox-banner" || first.Category != "toys" {
		t.Errorf("first recommendation %+v (rule %v), want %s bought together with moneyball and red-sox-banner", first, first.Rule, potato)
	}
	for _, rec := range recs {
		if rec.Item == moneyball || rec.Item == banner {
			t.Errorf("recommended %s, which the visitor bought", rec.Item)
		}
	}
}

// visitorSteps generates random histories: per visitor a sequence of steps,
// each adding one to three items with a random signal (only purchases are
// learnt), some of them repeating what the visitor already did.
func visitorSteps(r *rand.Rand, nVisitors, nItems int) [][]assoc.Basket {
	out := make([][]assoc.Basket, nVisitors)
	for v := range out {
		for range 1 + r.IntN(5) {
			var b assoc.Basket
			for range 1 + r.IntN(3) {
				id := fmt.Sprintf("i%02d", int(float64(nItems)*r.Float64()*r.Float64())) // skewed
				switch r.IntN(3) {
				case 0, 1:
					b.Bought = append(b.Bought, id)
				default:
					b.Viewed = append(b.Viewed, id)
				}
			}
			out[v] = append(out[v], b)
		}
	}
	return out
}

// learnSteps teaches m the steps, interleaving visitors at random, and
// returns each visitor's final basket of bought items.
func learnSteps(r *rand.Rand, m *assoc.Model, steps [][]assoc.Basket) []map[string]bool {
	final := make([]map[string]bool, len(steps))
	next := make([]int, len(steps))
	var queue []int
	for v := range steps {
		final[v] = map[string]bool{}
		for range steps[v] {
			queue = append(queue, v)
		}
	}
	r.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })
	for _, v := range queue {
		b := steps[v][next[v]]
		next[v]++
		m.Learn(assoc.Basket{Bought: slices.Collect(maps.Keys(final[v]))}, b)
		for _, id := range b.Bought {
			final[v][id] = true
		}
	}
	return final
}

// brute counts directly over baskets.
type brute struct {
	n   float64
	one map[string]float64
	two map[[2]string]float64
	tri map[[3]string]float64
}

func bruteForce(baskets []map[string]bool) brute {
	b := brute{one: map[string]float64{}, two: map[[2]string]float64{}, tri: map[[3]string]float64{}}
	for _, w := range baskets {
		if len(w) == 0 {
			continue
		}
		ids := slices.Sorted(maps.Keys(w))
		for i, x := range ids {
			b.one[x]++
			for j := i + 1; j < len(ids); j++ {
				y := ids[j]
				b.two[[2]string{x, y}]++
				for _, z := range ids[j+1:] {
					b.tri[[3]string{x, y, z}]++
				}
			}
		}
		b.n++
	}
	return b
}

func (b brute) pair(x, y string) float64 {
	if x > y {
		x, y = y, x
	}
	return b.two[[2]string{x, y}]
}

func (b brute) triple(x, y, z string) float64 {
	s := []string{x, y, z}
	slices.Sort(s)
	return b.tri[[3]string(s)]
}

// checkRule compares a rule with the brute-force count of its items.
func checkRule(t *testing.T, b brute, r assoc.Rule, count, ante float64) {
	t.Helper()
	conf := count / ante
	lift := conf / (b.one[r.Then] / b.n)
	if !near(r.Count, count) || !near(r.Support, count/b.n) || !near(r.Confidence, conf) || !near(r.Lift, lift) {
		t.Errorf("%v: want count %g, support %g, confidence %g, lift %g", r, count, count/b.n, conf, lift)
	}
}

// Every rule equals a direct count over the same baskets, and every rule a
// direct count finds is reported.
func TestRulesMatchBruteForce(t *testing.T) {
	t.Parallel()
	for seed := range uint64(25) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(seed, 7))
			nItems := 4 + r.IntN(20)
			m := assoc.New(unbounded)
			final := learnSteps(r, m, visitorSteps(r, 20+r.IntN(150), nItems))
			b := bruteForce(final)
			if err := assoc.CheckInvariants(m); err != nil {
				t.Fatal(err)
			}
			if st := m.Stats(); float64(st.Baskets) != b.n || st.Items != len(b.one) || st.SampleRate != 1 || st.PrunedItems != 0 {
				t.Fatalf("stats %+v; want %g baskets, %d items, all sampled, nothing dropped", st, b.n, len(b.one))
			}
			items := slices.Sorted(maps.Keys(b.one))
			for _, x := range items {
				want := 0
				for _, z := range items {
					if z != x && b.pair(x, z) > 0 {
						want++
					}
				}
				rules := m.Rules(x)
				if len(rules) != want {
					t.Errorf("Rules(%s): %d rules, want %d", x, len(rules), want)
				}
				for _, ru := range rules {
					checkRule(t, b, ru, b.pair(x, ru.Then), b.one[x])
				}
				for _, y := range items {
					if y <= x || b.pair(x, y) == 0 {
						continue
					}
					want := 0
					for _, z := range items {
						if z != x && z != y && b.triple(x, y, z) > 0 {
							want++
						}
					}
					rules := m.Rules(y, x)
					if len(rules) != want {
						t.Errorf("Rules(%s, %s): %d rules, want %d", y, x, len(rules), want)
					}
					for _, ru := range rules {
						if !slices.Equal(ru.If, []string{x, y}) {
							t.Errorf("rule %v: If not sorted", ru)
						}
						checkRule(t, b, ru, b.triple(x, y, ru.Then), b.pair(x, y))
					}
				}
			}
		})
	}
}

// Rules are ordered by confidence, then lift, and respect the thresholds.
func TestRulesOrderAndThresholds(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 3))
	cfg := assoc.Config{MinSupport: 4, MinConfidence: 0.2, MinLift: 1.1}
	m := assoc.New(cfg)
	learnSteps(r, m, visitorSteps(r, 400, 12))
	total := 0
	for i := range 12 {
		x := fmt.Sprintf("i%02d", i)
		rules := m.Rules(x)
		total += len(rules)
		for j, ru := range rules {
			if ru.Count < cfg.MinSupport || ru.Confidence < cfg.MinConfidence || ru.Lift < cfg.MinLift {
				t.Errorf("%v passes the thresholds %+v", ru, cfg)
			}
			if j > 0 {
				p := rules[j-1]
				if p.Confidence < ru.Confidence || p.Confidence == ru.Confidence && p.Lift < ru.Lift {
					t.Errorf("%v before %v", p, ru)
				}
			}
		}
	}
	if total == 0 {
		t.Fatal("no rules at all: the thresholds test nothing")
	}
	if m.Rules() != nil || m.Rules("i01", "i02", "i03") != nil || m.Rules("i01", "i01") != nil || m.Rules("nope") != nil {
		t.Error("Rules of an invalid antecedent is not nil")
	}
}

// Learning is per visitor: buying an item again, or viewing an item bought,
// changes nothing; buying an item viewed upgrades it.
func TestLearnCountsVisitorsNotOrders(t *testing.T) {
	t.Parallel()
	m := assoc.New(unbounded)
	h := newHistory()
	h.apply(m, "v", view("a", ""))
	h.apply(m, "v", purchase(items("a", "b")...))
	h.apply(m, "v", purchase(items("a", "b")...))
	h.apply(m, "v", view("b", ""))
	h.apply(m, "w", purchase(items("a")...))
	rules := m.Rules("a")
	if len(rules) != 1 || rules[0].Then != "b" || rules[0].Count != 1 || rules[0].Confidence != 0.5 || rules[0].Lift != 1 {
		t.Errorf("Rules(a) = %v, want {a} => b with count 1, confidence 0.5, lift 1", rules)
	}
	if st := m.Stats(); st.Baskets != 2 {
		t.Errorf("%d baskets, want 2", st.Baskets)
	}
	// A retried event is not learnt twice.
	e := purchase(items("c")...)
	e.ID = store.EventID("test", 999)
	p := h.profiles["w"]
	m.LearnEvent(p, &e)
	p.Apply(store.Limits{}, e)
	m.LearnEvent(p, &e)
	if rs := m.Rules("c"); len(rs) != 1 || rs[0].Count != 1 {
		t.Errorf("Rules(c) = %v, want one rule of count 1", rs)
	}
}

func TestRecommendFallback(t *testing.T) {
	t.Parallel()
	m := assoc.New(assoc.Config{})
	h := newHistory()
	for i := range 30 {
		v := fmt.Sprint("v", i)
		// Popularity: b1 > b2 > b3 in books, m1 > m2 in music; m1 the most
		// popular of all.
		its := []store.Item{{ID: "m1", Category: "music"}}
		if i < 20 {
			its = append(its, store.Item{ID: "b1", Category: "books"})
		}
		if i < 12 {
			its = append(its, store.Item{ID: "b2", Category: "books"})
		}
		if i < 5 {
			its = append(its, store.Item{ID: "b3", Category: "books"})
		}
		if i < 25 {
			its = append(its, store.Item{ID: "m2", Category: "music"})
		}
		h.apply(m, v, purchase(its...))
	}
	got := func(recs []assoc.Recommendation) string {
		var s []string
		for _, r := range recs {
			s = append(s, r.Item+":"+r.Reason)
		}
		return strings.Join(s, ", ")
	}
	if g, want := got(m.Recommend(store.New("new"), 3)), "m1:popular, m2:popular, b1:popular"; g != want {
		t.Errorf("new visitor: %s, want %s", g, want)
	}
	if m.Recommend(nil, 2) == nil || m.Recommend(store.New("x"), 0) != nil {
		t.Error("Recommend(nil, 2) is nil or Recommend(p, 0) is not")
	}
	h.apply(nil, "reader", view("", "books"))
	if g, want := got(m.Recommend(h.profiles["reader"], 5)), "b1:popular in books, b2:popular in books, b3:popular in books, m1:popular, m2:popular"; g != want {
		t.Errorf("books reader: %s, want %s", g, want)
	}
	// A buyer of b3 gets items bought with it, the rarer first (all were
	// bought by every buyer of b3; the scores are 5/√(5·n) for the n
	// buyers of each), then popular ones.
	h.apply(nil, "buyer", purchase(store.Item{ID: "b3", Category: "books"}))
	if g, want := got(m.Recommend(h.profiles["buyer"], 10)), "b2:bought together with b3, b1:bought together with b3, m2:bought together with b3, m1:bought together with b3"; g != want {
		t.Errorf("b3 buyer: %s, want %s", g, want)
	}
}

// Among rules of equal confidence and lift, a recommendation is explained
// by the pair of items rather than by one of them.
func TestRecommendPrefersPairExplanations(t *testing.T) {
	t.Parallel()
	m := assoc.New(assoc.Config{})
	for _, b := range [][]string{{"a", "z"}, {"b", "c", "z"}, {"y"}} {
		for range 5 {
			m.Learn(assoc.Basket{}, assoc.Basket{Bought: b})
		}
	}
	// {a}, {b}, {c} and {b, c} => z all have confidence 1 and lift 1.5.
	recs := m.Recommend(profileOf(purchase(items("a", "b", "c")...)), 1)
	if len(recs) != 1 || recs[0].Item != "z" || recs[0].Reason != "bought together with b and c" {
		t.Errorf("got %+v, want z bought together with b and c", recs)
	}
	if r, ok := m.Likelihood([]string{"a", "b", "c"}, "z"); !ok || !slices.Equal(r.If, []string{"b", "c"}) {
		t.Errorf("Likelihood = %v, %v; want {b, c} => z", r, ok)
	}
}

// Likelihood applies MinSupport, and leaves the confidence threshold to the
// caller.
func TestLikelihood(t *testing.T) {
	t.Parallel()
	m := assoc.New(assoc.Config{}) // MinSupport 3, MinConfidence 0.1
	learn := func(n int, items ...string) {
		for range n {
			m.Learn(assoc.Basket{}, assoc.Basket{Bought: items})
		}
	}
	learn(2, "x", "y")
	if r, ok := m.Likelihood([]string{"x"}, "y"); ok {
		t.Errorf("rule %v with a count of 2", r)
	}
	learn(1, "x", "y")
	learn(57, "x")
	learn(40, "z")
	r, ok := m.Likelihood([]string{"nope", "x", "y"}, "y")
	if !ok || r.Confidence != 0.05 || r.Count != 3 || !slices.Equal(r.If, []string{"x"}) {
		t.Errorf("Likelihood = %v, %v; want {x} => y with confidence 0.05", r, ok)
	}
	if rules := m.Rules("x"); len(rules) != 0 {
		t.Errorf("Rules(x) = %v, want none above MinConfidence", rules)
	}
	if _, ok := m.Likelihood([]string{"x"}, "unknown"); ok {
		t.Error("Likelihood of an unknown item")
	}
}

// Views are not learnt; their categories are.
func TestViewsNotLearnt(t *testing.T) {
	t.Parallel()
	m := assoc.New(assoc.Config{MinSupport: 1})
	h := newHistory()
	h.apply(m, "v", purchase(items("a", "b")...))
	h.apply(m, "v", view("c", "books"))
	h.apply(m, "v", cart("d"))
	h.apply(m, "w", purchase(items("c")...))
	if st := m.Stats(); st.Items != 3 || st.Baskets != 2 || st.Categories != 1 {
		t.Errorf("stats %+v, want 3 items, 2 baskets, 1 category", st)
	}
	if rs := m.Rules("a"); len(rs) != 1 || rs[0].Then != "b" {
		t.Errorf("Rules(a) = %v, want only a => b", rs)
	}
	if recs := m.Recommend(h.profiles["v"], 1); len(recs) != 1 || recs[0].Item != "c" || recs[0].Reason != "popular in books" {
		t.Errorf("Recommend = %+v, want c, popular in books", recs)
	}
}

// TestBasketCartedUncounted: the items of cart events are found in the
// recent events whether or not the counters counted the event (a full
// Counts map refuses new names), and a profile whose counters say it
// never carted has none.
func TestBasketCartedUncounted(t *testing.T) {
	m := assoc.New(assoc.Config{})
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	cart := store.Event{ID: "c:9", Type: store.TypeTrack, Name: "add_to_cart", Item: "moneyball", Time: at}
	for _, tc := range []struct {
		name   string
		lim    store.Limits
		events []store.Event
		want   []string
	}{
		{"page views only", store.Limits{}, nil, nil},
		{"counted", store.Limits{}, []store.Event{cart}, []string{"moneyball"}},
		{"not counted", store.Limits{EventNames: 2}, []store.Event{
			{ID: "c:2", Type: store.TypeTrack, Name: "email_open", Time: at},
			cart,
		}, []string{"moneyball"}},
	} {
		p := store.New("v")
		p.Apply(tc.lim, store.Event{ID: "c:1", Type: store.TypePage, Path: "/", Time: at})
		p.Apply(tc.lim, tc.events...)
		if tc.name == "not counted" && (p.Counts["add_to_cart"] != 0 || p.Truncated == 0) {
			t.Fatalf("%s: the test's profile counted the cart event: %v", tc.name, p.Counts)
		}
		if got := m.BasketOf(p).Carted; !slices.Equal(got, tc.want) {
			t.Errorf("%s: carted %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestTouchesCoverBasket: applying an event that touches none of the
// parts Model.Touches names changes neither BasketOf nor Recommend, on
// random profiles whose recent events are not full (a full ring may push
// an old cart event out, as Touches says). The model knows few rules,
// so that Recommend also falls back to the visitor's interests.
func TestTouchesCoverBasket(t *testing.T) {
	m := assoc.New(assoc.Config{})
	for range 20 {
		m.Learn(assoc.Basket{}, assoc.Basket{Bought: []string{"moneyball"}})
	}
	for range 5 {
		m.Learn(assoc.Basket{}, assoc.Basket{Bought: []string{"snowshoes"}})
	}
	m.SetCategory("moneyball", "books")
	m.SetCategory("snowshoes", "winter")
	parts := m.Touches()
	r := rand.New(rand.NewPCG(5, 6))
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	items := []string{"", "moneyball", "red-sox-cap", "snowshoes"}
	event := func(i int) store.Event {
		e := store.Event{ID: store.EventID("t", uint64(i)), Time: at.Add(time.Duration(i) * time.Minute)}
		switch r.IntN(5) {
		case 0, 1:
			e.Type, e.Path, e.Item = store.TypePage, "/p", items[r.IntN(len(items))]
			e.Category = []string{"", "books", "winter"}[r.IntN(3)]
		case 2:
			e.Type, e.Name, e.Item = store.TypeTrack, "add_to_cart", items[1+r.IntN(len(items)-1)]
		case 3:
			e.Type, e.Name = store.TypeTrack, store.EventPurchase
			e.Items = []store.Item{{ID: items[1+r.IntN(len(items)-1)], Price: 5, Quantity: 1}}
		default:
			e.Type, e.Name = store.TypeTrack, "email_open"
		}
		return e
	}
	kept := 0
	for seed := range 300 {
		p := store.New("v")
		for i := range r.IntN(20) {
			p.Apply(store.Limits{}, event(seed*100+i+1))
		}
		e := event(seed*100 + 99)
		before, recs := m.BasketOf(p), m.Recommend(p, 3)
		touches := p.Touches(store.Limits{}, &e)
		p.Apply(store.Limits{}, e)
		if touches&parts != 0 {
			continue
		}
		kept++
		if after := m.BasketOf(p); !reflect.DeepEqual(before, after) {
			t.Fatalf("seed %d: %+v touches none of the model's parts, but the basket went from %+v to %+v", seed, e, before, after)
		}
		if after := m.Recommend(p, 3); !reflect.DeepEqual(recs, after) {
			t.Fatalf("seed %d: %+v touches none of the model's parts, but the recommendations went from %+v to %+v", seed, e, recs, after)
		}
	}
	if kept == 0 {
		t.Fatal("no event left the model's parts untouched")
	}
}
