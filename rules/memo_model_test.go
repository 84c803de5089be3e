package rules

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

// TestMemoTouchesModel checks that ClassifyMemo, reusing a classification
// across events that touch no part of the profile its rules depend on,
// always answers what a fresh classification answers: random sets of
// rules (built-ins that tell their parts, combinations of them, and rules
// that do not tell) against random streams of events, request facts,
// visits and times.
func TestMemoTouchesModel(t *testing.T) {
	t.Parallel()
	seeds := 300
	if testing.Short() {
		seeds = 60
	}
	reused, classified, refused := 0, 0, 0
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		segs := make([]Segment, 1+r.IntN(6))
		for i := range segs {
			segs[i] = Segment{Name: fmt.Sprintf("s%d", i), Priority: r.IntN(3), Rule: randomRule(r, 2, i)}
			if r.IntN(4) == 0 {
				segs[i].Group = "g"
			}
		}
		e, err := NewEngine(segs...)
		if err != nil {
			// A reference into an exclusive group can close a cycle
			// through the group's order: such sets are refused.
			if !strings.Contains(err.Error(), "cycle of segment references") {
				t.Fatalf("seed %d: %v", seed, err)
			}
			refused++
			continue
		}
		p := store.New("v")
		var m Memo
		now := testNow
		for step := range 120 {
			for range r.IntN(3) {
				p.Apply(store.Limits{}, randomEvent(r, now, step))
			}
			now = now.Add(time.Duration(r.IntN(90)) * time.Minute)
			in := &Input{Profile: p, Now: now, NewVisit: r.IntN(5) == 0,
				Request: Facts{Path: pick(r, "/", "/pricing", "/books/a"), Device: pick(r, "desktop", "mobile")}}
			got, fresh := e.ClassifyMemo(&m, in)
			want := e.Classify(&Input{Profile: p, Now: in.Now, NewVisit: in.NewVisit, Request: in.Request})
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d step %d: ClassifyMemo = %v (classified %v), Classify = %v\nsegments: %v", seed, step, got, fresh, want, segs)
			}
			if fresh {
				classified++
			} else {
				reused++
			}
		}
	}
	// The point of touches: most classifications here are reused.
	if reused == 0 || classified == 0 {
		t.Errorf("reused %d, classified %d: the memo was never reused or never renewed", reused, classified)
	}
	if refused > seeds/10 {
		t.Errorf("%d of %d random sets refused: the model tests too few", refused, seeds)
	}
	t.Logf("reused %d, classified %d, sets refused %d", reused, classified, refused)
}

// TestMemoKeepsAcrossPageViews checks the case that matters on a site: a
// returning visitor's page views, which touch the page counts, the times
// and the recent events, do not make rules on purchases, categories
// viewed enough, visits or other events classify again.
func TestMemoKeepsAcrossPageViews(t *testing.T) {
	t.Parallel()
	e, err := NewEngine(
		Segment{Name: "customer", Priority: 50, Rule: Purchased(1)},
		Segment{Name: "red-sox-fan", Priority: 40, Rule: CategoryViews("red-sox", 2)},
		Segment{Name: "returning", Priority: 30, Rule: Visits(2)},
		Segment{Name: "cart-abandoner", Priority: 20, Rule: And(EventCount("add_to_cart", 1), Not(Purchased(1)))},
		Segment{Name: "reader", Priority: 10, Rule: Or(CategoryViews("books", 3), EventCount("page", 20))},
	)
	if err != nil {
		t.Fatal(err)
	}
	p := profileOf(page("/a", "books", 3*day), page("/b", "books", 2*day), page("/c", "books", day))
	p.Apply(store.Limits{}, store.Event{ID: "x:9", Type: store.TypePage, Path: "/d", Time: testNow.Add(-time.Hour), NewVisit: true})
	var m Memo
	now := testNow
	want := []string{"returning", "reader"}
	for i := range 50 {
		got, classified := e.ClassifyMemo(&m, &Input{Profile: p, Now: now})
		if !slices.Equal(got, want) || classified != (i == 0) {
			t.Fatalf("view %d: %v, classified %v; want %v, classified only the first time", i, got, classified, want)
		}
		now = now.Add(time.Second)
		p.Apply(store.Limits{}, store.Event{ID: fmt.Sprintf("y:%d", i+1), Type: store.TypePage, Path: fmt.Sprintf("/p%d", i), Time: now})
	}
	// An event that one of them depends on classifies again.
	p.Apply(store.Limits{}, store.Event{ID: "y:100", Type: store.TypeTrack, Name: "add_to_cart", Time: now})
	got, classified := e.ClassifyMemo(&m, &Input{Profile: p, Now: now})
	if want := []string{"returning", "cart-abandoner", "reader"}; !slices.Equal(got, want) || !classified {
		t.Fatalf("after add_to_cart: %v, classified %v; want %v, classified", got, classified, want)
	}
}

func pick(r *rand.Rand, s ...string) string { return s[r.IntN(len(s))] }

// randomRule returns a random rule of depth at most d for segment i
// (InSegment refers only to segments defined before it: no cycles).
func randomRule(r *rand.Rand, d, i int) Rule {
	if d > 0 && r.IntN(3) == 0 {
		switch r.IntN(3) {
		case 0:
			return And(randomRule(r, d-1, i), randomRule(r, d-1, i))
		case 1:
			return Or(randomRule(r, d-1, i), randomRule(r, d-1, i))
		default:
			return Not(randomRule(r, d-1, i))
		}
	}
	n := 1 + r.IntN(4)
	switch r.IntN(14) {
	case 12:
		// Plugins that tell their parts (Touching).
		return touchingRule{parts: store.TouchPurchases, f: func(p *store.Profile) bool { return p.Purchases.Items["i1"] >= n }}
	case 13:
		return touchingRule{parts: store.TouchPage("/pricing"), f: func(p *store.Profile) bool { return p.Pages["/pricing"] >= n }}
	case 0:
		return Purchased(n)
	case 1:
		return Visits(n)
	case 2:
		return EventCount(pick(r, "page", "add_to_cart", "email_open"), n)
	case 3:
		return CategoryViews(pick(r, "books", "paint"), n)
	case 4:
		return PageVisited(PageVisits{Path: pick(r, "/pricing", "/books/a"), Min: n})
	case 5:
		return PageVisited(PageVisits{Path: "/books/*", Match: PathGlob, Min: n, Within: time.Duration(r.IntN(3)) * time.Hour})
	case 6:
		return CountEvents(Events{Name: pick(r, "page", "add_to_cart"), Min: n, Max: r.IntN(2) * (n + 2), Within: time.Duration(r.IntN(2)) * 2 * time.Hour})
	case 7:
		return Trait("plan", pick(r, "pro", "free"))
	case 8:
		return Contextual(Context{Path: []string{pick(r, "/pricing", "/")}, Device: []string{pick(r, "mobile", "desktop")}})
	case 9:
		if i > 0 {
			return InSegment(fmt.Sprintf("s%d", r.IntN(i)))
		}
		return Visits(n)
	case 10:
		// A rule that does not tell what it reads.
		return RuleFunc(func(in *Input) (bool, error) {
			return in.Profile != nil && in.Profile.Pages["/pricing"] >= n, nil
		})
	default:
		return Recency(Since{Of: "page", Within: time.Duration(1+r.IntN(3)) * time.Hour})
	}
}

// randomEvent returns a random event at now, the step-th of its stream.
func randomEvent(r *rand.Rand, now time.Time, step int) store.Event {
	ev := store.Event{ID: fmt.Sprintf("m:%d", step*4+r.IntN(4)+1), Time: now.Add(-time.Duration(r.IntN(120)) * time.Minute), NewVisit: r.IntN(6) == 0}
	switch r.IntN(6) {
	case 0, 1, 2:
		ev.Type, ev.Path, ev.Category = store.TypePage, pick(r, "/", "/pricing", "/books/a", "/books/b"), pick(r, "", "books", "paint")
	case 3:
		ev.Type, ev.Name = store.TypeTrack, pick(r, "add_to_cart", "email_open")
	case 4:
		ev.Type, ev.Name = store.TypeTrack, store.EventPurchase
		ev.Items = []store.Item{{ID: "i1", Category: "books", Price: 5, Quantity: 1}}
	default:
		ev.Type, ev.Traits = store.TypeIdentify, []byte(fmt.Sprintf(`{"plan":%q}`, pick(r, "pro", "free")))
	}
	return ev
}

// TestRecallAgreesWithClassifyMemo checks that Recall answers what
// ClassifyMemo would reuse, and nothing when ClassifyMemo would classify.
func TestRecallAgreesWithClassifyMemo(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 5))
	e, err := NewEngine(
		Segment{Name: "buyer", Rule: Purchased(1)},
		Segment{Name: "reader", Rule: CategoryViews("books", 3)},
		Segment{Name: "pricing", Rule: PageVisited(PageVisits{Path: "/pricing", Min: 2})},
	)
	if err != nil {
		t.Fatal(err)
	}
	p := store.New("v")
	var m Memo
	now := testNow
	for step := range 500 {
		if r.IntN(2) == 0 {
			p.Apply(store.Limits{}, randomEvent(r, now, step))
		}
		now = now.Add(time.Minute)
		f := Facts{Path: pick(r, "/", "/pricing")}
		nv := r.IntN(8) == 0
		recalled, ok := e.Recall(&m, p, f, now, nv, 0)
		got, classified := e.ClassifyMemo(&m, &Input{Profile: p, Request: f, Now: now, NewVisit: nv})
		if ok == classified || ok && !slices.Equal(recalled, got) {
			t.Fatalf("step %d: Recall = %v, %v; ClassifyMemo = %v, classified %v", step, recalled, ok, got, classified)
		}
	}
}

// touchingRule is a plugin that says the parts of the profile it reads
// (Touching), and that it reads nothing else (Dependent).
type touchingRule struct {
	parts store.Touch
	f     func(*store.Profile) bool
}

func (t touchingRule) Match(in *Input) (bool, error) {
	return in.Profile != nil && t.f(in.Profile), nil
}
func (t touchingRule) Touches() store.Touch       { return t.parts }
func (t touchingRule) Dependencies() Dependencies { return Dependencies{} }

// TestInvalidate checks that a plugin consulting something besides the
// profile (here a threshold that changes) is asked again after
// Engine.Invalidate, and only then, since it says it reads only the
// purchases.
func TestInvalidate(t *testing.T) {
	t.Parallel()
	var min atomic.Int64
	min.Store(1)
	e, err := NewEngine(Segment{Name: "buyer", Rule: touchingRule{parts: store.TouchPurchases,
		f: func(p *store.Profile) bool { return p.Purchases.Count >= int(min.Load()) }}})
	if err != nil {
		t.Fatal(err)
	}
	p := profileOf(page("/a", "books", day))
	p.Apply(store.Limits{}, store.Event{ID: "o:1", Type: store.TypeTrack, Name: store.EventPurchase, Time: testNow.Add(-time.Hour),
		Items: []store.Item{{ID: "i1", Price: 5, Quantity: 1}}})
	var m Memo
	classify := func(step string, want []string, wantClassified bool) {
		t.Helper()
		got, classified := e.ClassifyMemo(&m, &Input{Profile: p, Now: testNow})
		if !slices.Equal(got, want) || classified != wantClassified {
			t.Fatalf("%s: %v, classified %v; want %v, classified %v", step, got, classified, want, wantClassified)
		}
	}
	classify("first", []string{"buyer"}, true)
	p.Apply(store.Limits{}, store.Event{ID: "p:1", Type: store.TypePage, Path: "/b", Time: testNow})
	classify("after a page view", []string{"buyer"}, false)
	min.Store(2)
	classify("before Invalidate", []string{"buyer"}, false) // as documented: the engine cannot know
	e.Invalidate()
	classify("after Invalidate", nil, true)
	classify("again", nil, false)
}
