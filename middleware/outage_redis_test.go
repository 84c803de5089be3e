package middleware_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tailorhq/tailor/internal/testenv"
	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/store/redis"
)

// ownRedis is a redis-server of the test's own on a free loopback port,
// without persistence, that the test pauses, kills and restarts.
type ownRedis struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

func startOwnRedis(t *testing.T) *ownRedis {
	t.Helper()
	bin := testenv.Command(t, "redis-server", "apt-get install -y redis-server")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &ownRedis{t: t, bin: bin, dir: t.TempDir(), port: port}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *ownRedis) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *ownRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", r.addr()); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not start", r.addr())
		}
	}
}

// kill ends the server at once, paused or not.
func (r *ownRedis) kill() {
	if r.cmd != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// TestRedisOutage: a Redis server that stops answering (paused: it
// accepts connections and never replies, so go-redis waits its 3 s read
// timeout) holds requests no longer than LoadTimeout plus a margin; once
// a server answers again on the address, the events recorded meanwhile
// are written within a few FlushIntervals.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	srv := startOwnRedis(t)
	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	c := goredis.NewClient(&goredis.Options{Addr: srv.addr()}) // default timeouts, as a site would have
	defer c.Close()
	st, err := redis.New(c, redis.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const interval = 100 * time.Millisecond
	p := newP(t, st, func(c *middleware.Config) {
		c.FlushInterval = interval
		c.Logger = logger
	})
	h := p.Handler(echo)
	newVisitor := func() (string, []*http.Cookie) {
		rec := serve(h, "GET", "/", browserUA)
		id, _, _ := strings.Cut(rec.Body.String(), " ")
		return id, rec.Result().Cookies()
	}
	// A returning visitor, stored and cached, and visitors whose next
	// request loads their profile.
	id, ck := newVisitor()
	serve(h, "GET", "/", browserUA, ck...)
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var others [][]*http.Cookie
	for range 5 {
		_, ck := newVisitor()
		others = append(others, ck)
	}

	if err := srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var slowest time.Duration
	for _, ck := range others {
		start := time.Now()
		if code := serve(h, "GET", "/", browserUA, ck...).Code; code != http.StatusOK {
			t.Fatalf("status %d during the outage", code)
		}
		slowest = max(slowest, time.Since(start))
	}
	const views = 3
	for range views {
		serve(h, "GET", "/during", browserUA, ck...)
	}
	srv.kill() // with the pending connections
	srv.start()
	back := time.Now()
	for {
		prof, err := st.Load(context.Background(), id)
		if err == nil && prof.Counts["page"] == views {
			break // the restarted server is empty: only what was pending
		}
		if time.Since(back) > 30*time.Second {
			t.Fatalf("30s after the server came back: %+v, %v; want %d page views", prof, err, views)
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(back)
	t.Logf("slowest request during the outage %v; events written %v after the server came back", slowest, took)
	// LoadTimeout is 250 ms; go-redis alone would wait 3 s. The margins
	// are for busy machines.
	if slowest > 2*time.Second {
		t.Errorf("a request waited %v on a server that did not answer", slowest)
	}
	if took > 20*interval {
		t.Errorf("events written %v after the server came back, FlushInterval %v", took, interval)
	}
	if n := strings.Count(logs.String(), "retrying every FlushInterval"); n > 1 {
		t.Errorf("the flusher logged %d failures in one outage, want at most 1:\n%s", n, logs.String())
	}
}
