package integration_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
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

// ownRedis runs a Redis server of the test's own on a free loopback port,
// with an append-only file synced on every write, so that a restart keeps
// what was written.
type ownRedis struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

func startOwnRedis(t *testing.T) *ownRedis {
	bin := testenv.Command(t, "redis-server", "apt-get install -y redis-server")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &ownRedis{t: t, bin: bin, dir: t.TempDir(), port: port}
	r.start()
	t.Cleanup(func() {
		if r.cmd != nil {
			r.cmd.Process.Kill()
			r.cmd.Wait()
		}
	})
	return r
}

func (r *ownRedis) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *ownRedis) start() {
	r.cmd = exec.Command(r.bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--dir", r.dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	for range 100 {
		if c, err := net.Dial("tcp", r.addr()); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("redis-server on %s did not start", r.addr())
}

func (r *ownRedis) stop() {
	r.cmd.Process.Signal(sigterm)
	r.cmd.Wait()
	r.cmd = nil
}

// TestRedisOutage: the store goes down while traffic flows and comes back;
// requests keep being served, and every event is stored afterwards.
func TestRedisOutage(t *testing.T) {
	srv := startOwnRedis(t)
	c := goredis.NewClient(&goredis.Options{Addr: srv.addr(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, MaxRetries: 1})
	defer c.Close()
	st, err := redis.New(c, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	outage(t, st, srv.stop, srv.start)
}
