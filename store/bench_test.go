package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tailorhq/tailor/internal/testenv"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/bolt"
	"github.com/tailorhq/tailor/store/memory"
	"github.com/tailorhq/tailor/store/postgres"
	"github.com/tailorhq/tailor/store/redis"
)

// BenchmarkStoreApply writes batches of 100 visitors × 5 page views, the
// shape of a write-behind flush, through store.ApplyBatch. The visitors are
// drawn in turn from a pool of 1,000 that the benchmark first fills to the
// ring's 200 recent events, so profiles have their steady-state size. It
// reports events/s.
func BenchmarkStoreApply(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchApply(b, memory.New(store.Limits{})) })
	b.Run("bolt", func(b *testing.B) {
		s, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchApply(b, s)
	})
	b.Run("redis", func(b *testing.B) {
		c := goredis.NewClient(&goredis.Options{Addr: testenv.Redis(b)})
		defer c.Close()
		prefix := fmt.Sprintf("tailor-bench-%d:", time.Now().UnixNano())
		s, err := redis.New(c, redis.Options{Prefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		defer func() {
			ctx := context.Background()
			iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
		}()
		defer s.Close()
		benchApply(b, s)
	})
	b.Run("postgres", func(b *testing.B) {
		pool, err := pgxpool.New(context.Background(), testenv.Postgres(b))
		if err != nil {
			b.Fatal(err)
		}
		defer pool.Close()
		table := fmt.Sprintf("tailor_bench_%d", time.Now().UnixNano())
		s, err := postgres.New(pool, postgres.Options{Table: table})
		if err != nil {
			b.Fatal(err)
		}
		defer func() {
			for _, t := range []string{table, table + "_leases", table + "_counts", table + "_documents", table + "_journal", table + "_journal_head"} {
				pool.Exec(context.Background(), `DROP TABLE IF EXISTS "`+t+`"`)
			}
		}()
		defer s.Close()
		if err := s.Migrate(context.Background()); err != nil {
			b.Fatal(err)
		}
		benchApply(b, s)
	})
}

const (
	poolSize  = 1000
	batchSize = 100
	perBatch  = 5
)

func benchApply(b *testing.B, s store.Store) {
	ctx := context.Background()
	ids := make([]string, poolSize)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-visitor-%04d", i)
	}
	seq := uint64(0)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var paths, items [40]string
	for i := range paths {
		paths[i], items[i] = fmt.Sprintf("/products/item-%d", i), fmt.Sprintf("item-%d", i)
	}
	// batch returns new events (a retried batch would be skipped as
	// already applied, and measure nothing).
	batch := func(first int) []store.Batch {
		bs := make([]store.Batch, batchSize)
		for j := range bs {
			evs := make([]store.Event, perBatch)
			for k := range evs {
				seq++
				evs[k] = store.Event{ID: store.EventID("bench", seq), Type: store.TypePage,
					Path: paths[seq%40], Category: "books", Item: items[seq%40],
					Device: "desktop", Time: t0.Add(time.Duration(seq) * time.Second)}
			}
			bs[j] = store.Batch{ID: ids[(first+j)%poolSize], Events: evs}
		}
		return bs
	}
	// Fill every profile of the pool to the ring's size.
	for i := 0; i < poolSize*(store.DefaultLimits.Recent/perBatch); i += batchSize {
		if _, err := store.ApplyBatch(ctx, s, batch(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := store.ApplyBatch(ctx, s, batch(i*batchSize)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i*batchSize*perBatch)/b.Elapsed().Seconds(), "events/s")
}
