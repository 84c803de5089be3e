package slots_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/admin"
	"github.com/tailorhq/tailor/middleware/slots"
	"github.com/tailorhq/tailor/rules/experiment"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// expSlot is the hero slot with an experiment between welcome-back and
// welcome-back-2 for returning visitors.
func expSlot(weights [2]float64, holdout float64, bandit *experiment.BanditConfig) slots.Slot {
	sl := heroSlot()
	sl.Variants = append(sl.Variants, slots.Variant{Key: "welcome-back-2", Fields: map[string]any{"title": "Good to see you"}})
	sl.Experiment = &slots.Experiment{
		Experiment: experiment.Experiment{
			Key:      "hero-returning",
			Segment:  "returning",
			Variants: []experiment.Variant{{Key: "welcome-back", Weight: weights[0]}, {Key: "welcome-back-2", Weight: weights[1]}},
			Holdout:  holdout,
			Goals:    []string{"purchase", "signup"},
		},
		Breakdown: []string{"vip"},
		Bandit:    bandit,
	}
	return sl
}

func mustSet(t testing.TB, sl ...slots.Slot) *slots.Engine {
	t.Helper()
	set, err := slots.NewEngine(sl...)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// exposures returns the visitor's exposure events, oldest first.
func exposures(v *middleware.Visitor) []map[string]string {
	var out []map[string]string
	for _, ev := range v.Profile().Recent.Events() {
		if ev.Name == experiment.ExposureEvent {
			var p map[string]string
			json.Unmarshal(ev.Props, &p)
			out = append(out, p)
		}
	}
	return out
}

func TestExperimentAssignment(t *testing.T) {
	t.Parallel()
	sl := expSlot([2]float64{1, 1}, 0, nil)
	set := mustSet(t, sl)
	s := newTestSite(t)
	seen := map[string]int{}
	for i := range 40 {
		b := &browser{}
		s.with(b, "/", func(v *middleware.Visitor) {
			// Not in the experiment's segment: the slot's own choice, no exposure.
			if c := set.Pick(v, "hero"); c.Variant != "welcome" || c.Experiment != "" {
				t.Errorf("not returning: %+v", c)
			}
		})
		s.with(b, "/in/returning", func(v *middleware.Visitor) {
			want, in := experiment.Assign(&sl.Experiment.Experiment, v.ID())
			if !in {
				t.Fatal("not in an experiment of full coverage")
			}
			c := set.Pick(v, "hero")
			if c.Variant != want || c.Arm != want || c.Experiment != "hero-returning" {
				t.Errorf("visitor %d: %+v, want %s", i, c, want)
			}
			if c.Fields["title"] == nil {
				t.Errorf("no fields: %+v", c)
			}
			seen[c.Variant]++
		})
	}
	if seen["welcome-back"] == 0 || seen["welcome-back-2"] == 0 {
		t.Errorf("one variant only: %v", seen)
	}
	// The experiment decides over the priorities for the visitors it takes,
	// but not for those outside its segment.
	s.with(nil, "/in/customer", func(v *middleware.Visitor) {
		if c := set.Pick(v, "hero"); c.Variant != "thank-you" {
			t.Errorf("customer: %+v", c)
		}
	})
}

func TestExperimentStableAcrossInstances(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	keys := []middleware.KeyPair{middleware.GenerateKeyPair()}
	a, b := newSite(t, st, keys), newSite(t, st, keys)
	setA := mustSet(t, expSlot([2]float64{1, 1}, 0, nil))
	setB := mustSet(t, expSlot([2]float64{1, 1}, 0, nil))
	for range 20 {
		br := &browser{}
		var first string
		a.with(br, "/in/returning", func(v *middleware.Visitor) { first = setA.Pick(v, "hero").Variant })
		a.with(br, "/in/returning", func(v *middleware.Visitor) {
			if got := setA.Pick(v, "hero").Variant; got != first {
				t.Errorf("same instance, next request: %s, then %s", first, got)
			}
		})
		if err := a.p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		b.with(br, "/in/returning", func(v *middleware.Visitor) {
			if got := setB.Pick(v, "hero").Variant; got != first {
				t.Errorf("other instance: %s, then %s", first, got)
			}
			if n := len(exposures(v)); n != 1 {
				t.Errorf("%d exposures, want 1", n)
			}
		})
	}
}

func TestExposureRecordedOnce(t *testing.T) {
	t.Parallel()
	set := mustSet(t, expSlot([2]float64{1, 1}, 0, nil))
	s := newTestSite(t)
	br := &browser{}
	var arm string
	s.with(br, "/in/returning,vip", func(v *middleware.Visitor) {
		for range 3 {
			arm = set.Pick(v, "hero").Arm
		}
		xs := exposures(v)
		if len(xs) != 1 {
			t.Fatalf("exposures = %v, want 1", xs)
		}
		want := map[string]string{"experiment": "hero-returning", "variant": arm, "segment": "vip"}
		if fmt.Sprint(xs[0]) != fmt.Sprint(want) {
			t.Errorf("exposure props = %v, want %v", xs[0], want)
		}
		var trait map[string]any
		json.Unmarshal(v.Profile().Trait(slots.TraitPrefix+"hero-returning"), &trait)
		if trait["variant"] != arm || trait["segment"] != "vip" {
			t.Errorf("trait = %v", trait)
		}
	})
	for range 3 {
		s.with(br, "/in/returning", func(v *middleware.Visitor) {
			if c := set.Pick(v, "hero"); c.Arm != arm {
				t.Errorf("arm %s, then %s", arm, c.Arm)
			}
			if n := len(exposures(v)); n != 1 {
				t.Errorf("%d exposures after more requests, want 1", n)
			}
		})
	}
}

func TestExperimentSticky(t *testing.T) {
	t.Parallel()
	// Everyone gets welcome-back-2 at first; then the weights flip.
	before := mustSet(t, expSlot([2]float64{0, 1}, 0, nil))
	after := mustSet(t, expSlot([2]float64{1, 0}, 0, nil))
	s := newTestSite(t)
	old, fresh := &browser{}, &browser{}
	s.with(old, "/in/returning", func(v *middleware.Visitor) {
		if c := before.Pick(v, "hero"); c.Variant != "welcome-back-2" {
			t.Fatalf("before: %+v", c)
		}
	})
	s.with(old, "/in/returning", func(v *middleware.Visitor) {
		if c := after.Pick(v, "hero"); c.Variant != "welcome-back-2" {
			t.Errorf("exposed visitor moved: %+v", c)
		}
	})
	s.with(fresh, "/in/returning", func(v *middleware.Visitor) {
		if c := after.Pick(v, "hero"); c.Variant != "welcome-back" {
			t.Errorf("new visitor: %+v", c)
		}
	})
}

func TestExperimentHoldout(t *testing.T) {
	t.Parallel()
	set := mustSet(t, expSlot([2]float64{1, 1}, 1, nil)) // everyone held out
	s := newTestSite(t)
	s.with(&browser{}, "/in/returning,red-sox-fan", func(v *middleware.Visitor) {
		c := set.Pick(v, "hero")
		if c.Variant != "red-sox" || c.Arm != experiment.HoldoutVariant || c.Experiment != "hero-returning" {
			t.Errorf("held out: %+v", c)
		}
		if xs := exposures(v); len(xs) != 1 || xs[0]["variant"] != experiment.HoldoutVariant {
			t.Errorf("exposures = %v", xs)
		}
	})
}

func TestExperimentNotForCrawlers(t *testing.T) {
	t.Parallel()
	set := mustSet(t, expSlot([2]float64{1, 1}, 0, nil))
	s := newTestSite(t)
	if c := set.Pick(nil, "hero"); c.Experiment != "" || c.Variant != "welcome" {
		t.Errorf("nil visitor: %+v", c)
	}
	req := httptest.NewRequest("GET", "/in/returning", nil)
	req.Header.Set("User-Agent", "Googlebot/2.1")
	s.p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		if c := set.Pick(v, "hero"); c.Experiment != "" || c.Variant != "welcome-back" {
			t.Errorf("crawler: %+v", c)
		}
	})).ServeHTTP(httptest.NewRecorder(), req)
}

// exposed stores a profile exposed to the experiment, with goal counts.
func exposed(t *testing.T, st store.Store, id, variant, segment string, goalsAt, goalsAfter int, extra ...store.Event) {
	t.Helper()
	var evs []store.Event
	n := 0
	ev := func(e store.Event) {
		n++
		e.ID = fmt.Sprintf("test:%d", n)
		evs = append(evs, e)
	}
	for range goalsAt {
		ev(store.Event{Type: store.TypeTrack, Name: "purchase"})
	}
	trait := fmt.Sprintf(`{%q: {"variant": %q, "segment": %q, "goals": {"purchase": %d, "signup": 0}}}`,
		slots.TraitPrefix+"hero-returning", variant, segment, goalsAt)
	ev(store.Event{Type: store.TypeTrack, Name: experiment.ExposureEvent,
		Props:  json.RawMessage(fmt.Sprintf(`{"experiment": "hero-returning", "variant": %q}`, variant)),
		Traits: json.RawMessage(trait)})
	for range goalsAfter {
		ev(store.Event{Type: store.TypeTrack, Name: "purchase"})
	}
	for _, e := range extra {
		ev(e)
	}
	if _, err := st.Apply(context.Background(), id, evs); err != nil {
		t.Fatal(err)
	}
}

// rangeOnly hides the aggregates of a store: the tally reads profiles.
type rangeOnly struct {
	store.Store
	store.Ranger
}

// TestTallyCountsProfiles: the same counts from the store's aggregates and
// from reading every profile.
func TestTallyCountsProfiles(t *testing.T) {
	t.Parallel()
	mem := memory.New(store.Limits{})
	t.Run("aggregates", func(t *testing.T) { tallyCounts(t, mem, mem, "counted by the store over all 6 profiles") })
	t.Run("read", func(t *testing.T) { tallyCounts(t, mem, rangeOnly{mem, mem}, "counted from 6 stored profiles") })
}

func tallyCounts(t *testing.T, st *memory.Store, from store.Ranger, note string) {
	if _, err := st.Load(context.Background(), "v1"); err == nil {
		st = memory.New(store.Limits{}) // a fresh store for this run
		if r, ok := from.(rangeOnly); ok {
			r.Store, r.Ranger = st, st
			from = r
		} else {
			from = st
		}
	}
	exposed(t, st, "v1", "welcome-back", "vip", 0, 1)
	exposed(t, st, "v2", "welcome-back", "vip", 2, 0)              // bought before exposure only
	exposed(t, st, "v3", "welcome-back", slots.OtherSegment, 1, 3) // converts once
	exposed(t, st, "v4", "welcome-back-2", slots.OtherSegment, 0, 0,
		store.Event{Type: store.TypeTrack, Name: "signup"})
	exposed(t, st, "v5", experiment.HoldoutVariant, "vip", 0, 0)
	// Not exposed: not counted.
	if _, err := st.Apply(context.Background(), "v6", []store.Event{{ID: "test:1", Type: store.TypeTrack, Name: "purchase"}}); err != nil {
		t.Fatal(err)
	}

	set := mustSet(t, expSlot([2]float64{1, 1}, 0.1, nil))
	tally, err := slots.NewTally(set, slots.TallyConfig{Store: from})
	if err != nil {
		t.Fatal(err)
	}
	if err := tally.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	type cell = experiment.Cell
	type counts = experiment.Counts
	want := map[cell]counts{
		{Segment: "vip", Variant: "welcome-back"}:                {Visitors: 2, Conversions: 1},
		{Segment: slots.OtherSegment, Variant: "welcome-back"}:   {Visitors: 1, Conversions: 1},
		{Segment: slots.OtherSegment, Variant: "welcome-back-2"}: {Visitors: 1, Conversions: 1},
		{Segment: "vip", Variant: experiment.HoldoutVariant}:     {Visitors: 1},
		{Segment: "", Variant: "welcome-back"}:                   {Visitors: 3, Conversions: 2},
		{Segment: "", Variant: "welcome-back-2"}:                 {Visitors: 1, Conversions: 1},
		{Segment: "", Variant: experiment.HoldoutVariant}:        {Visitors: 1},
	}
	got := tally.Counts("hero-returning")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counts\n got %v\nwant %v", got, want)
	}

	// The dashboard's source.
	var src admin.ExperimentSource = tally
	res, err := src.ExperimentResults(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Experiment.Key != "hero-returning" || fmt.Sprint(res[0].Counts) != fmt.Sprint(want) ||
		!strings.Contains(res[0].Note, note) {
		t.Errorf("results = %+v", res)
	}
	rows := experiment.Results(res[0].Experiment, res[0].Counts)
	if len(rows) == 0 {
		t.Error("no rows")
	}
}

func TestTallyLimit(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	for i := range 5 {
		exposed(t, st, fmt.Sprint("v", i), "welcome-back", "vip", 0, 1)
	}
	tally, err := slots.NewTally(mustSet(t, expSlot([2]float64{1, 1}, 0, nil)), slots.TallyConfig{Store: rangeOnly{st, st}, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	res, err := tally.ExperimentResults(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := res[0].Counts[experiment.Cell{Variant: "welcome-back"}].Visitors; n != 3 || !strings.Contains(res[0].Note, "the first 3 only") {
		t.Errorf("visitors %d, note %q", n, res[0].Note)
	}
}

// End to end: visitors see the slot, some buy, the tally counts them from
// the store.
func TestTallyEndToEnd(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	s := newSite(t, st, []middleware.KeyPair{middleware.GenerateKeyPair()})
	set := mustSet(t, expSlot([2]float64{1, 1}, 0, nil))
	want := map[string]experiment.Counts{}
	for i := range 30 {
		br := &browser{}
		var arm string
		s.with(br, "/in/returning", func(v *middleware.Visitor) { arm = set.Pick(v, "hero").Arm })
		n := want[arm]
		n.Visitors++
		if i%3 == 0 {
			s.with(br, "/checkout", func(v *middleware.Visitor) { v.Purchase(store.Item{ID: "cap", Price: 10, Quantity: 1}) })
			s.with(br, "/checkout", func(v *middleware.Visitor) { v.Purchase(store.Item{ID: "hat", Price: 10, Quantity: 1}) })
			n.Conversions++
		}
		want[arm] = n
	}
	if err := s.p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	tally, err := slots.NewTally(set, slots.TallyConfig{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := tally.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := tally.Counts("hero-returning")
	for arm, n := range want {
		if got[experiment.Cell{Variant: arm}] != n || got[experiment.Cell{Segment: slots.OtherSegment, Variant: arm}] != n {
			t.Errorf("%s: got %v, want %v", arm, got, n)
		}
	}
}

func TestBandit(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	// In vip, welcome-back-2 converts far better; elsewhere, no data.
	for i := range 200 {
		exposed(t, st, fmt.Sprint("a", i), "welcome-back", "vip", 0, boolInt(i < 10))
		exposed(t, st, fmt.Sprint("b", i), "welcome-back-2", "vip", 0, boolInt(i < 60))
	}
	set := mustSet(t, expSlot([2]float64{1, 1}, 0, &experiment.BanditConfig{Floor: 0.05}))
	if w := set.BanditWeights("hero", "vip"); math.Abs(w[0]-0.5) > 1e-9 {
		t.Fatalf("weights before any update: %v", w)
	}
	tally, err := slots.NewTally(set, slots.TallyConfig{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := tally.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	w := set.BanditWeights("hero", "vip")
	if math.Abs(w[0]-0.05) > 1e-6 || math.Abs(w[1]-0.95) > 1e-6 {
		t.Errorf("vip weights = %v, want the floor and the rest", w)
	}
	if w := set.BanditWeights("hero", slots.OtherSegment); math.Abs(w[0]-0.5) > 1e-9 {
		t.Errorf("other weights = %v, want the experiment's", w)
	}
	if set.BanditWeights("nope", "vip") != nil {
		t.Error("weights of an unknown slot")
	}

	// New vip visitors go to welcome-back-2 at about 95%.
	s := newTestSite(t)
	n, twos := 300, 0
	for range n {
		s.with(nil, "/in/returning,vip", func(v *middleware.Visitor) {
			if set.Pick(v, "hero").Variant == "welcome-back-2" {
				twos++
			}
		})
	}
	if share := float64(twos) / float64(n); share < 0.9 {
		t.Errorf("welcome-back-2 share in vip = %.2f, want about 0.95", share)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
