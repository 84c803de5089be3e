package store_test

import (
	"fmt"
	"time"

	"github.com/tailorhq/tailor/store"
)

// A profile is the fold of a visitor's events; an event applied twice
// counts once.
func ExampleProfile_Apply() {
	p := store.New("visitor-1")
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	view := store.Event{ID: "web-1:1", Type: store.TypePage, Time: t0, Path: "/products/moneyball", Category: "books", Item: "moneyball"}
	buy := store.Event{ID: "web-1:2", Type: store.TypeTrack, Name: store.EventPurchase, Time: t0.Add(time.Minute),
		Items: []store.Item{{ID: "moneyball", Category: "books", Price: 16.99}}}

	fmt.Println(p.Apply(store.Limits{}, view, buy))
	fmt.Println(p.Apply(store.Limits{}, buy)) // a retry
	fmt.Println(p.Counts["page"], p.Purchases.Count, p.Purchases.Revenue, p.Purchases.Months[time.December-1])
	// Output:
	// 2
	// 0
	// 1 1 16.99 1
}
