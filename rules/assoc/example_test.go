package assoc_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/tailorhq/tailor/rules/assoc"
	"github.com/tailorhq/tailor/store"
)

// Twenty visitors: eight bought Moneyball and a Red Sox banner, and six
// of those eight (75%) also bought the Red Sox Mr. Potato Head; four
// bought Moneyball alone, one of them with the Potato Head.
func Example() {
	m := assoc.New(assoc.Config{})
	learn := func(n int, items ...string) {
		for range n {
			m.Learn(assoc.Basket{}, assoc.Basket{Bought: items})
		}
	}
	learn(6, "moneyball", "red-sox-banner", "red-sox-potato-head")
	learn(2, "moneyball", "red-sox-banner")
	learn(1, "moneyball", "red-sox-potato-head")
	learn(3, "moneyball")
	learn(8, "peanuts")

	for _, r := range m.Rules("moneyball", "red-sox-banner") {
		fmt.Println(r)
	}
	for _, r := range m.Rules("moneyball") {
		fmt.Println(r)
	}
	// Output:
	// {moneyball, red-sox-banner} => red-sox-potato-head (count 6, support 30.0%, confidence 75.0%, lift 2.14)
	// {moneyball} => red-sox-banner (count 8, support 40.0%, confidence 66.7%, lift 1.67)
	// {moneyball} => red-sox-potato-head (count 7, support 35.0%, confidence 58.3%, lift 1.67)
}

// A visitor who bought Moneyball and a banner, in two orders, is offered
// the Potato Head first, with the reason; popular items fill the list.
func ExampleModel_Recommend() {
	m := assoc.New(assoc.Config{})
	learn := func(n int, items ...string) {
		for range n {
			m.Learn(assoc.Basket{}, assoc.Basket{Bought: items})
		}
	}
	learn(8, "moneyball", "red-sox-banner", "red-sox-potato-head", "yankees-cap")
	learn(8, "moneyball", "red-sox-banner", "red-sox-potato-head")
	learn(2, "moneyball", "red-sox-banner", "yankees-cap")
	learn(2, "moneyball", "red-sox-banner")
	learn(2, "moneyball", "red-sox-potato-head")
	learn(18, "moneyball")
	learn(5, "red-sox-banner")
	learn(30, "peanuts")
	m.SetCategory("red-sox-potato-head", "toys")

	p := store.New("visitor")
	p.Apply(store.Limits{},
		store.Event{ID: "e1", Type: store.TypeTrack, Name: store.EventPurchase, Items: []store.Item{{ID: "moneyball", Category: "books"}}},
		store.Event{ID: "e2", Type: store.TypeTrack, Name: store.EventPurchase, Items: []store.Item{{ID: "red-sox-banner"}}},
	)
	for _, r := range m.Recommend(p, 3) {
		fmt.Printf("%s (%s)\n", r.Item, r.Reason)
		if r.Rule != nil {
			fmt.Println("  ", r.Rule)
		}
	}
	// Output:
	// red-sox-potato-head (bought together with moneyball and red-sox-banner)
	//    {moneyball, red-sox-banner} => red-sox-potato-head (count 16, support 21.3%, confidence 80.0%, lift 3.33)
	// yankees-cap (bought together with moneyball and red-sox-banner)
	//    {moneyball, red-sox-banner} => yankees-cap (count 10, support 13.3%, confidence 50.0%, lift 3.75)
	// peanuts (popular)
}

// LearnEvent takes the visitor's basket before each event from the
// profile, so a model can learn from the events as they are recorded.
func ExampleModel_LearnEvent() {
	m := assoc.New(assoc.Config{})
	lim := store.Limits{}
	for i := range 5 {
		p := store.New(fmt.Sprint("visitor-", i))
		for j, e := range []store.Event{
			{Type: store.TypePage, Path: "/books/moneyball", Item: "moneyball", Category: "books"},
			{Type: store.TypeTrack, Name: store.EventPurchase, Items: []store.Item{{ID: "moneyball", Category: "books"}}},
			{Type: store.TypeTrack, Name: store.EventPurchase, Items: []store.Item{{ID: "red-sox-banner", Category: "fan-gear"}}},
		} {
			e.ID = store.EventID("web", uint64(j+1))
			m.LearnEvent(p, &e) // p before e
			p.Apply(lim, e)
		}
	}
	r, ok := m.Likelihood([]string{"moneyball"}, "red-sox-banner")
	fmt.Println(ok, r.Confidence, r.Count)
	// Output:
	// true 1 5
}

// A snapshot restores a model at start-up.
func ExampleModel_WriteTo() {
	m := assoc.New(assoc.Config{MinSupport: 1})
	m.Learn(assoc.Basket{}, assoc.Basket{Bought: []string{"tea", "scones"}})
	m.Learn(assoc.Basket{}, assoc.Basket{Bought: []string{"tea"}})
	m.Learn(assoc.Basket{}, assoc.Basket{Bought: []string{"jam"}})

	var snap bytes.Buffer
	if _, err := m.WriteTo(&snap); err != nil {
		panic(err)
	}
	restored := assoc.New(assoc.Config{MinSupport: 1})
	if _, err := restored.ReadFrom(&snap); err != nil {
		panic(err)
	}
	fmt.Println(restored.Rules("scones"))
	// Output:
	// [{scones} => tea (count 1, support 33.3%, confidence 100.0%, lift 1.50)]
}

// A buyer of Christmas presents and Easter eggs, in New York, who opens
// emails in the evening.
func ExamplePredict() {
	ny, _ := time.LoadLocation("America/New_York")
	p := store.New("visitor")
	var evs []store.Event
	add := func(t time.Time, e store.Event) {
		e.ID, e.Time = store.EventID("web", uint64(len(evs)+1)), t
		evs = append(evs, e)
	}
	add(time.Date(2023, 1, 2, 9, 0, 0, 0, ny), store.Event{Type: store.TypeIdentify, Traits: []byte(`{"timezone":"America/New_York"}`)})
	for y := 2023; y <= 2025; y++ {
		add(time.Date(y, time.April, 2, 19, 0, 0, 0, ny), store.Event{Type: store.TypeTrack, Name: store.EventPurchase, Items: []store.Item{{ID: "eggs"}}})
		add(time.Date(y, time.December, 12, 19, 0, 0, 0, ny), store.Event{Type: store.TypeTrack, Name: store.EventPurchase, Items: []store.Item{{ID: "gift"}}})
	}
	for _, d := range []time.Time{ // Mondays
		time.Date(2023, time.December, 4, 20, 15, 0, 0, ny),
		time.Date(2024, time.December, 2, 20, 40, 0, 0, ny),
		time.Date(2025, time.December, 1, 20, 5, 0, 0, ny),
	} {
		add(d, store.Event{Type: store.TypeTrack, Name: assoc.EventEmailOpened})
	}
	p.Apply(store.Limits{}, evs...)

	pr := assoc.Predict(p, time.Date(2026, time.February, 1, 0, 0, 0, 0, time.UTC))
	fmt.Println("usual months:", pr.UsualMonths)
	fmt.Println("next purchase:", pr.NextPurchase.Format(time.DateOnly), "by", pr.NextPurchaseBasis)
	fmt.Printf("contact at %d h on %s (%s)\n", pr.BestHour, time.Weekday(pr.BestWeekday), pr.TimeZone)
	fmt.Printf("churn risk %.2f after %.0f days, typical gap %.0f days\n", pr.ChurnRisk, pr.DaysSincePurchase, pr.GapDays)
	// Output:
	// usual months: [4 12]
	// next purchase: 2026-04-02 by season
	// contact at 20 h on Monday (America/New_York)
	// churn risk 0.12 after 50 days, typical gap 254 days
}
