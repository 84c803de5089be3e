package bolt_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/bolt"
)

func Example() {
	dir, err := os.MkdirTemp("", "tailor-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := bolt.Open(filepath.Join(dir, "profiles.db"), bolt.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	at := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	events := []store.Event{
		{ID: "web-1:1", Type: store.TypePage, Path: "/books/moneyball", Category: "books", Time: at},
		{ID: "web-1:2", Type: store.TypeTrack, Name: store.EventPurchase, Time: at.Add(time.Minute),
			Items: []store.Item{{ID: "moneyball", Category: "books", Price: 12.5, Quantity: 2}}},
	}
	if _, err := s.Apply(ctx, "visitor-42", events); err != nil {
		log.Fatal(err)
	}
	// A retried delivery of the same events changes nothing.
	if _, err := s.Apply(ctx, "visitor-42", events); err != nil {
		log.Fatal(err)
	}

	p, err := s.Load(ctx, "visitor-42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("pages:", p.Counts["page"], "purchases:", p.Purchases.Count, "revenue:", p.Purchases.Revenue)

	n, err := s.Expire(ctx, at.AddDate(1, 0, 0))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("expired:", n)
	// Output:
	// pages: 1 purchases: 1 revenue: 25
	// expired: 1
}
