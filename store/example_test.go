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

// A store's fold: decode the stored profile, apply new events, encode it
// into a buffer the store reuses.
func ExampleProfile_AppendBinary() {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	p := store.New("visitor-1")
	p.Apply(store.Limits{}, store.Event{ID: "web-1:1", Type: store.TypePage, Time: t0, Path: "/"})
	stored, _ := store.Marshal(p)

	var buf []byte // reused from write to write
	q, err := store.Unmarshal(stored)
	if err != nil {
		panic(err)
	}
	q.Apply(store.Limits{}, store.Event{ID: "web-1:2", Type: store.TypePage, Time: t0.Add(time.Minute), Path: "/pricing"})
	q.Version++
	if buf, err = q.AppendBinary(buf[:0]); err != nil {
		panic(err)
	}
	r, _ := store.Unmarshal(buf)
	fmt.Println(r.Version, r.Counts["page"], r.Recent.Len(), r.Recent.At(1).Path)
	// Output:
	// 1 2 2 /pricing
}

// Stores that announce changes as text send Change.String and read it back
// with ParseChange; a deletion is marked so that every process forgets the
// profile, and a document put is marked so that no process takes its name
// for a profile's id.
func ExampleParseChange() {
	for _, c := range []store.Change{{ID: "visitor-1"}, {ID: "visitor-2", Deleted: true}, {Document: "segments/live"}} {
		msg := c.String()
		got := store.ParseChange(msg)
		if got.Document != "" {
			fmt.Printf("%q -> document %s\n", msg, got.Document)
			continue
		}
		fmt.Printf("%q -> %s deleted=%v\n", msg, got.ID, got.Deleted)
	}
	// Output:
	// "visitor-1" -> visitor-1 deleted=false
	// "\x01visitor-2" -> visitor-2 deleted=true
	// "\x02segments/live" -> document segments/live
}
