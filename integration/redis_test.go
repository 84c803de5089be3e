package integration_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tailorhq/tailor/internal/testenv"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/redis"
)

// redisStores returns a constructor of stores sharing one fresh prefix on
// the local Redis server, each with its own client, as separate app
// instances would have.
func redisStores(t *testing.T) func(t *testing.T) store.Store {
	addr := testenv.Redis(t)
	prefix := fmt.Sprintf("tailor-it-%d:", time.Now().UnixNano())
	t.Cleanup(func() {
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		defer c.Close()
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return func(t *testing.T) store.Store {
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		s, err := redis.New(c, redis.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(); c.Close() })
		return s
	}
}

func TestTwoInstancesRedis(t *testing.T) { twoInstances(t, redisStores(t)) }

func TestFreshnessRedis(t *testing.T) { freshness(t, redisStores(t)) }

func TestForgetAcrossRedis(t *testing.T) { forgetAcross(t, redisStores(t)) }

// TestRedisOutage: the store goes down while traffic flows and comes back;
// requests keep being served, and every event is stored afterwards.
func TestRedisOutage(t *testing.T) {
	srv := testenv.StartRedis(t, true)
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, MaxRetries: 1})
	defer c.Close()
	st, err := redis.New(c, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	outage(t, st, srv.Stop, srv.Start)
}
