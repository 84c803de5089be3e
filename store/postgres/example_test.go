package postgres_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/postgres"
)

// This example needs a PostgreSQL server, so it is compiled but not run by
// go test.
func Example() {
	ctx := context.Background()

	// The pool is yours: configure it, and close it after the store.
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	s, err := postgres.New(pool, postgres.Options{}) // table and channel "tailor_profiles"
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil { // CREATE TABLE IF NOT EXISTS ...
		log.Fatal(err)
	}

	// Drop cached profiles that any process changes.
	err = s.Subscribe(ctx, func(c store.Change) { fmt.Println("changed:", c.ID) })
	if err != nil {
		log.Fatal(err)
	}

	p, err := s.Apply(ctx, "visitor-1", []store.Event{{
		ID: "web-1:1", Type: store.TypePage, Path: "/products/moneyball",
		Category: "books", Item: "moneyball", Time: time.Now(),
	}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Version, p.Views["moneyball"])
}
