package rules

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

// The seed segmentation strategies, each from a visitor's events to their
// segments, with the segments of testdata/segments.json.

func strategyEngine(t *testing.T) *Engine {
	t.Helper()
	e := &Engine{}
	if err := e.ReloadFile("testdata/segments.json"); err != nil {
		t.Fatal(err)
	}
	return e
}

// segmentsOf classifies the visitor whose events are evs.
func segmentsOf(t *testing.T, e *Engine, f Facts, evs ...store.Event) []string {
	t.Helper()
	return e.Classify(&Input{Profile: profileOf(evs...), Request: f, Now: testNow})
}

func checkIn(t *testing.T, got []string, in []string, out []string) {
	t.Helper()
	for _, s := range in {
		if !slices.Contains(got, s) {
			t.Errorf("not in %q: %v", s, got)
		}
	}
	for _, s := range out {
		if slices.Contains(got, s) {
			t.Errorf("in %q: %v", s, got)
		}
	}
}

func TestStrategyPricingTwiceThisWeek(t *testing.T) {
	t.Parallel()
	e := strategyEngine(t)
	twice := segmentsOf(t, e, Facts{}, page("/", "", 6*day), page("/pricing", "", 5*day), page("/pricing", "", day))
	checkIn(t, twice, []string{"pricing-curious"}, nil)
	lastWeek := segmentsOf(t, e, Facts{}, page("/pricing", "", 9*day), page("/pricing", "", day))
	checkIn(t, lastWeek, nil, []string{"pricing-curious"})
	// With a CRM opportunity, the visitor is also a hot lead.
	hot := segmentsOf(t, e, Facts{}, identify(`{"crm": {"stage": "opportunity"}}`), page("/pricing", "", 2*day), page("/pricing", "", day))
	checkIn(t, hot, []string{"pricing-curious", "crm-opportunity", "hot-lead"}, nil)
}

func TestStrategyEmailEngagement(t *testing.T) {
	t.Parallel()
	e := strategyEngine(t)
	var engaged, lapsed []store.Event
	for i := range 7 {
		c := fmt.Sprintf(`{"campaign": "spring-%d"}`, i)
		engaged = append(engaged, track("email_sent", time.Duration(30-i)*day, c))
		lapsed = append(lapsed, track("email_sent", time.Duration(30-i)*day, c))
		if i >= 2 { // opened the last five
			engaged = append(engaged, track("email_opened", time.Duration(30-i)*day-time.Hour, c))
		}
		if i != 5 {
			lapsed = append(lapsed, track("email_opened", time.Duration(30-i)*day-time.Hour, c))
		}
	}
	checkIn(t, segmentsOf(t, e, Facts{}, engaged...), []string{"engaged-reader"}, nil)
	checkIn(t, segmentsOf(t, e, Facts{}, lapsed...), nil, []string{"engaged-reader"})
}

func TestStrategyLifecycle(t *testing.T) {
	t.Parallel()
	e := strategyEngine(t)
	stages := []string{"non-customer", "one-time", "repeat", "loyal"}
	for n, want := range map[int]string{0: "non-customer", 1: "one-time", 2: "repeat", 4: "repeat", 5: "loyal", 9: "loyal"} {
		evs := []store.Event{page("/", "", 100*day)}
		for i := range n {
			evs = append(evs, order(time.Duration(90-i)*day, 20))
		}
		got := segmentsOf(t, e, Facts{}, evs...)
		var others []string
		for _, s := range stages {
			if s != want {
				others = append(others, s)
			}
		}
		t.Run(fmt.Sprintf("%d orders", n), func(t *testing.T) { checkIn(t, got, []string{want}, others) })
	}
}

func TestStrategyWatercolours(t *testing.T) {
	t.Parallel()
	e := strategyEngine(t)
	// Many old views of oils, a few recent ones of watercolours: the
	// recent interest wins.
	var evs []store.Event
	for i := range 12 {
		evs = append(evs, page("/oils", "oils", time.Duration(90+i)*day))
	}
	for i := range 4 {
		evs = append(evs, page("/watercolours", "watercolours", time.Duration(i)*day))
	}
	checkIn(t, segmentsOf(t, e, Facts{}, evs...), []string{"watercolourist"}, nil)
	// Recent views of oils win over one older view of watercolours.
	checkIn(t, segmentsOf(t, e, Facts{}, page("/w", "watercolours", 20*day), page("/o", "oils", 2*day), page("/o", "oils", day)), nil, []string{"watercolourist"})
}

func TestStrategySeasonalBuyer(t *testing.T) {
	t.Parallel()
	e := strategyEngine(t)
	var evs []store.Event
	for _, y := range []int{2023, 2024, 2025} {
		evs = append(evs,
			orderAt(time.Date(y, time.December, 12, 10, 0, 0, 0, time.UTC), 80),
			orderAt(time.Date(y, time.April, 3, 10, 0, 0, 0, time.UTC), 30))
	}
	got := segmentsOf(t, e, Facts{}, evs...)
	checkIn(t, got, []string{"seasonal-buyer"}, []string{"due-to-buy"})
	// In March, a buyer of every April is due within 30 days.
	in := &Input{Profile: profileOf(evs...), Now: time.Date(2026, time.March, 10, 0, 0, 0, 0, time.UTC)}
	checkIn(t, e.Classify(in), []string{"seasonal-buyer", "due-to-buy"}, nil)
	// And, in April, until they buy.
	in = &Input{Profile: profileOf(evs...), Now: time.Date(2026, time.April, 20, 0, 0, 0, 0, time.UTC)}
	checkIn(t, e.Classify(in), []string{"due-to-buy"}, nil)
	bought := append(evs, orderAt(time.Date(2026, time.April, 2, 0, 0, 0, 0, time.UTC), 30))
	in = &Input{Profile: profileOf(bought...), Now: time.Date(2026, time.April, 20, 0, 0, 0, 0, time.UTC)}
	checkIn(t, e.Classify(in), nil, []string{"due-to-buy"})
	// Only December: not a December-and-April buyer.
	checkIn(t, segmentsOf(t, e, Facts{}, evs[0], evs[2], evs[4]), nil, []string{"seasonal-buyer"})
}

func TestStrategyCRMOpportunity(t *testing.T) {
	t.Parallel()
	e := strategyEngine(t)
	checkIn(t, segmentsOf(t, e, Facts{}, page("/", "", day), identify(`{"crm": {"stage": "opportunity"}, "plan": "trial"}`)), []string{"crm-opportunity"}, []string{"hot-lead"})
	checkIn(t, segmentsOf(t, e, Facts{}, identify(`{"crm": {"stage": "customer"}}`)), nil, []string{"crm-opportunity"})
}

func TestStrategyUntrackedContext(t *testing.T) {
	t.Parallel()
	e := strategyEngine(t)
	in := &Input{Request: Facts{Source: "newsletter", Device: "mobile", Country: "BE", New: true}, Now: testNow}
	r := e.classify(in)
	// Conditions see a missing profile as null values: "not a customer
	// yet" is true.
	if !slices.Equal(r.segments, []string{"newsletter-mobile", "first-visit", "french", "not-a-customer-yet"}) {
		t.Errorf("untracked visitor: %v", r.segments)
	}
	if r.request == 0 {
		t.Error("UsesRequest is false")
	}
}

func TestStrategyCartAbandonerAndStaff(t *testing.T) {
	t.Parallel()
	e := strategyEngine(t)
	abandoned := segmentsOf(t, e, Facts{}, page("/", "", 2*day), track("add_to_cart", day, `{"sku": "x"}`))
	checkIn(t, abandoned, []string{"cart-abandoner", "non-customer", "not-a-customer-yet"}, []string{"big-spender"})
	bought := segmentsOf(t, e, Facts{}, page("/", "", 2*day), track("add_to_cart", day, ""), track("purchase", day/2, `{"total": 800}`))
	checkIn(t, bought, []string{"big-spender", "one-time"}, []string{"cart-abandoner", "not-a-customer-yet"})
	staff := segmentsOf(t, e, Facts{}, store.Event{Type: store.TypeIdentify, UserID: "u-2", Time: testNow})
	checkIn(t, staff, []string{"staff"}, nil)
}
