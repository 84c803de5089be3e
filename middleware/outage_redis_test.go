package middleware_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tailorhq/tailor/internal/testenv"
	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/store/redis"
)

// TestRedisOutage: a Redis server that stops answering (paused: it
// accepts connections and never replies, so go-redis waits its 3 s read
// timeout) holds requests no longer than LoadTimeout plus a margin; once
// a server answers again on the address, the events recorded meanwhile
// are written within a few FlushIntervals.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t, false)
	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()}) // default timeouts, as a site would have
	defer c.Close()
	st, err := redis.New(c, redis.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const interval = 100 * time.Millisecond
	p := newP(t, st, func(c *middleware.Config) {
		c.WriteBehind.FlushInterval = interval
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

	srv.Pause()
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
	srv.Kill() // with the pending connections
	srv.Start()
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
	// LoadTimeout is 250 ms; before it, a request waited StoreTimeout
	// (5 s). The margins are for busy machines.
	if slowest > 4*time.Second {
		t.Errorf("a request waited %v on a server that did not answer", slowest)
	}
	if took > 40*interval {
		t.Errorf("events written %v after the server came back, FlushInterval %v", took, interval)
	}
	if n := strings.Count(logs.String(), "retrying every FlushInterval"); n > 1 {
		t.Errorf("the flusher logged %d failures in one outage, want at most 1:\n%s", n, logs.String())
	}
}
