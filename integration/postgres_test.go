package integration_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tailorhq/tailor/internal/testenv"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/postgres"
)

// pgStores returns a constructor of stores sharing one fresh table, each
// with its own pool, as separate app instances would have.
func pgStores(t *testing.T) func(t *testing.T) store.Store {
	return pgStoresAt(t, testenv.Postgres(t))
}

func pgStoresAt(t *testing.T, url string) func(t *testing.T) store.Store {
	table := fmt.Sprintf("tailor_it_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
		if err != nil {
			return
		}
		defer pool.Close()
		for _, name := range []string{table, table + "_leases", table + "_counts", table + "_documents", table + "_journal", table + "_journal_head"} {
			pool.Exec(context.Background(), `DROP TABLE IF EXISTS "`+name+`"`)
		}
	})
	migrated := false
	return func(t *testing.T) store.Store {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ConnConfig.ConnectTimeout = 2 * time.Second
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		s, err := postgres.New(pool, postgres.Options{Table: table})
		if err != nil {
			t.Fatal(err)
		}
		if !migrated {
			if err := s.Migrate(ctxTimeout(t, 30*time.Second)); err != nil {
				t.Fatal(err)
			}
			migrated = true
		}
		t.Cleanup(func() { s.Close(); pool.Close() })
		return s
	}
}

func TestTwoInstancesPostgres(t *testing.T) { twoInstances(t, pgStores(t)) }

func TestFreshnessPostgres(t *testing.T) { freshness(t, pgStores(t)) }

func TestForgetAcrossPostgres(t *testing.T) { forgetAcross(t, pgStores(t)) }

// proxy is a TCP proxy on loopback that the test can take down (refusing
// and cutting connections, as a server that went away) and bring back.
type proxy struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

func (p *proxy) pipe(c net.Conn) {
	u, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil {
		p.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	p.conns[c], p.conns[u] = true, true
	p.mu.Unlock()
	go func() { io.Copy(u, c); u.Close(); c.Close() }()
	io.Copy(c, u)
	c.Close()
	u.Close()
}

// down closes the listener and every connection.
func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// up listens again on the same address.
func (p *proxy) up(t *testing.T) {
	var err error
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.serve(ln)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("proxy back on %s: %v", p.addr, err)
}

// TestPostgresOutage: PostgreSQL becomes unreachable while traffic flows
// (a proxy the test owns refuses and cuts connections; the machine's
// server itself is shared and is not stopped) and comes back; requests
// keep being served, and every event is stored afterwards.
func TestPostgresOutage(t *testing.T) {
	testenv.Postgres(t)
	px := newProxy(t, "127.0.0.1:5432")
	newStore := pgStoresAt(t, "postgres://postgres@"+px.addr+"/test?sslmode=disable")
	st := newStore(t)
	outage(t, st, px.down, func() { px.up(t) })
}
