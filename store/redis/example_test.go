package redis_test

import (
	"context"
	"fmt"
	"log"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/redis"
)

// The example needs a Redis server at 127.0.0.1:6379, so it is compiled
// but not run by go test. With a cluster, pass a *goredis.ClusterClient
// instead: the store is the same.
func Example() {
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close() // the application owns the client; Store.Close leaves it open

	s, err := redis.New(client, redis.Options{Prefix: "shop:"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	// Drop cached copies of profiles that any app instance changes.
	if err := s.Subscribe(ctx, func(c store.Change) { log.Printf("profile %s changed", c.ID) }); err != nil {
		log.Fatal(err)
	}

	at := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	// A write-behind flush: the events of many visitors in two round trips.
	ps, err := s.ApplyBatch(ctx, []store.Batch{
		{ID: "visitor-1", Events: []store.Event{{ID: "web-1:1", Type: store.TypePage, Path: "/books", Time: at}}},
		{ID: "visitor-2", Events: []store.Event{{ID: "web-1:2", Type: store.TypePage, Path: "/", Time: at}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ps[0].ID, ps[0].Counts["page"], ps[1].ID, ps[1].Counts["page"])

	// Retention: forget visitors not seen for two years.
	n, err := s.Expire(ctx, time.Now().AddDate(-2, 0, 0))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("expired", n)
}
