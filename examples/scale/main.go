// Command scale measures what the demo shop (examples/shop) costs over a
// store of many visitors: how long it takes to start, what it does when
// nobody visits, and how soon a segment's size follows a visitor's action.
//
//	go run ./examples/scale [-store bolt|redis|postgres] [-visitors 100000] [-idle 60s] [-keep]
//
// It fills a new store (a bbolt file in a temporary directory or -db; a
// fresh key prefix in the Redis of -redis; a fresh table in the PostgreSQL
// database of -postgres) with -visitors synthetic visitors, through
// store.ApplyBatch from one worker per core, shaped like a shop's traffic
// (see newVisitor: 30 to 200 events each, heavy-tailed, over the shop's
// catalogue, with orders, signed-in users and exposures to the shop's
// experiment). Then it reports, on standard output:
//
//  1. start-up: the time from nothing to the shop's first page over that
//     store: opening the store, site.Open, and GET / through the shop's
//     handler, in process;
//  2. idle: how long the Personalizer's first backfill (classifying every
//     stored profile, the first start's cost over an existing store) took,
//     then, over -idle of idleness, the CPU the process used (user+sys,
//     as a share of one core), and the commands (Redis) or statements
//     (PostgreSQL) sent, counted by this process's clients (a go-redis
//     hook, a pgx tracer) and by the server (INFO commandstats; the
//     database's transactions in pg_stat_database, as pg_stat_statements
//     is not assumed): the server's counts are of all its clients, so on
//     a shared server they include other programs' work;
//  3. freshness: a visitor's purchase on the shop (checkout, then the page
//     it leads to, as a browser follows it) until the size of the segment
//     "customer" (Aggregates) counts them, polled every 10 ms on the
//     instance that served them and on a second shop instance over the
//     same store, over -trials visitors;
//  4. full reads: the calls to Range, Scan and Load of the store during
//     the idle time, counted by a wrapper around the store, so that a
//     periodic read of every profile shows.
//
// It removes what it created unless -keep. Every wait is bounded
// (-backfill-timeout, 30 s per freshness poll). At the default 100,000
// visitors a run takes two to three minutes on two cores, and the store
// about 250 MiB.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/tailorhq/tailor/examples/shop/site"
	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

// config is what the flags set.
type config struct {
	store, db, redis, postgres string
	visitors, batch, workers   int
	trials                     int
	seed                       uint64
	idle, backfillTimeout      time.Duration
	keep, verbose              bool
}

func parse(args []string, errw io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.SetOutput(errw)
	fs.StringVar(&c.store, "store", "bolt", "the store to measure: bolt, redis or postgres")
	fs.StringVar(&c.db, "db", "", "bolt: the new `file` to fill (default: one in a temporary directory)")
	fs.StringVar(&c.redis, "redis", "redis://127.0.0.1:6379/0", "redis: the server's `URL` (the run uses a fresh key prefix)")
	fs.StringVar(&c.postgres, "postgres", "postgres://127.0.0.1:5432/test", "postgres: the database's `URL` (the run uses a fresh table)")
	fs.IntVar(&c.visitors, "visitors", 100_000, "synthetic visitors to fill the store with")
	fs.IntVar(&c.batch, "batch", 250, "visitors per ApplyBatch while filling")
	fs.IntVar(&c.workers, "workers", runtime.GOMAXPROCS(0), "goroutines filling the store")
	fs.IntVar(&c.trials, "trials", 3, "visitors whose purchase the freshness measure follows")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the synthetic visitors")
	fs.DurationVar(&c.idle, "idle", time.Minute, "how long the idle measure lasts")
	fs.DurationVar(&c.backfillTimeout, "backfill-timeout", 15*time.Minute, "how long to wait for the first backfill to finish")
	fs.BoolVar(&c.keep, "keep", false, "keep the filled store (and the cookie keys) instead of removing them")
	fs.BoolVar(&c.verbose, "v", false, "log the shop's informational lines too (default: warnings only)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.visitors < 0 || c.batch < 1 || c.workers < 1 || c.trials < 0:
		return c, errors.New("-visitors and -trials must be at least 0, -batch and -workers at least 1")
	case c.idle <= 0 || c.backfillTimeout <= 0:
		return c, errors.New("-idle and -backfill-timeout must be positive")
	case c.db != "" && c.store != "bolt":
		return c, fmt.Errorf("-db is for -store bolt, not %s", c.store)
	}
	return c, nil
}

func openBackend(c config) (*backend, error) {
	switch c.store {
	case "bolt":
		return boltBackend(c.db)
	case "redis":
		return redisBackend(c.redis)
	case "postgres":
		return postgresBackend(c.postgres)
	}
	return nil, fmt.Errorf("-store %q: want bolt, redis or postgres", c.store)
}

// run parses args, measures, and writes the report to out and progress and
// the shop's logs to errw.
func run(ctx context.Context, args []string, out, errw io.Writer) (err error) {
	c, err := parse(args, errw)
	if err != nil {
		return err
	}
	be, err := openBackend(c)
	if err != nil {
		return err
	}
	keysDir, err := os.MkdirTemp("", "tailor-scale-keys-")
	if err != nil {
		return err
	}
	defer func() {
		if c.keep {
			fmt.Fprintf(out, "kept: the store (%s) and the cookie keys (%s)\n", be.where, keysDir)
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		err = errors.Join(err, be.cleanup(cctx), os.RemoveAll(keysDir))
	}()
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelInfo
	}
	m := &measure{c: c, be: be, out: out, errw: errw, keys: filepath.Join(keysDir, "keys"),
		log: slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: level}))}
	return m.run(ctx)
}

// measure is one run of the measures.
type measure struct {
	c    config
	be   *backend
	out  io.Writer
	errw io.Writer
	log  *slog.Logger
	keys string
}

func (m *measure) printf(format string, args ...any) { fmt.Fprintf(m.out, format, args...) }

// line prints one figure of the report: a label, then its value.
func (m *measure) line(label, format string, args ...any) {
	m.printf("  %-16s %s\n", label, fmt.Sprintf(format, args...))
}

func (m *measure) run(ctx context.Context) error {
	c, be := m.c, m.be
	m.printf("tailor scale: %d visitors on %s (%s), seed %d, %d cores%s\n", c.visitors, be.name, be.where, c.seed, runtime.GOMAXPROCS(0), revision())

	// Fill.
	st, closeFill, err := be.open(ctx)
	if err != nil {
		return err
	}
	fs, err := fill(ctx, st, c.visitors, c.batch, c.workers, c.seed, time.Now(), m.errw)
	err = errors.Join(err, closeFill())
	if err != nil {
		return err
	}
	runtime.GC() // the fill's garbage is not the shop's
	m.printf("fill\n")
	m.line("visitors", "%d, %d events (per visitor: mean %.1f, p50 %d, p90 %d, p99 %d, max %d)",
		fs.Visitors, fs.Events, float64(fs.Events)/float64(max(fs.Visitors, 1)), fs.P50, fs.P90, fs.P99, fs.Max)
	m.line("shape", "%d buyers (%d orders), %d signed in, %d exposed to %s", fs.Buyers, fs.Orders, fs.Identified, fs.Exposed, exposureKey)
	m.line("took", "%s: %.0f visitors/s, %.0f events/s (%d workers, ApplyBatch of %d visitors)",
		round(fs.Took), float64(fs.Visitors)/fs.Took.Seconds(), float64(fs.Events)/fs.Took.Seconds(), fs.Workers, fs.Batch)
	if size, err := be.sizeOf(ctx); err == nil {
		m.line("store size", "%s", size)
	} else {
		m.line("store size", "unknown: %v", err)
	}

	// 1. Start-up.
	var calls calls
	t0 := time.Now()
	raw, closeA, err := be.open(ctx)
	if err != nil {
		return err
	}
	tOpen := time.Since(t0)
	stA, err := countCalls(raw, &calls)
	if err != nil {
		closeA()
		return err
	}
	password := make([]byte, 12)
	rand.Read(password)
	cfg := site.Config{Opened: stA, Keys: m.keys, AdminPassword: base64.RawURLEncoding.EncodeToString(password), Logger: m.log}
	t1 := time.Now()
	siteA, err := site.Open(cfg)
	if err != nil {
		closeA()
		return fmt.Errorf("site.Open: %w", err)
	}
	tNew := time.Since(t1)
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if cerr := errors.Join(siteA.Close(cctx), closeA()); cerr != nil {
			m.log.Warn("scale: closing the shop", "err", cerr)
		}
	}()
	hA := siteA.Handler()
	t2 := time.Now()
	first := (&browser{h: hA}).do("GET", "/", nil)
	tFirst := time.Since(t2)
	tTotal := time.Since(t0)
	startCalls := calls.snapshot()
	if first.Code != http.StatusOK {
		return fmt.Errorf("first GET /: status %d", first.Code)
	}
	m.printf("1. start-up: from nothing to the first page\n")
	m.line("open store", "%s", round(tOpen))
	m.line("site.Open", "%s", round(tNew))
	m.line("first response", "%s (GET / %d, %d bytes)", round(tFirst), first.Code, first.Body.Len())
	m.line("total", "%s", round(tTotal))
	m.line("store reads", "%s", startCalls.reads())
	m.line("other calls", "%s", startCalls.others())

	// 2. Idle, after the first backfill.
	pA := siteA.Personalizer()
	m.printf("2. idle\n")
	aggs := true
	if _, err := pA.Aggregates(ctx); errors.Is(err, middleware.ErrNoAggregates) {
		aggs = false
		m.line("backfill", "n/a: the store keeps no aggregates (store.Counter), so no backfill runs")
	} else if err != nil {
		return err
	} else {
		b, seen, err := waitBackfill(ctx, pA, t1, c.backfillTimeout, m.errw)
		if err != nil {
			return err
		}
		switch {
		case b.Finished.IsZero():
			m.line("backfill", "not finished %s after site.Open began (%d of %d profiles): the idle figures below include it", round(seen), b.Done, b.Total)
		default:
			took := b.Finished.Sub(b.Started)
			m.line("backfill", "took %s by its record (%d profiles, %.0f/s); seen done %s after site.Open began",
				round(took), b.Done, float64(b.Done)/took.Seconds(), round(seen))
		}
		bc := calls.snapshot().sub(startCalls)
		m.line("backfill reads", "%s", bc.reads())
		m.line("backfill calls", "%s", bc.others())
	}
	idle, err := m.idle(ctx, &calls)
	if err != nil {
		return err
	}

	// 3. Freshness, on this site and on a second one over the same store.
	m.printf("3. freshness: a purchase until Aggregates count the visitor in segment %q (polled every %s)\n", freshSegment, pollEvery)
	if !aggs {
		m.line("freshness", "n/a: the store keeps no aggregates (store.Counter)")
	} else if err := m.freshness(ctx, stA, hA, pA); err != nil {
		return err
	}

	// 4. Full reads during the idle time.
	m.printf("4. reads of the profiles in the idle %s\n", c.idle)
	m.line("store reads", "%s", idle.reads())
	full := "no"
	if idle[cRangedFull] > 0 {
		full = fmt.Sprintf("yes: %d Range run to the end", idle[cRangedFull])
	} else if n := idle[cRanged] + idle[cScanned]; n > 0 {
		full = fmt.Sprintf("none whole; %d profiles read in part", n)
	}
	m.line("full read", "%s", full)
	m.line("other calls", "%s", idle.others())
	return nil
}

// idle measures the CPU used and the work sent to the store over c.idle,
// and returns the store calls made meanwhile.
func (m *measure) idle(ctx context.Context, calls *calls) (callCounts, error) {
	be := m.be
	var srv0, srv1 map[string]int64
	var srvErr error
	if be.server != nil {
		srv0, srvErr = be.server(ctx)
	}
	var sent0 map[string]int64
	var trips0 int64
	if be.sent != nil {
		sent0, trips0 = be.sent.snapshot(), be.sent.trips.Load()
	}
	before := calls.snapshot()
	cpu0, err := cpuTime()
	if err != nil {
		return callCounts{}, err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return callCounts{}, ctx.Err()
	case <-time.After(m.c.idle):
	}
	cpu1, _ := cpuTime()
	wall := time.Since(t0)
	idle := calls.snapshot().sub(before)
	if be.server != nil && srvErr == nil {
		srv1, srvErr = be.server(ctx)
	}
	cpu := cpu1 - cpu0
	m.line("idle", "%s", round(wall))
	m.line("cpu", "%s user+sys = %.2f%% of one core", round(cpu), 100*cpu.Seconds()/wall.Seconds())
	what := map[string]string{"redis": "commands", "postgres": "statements"}[be.name]
	if be.sent != nil {
		m.line("sent", "%s %s, in %d round trips (counted by this process's clients)", what,
			describe(diff(be.sent.snapshot(), sent0)), be.sent.trips.Load()-trips0)
	}
	if be.server != nil {
		if srvErr != nil {
			m.line("server", "n/a: %v", srvErr)
		} else {
			m.line("server", "%s (%s)", describe(diff(srv1, srv0)), be.serverNote)
		}
	}
	return idle, nil
}

// waitBackfill waits until the backfill's record says it finished, up to
// limit, polling every 100 ms; it returns the last record and how long
// after since it was seen finished.
func waitBackfill(ctx context.Context, p *middleware.Personalizer, since time.Time, limit time.Duration, progress io.Writer) (middleware.Backfill, time.Duration, error) {
	start := time.Now()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	last := start
	for {
		a, err := p.Aggregates(ctx)
		if err != nil {
			return middleware.Backfill{}, 0, err
		}
		b := a.Backfill
		if !b.Finished.IsZero() && !b.Running {
			return b, time.Since(since), nil
		}
		if time.Since(start) > limit {
			return b, time.Since(since), nil
		}
		if time.Since(last) > 10*time.Second {
			last = time.Now()
			fmt.Fprintf(progress, "scale: backfill: %d of %d profiles\n", b.Done, b.Total)
		}
		select {
		case <-ctx.Done():
			return b, 0, ctx.Err()
		case <-t.C:
		}
	}
}

// The freshness measure's segment, and how often Aggregates are polled.
const (
	freshSegment = "customer"
	pollEvery    = 10 * time.Millisecond
	pollLimit    = 30 * time.Second
)

// freshness opens a second site over the store (a handle of its own on a
// server, the same handle on a bbolt file), then, for each trial, makes a
// new visitor buy something on the first site and polls both sites'
// Aggregates until the segment counts one more.
func (m *measure) freshness(ctx context.Context, stA store.Store, hA http.Handler, pA *middleware.Personalizer) error {
	t0 := time.Now()
	stB, closeB := stA, func() error { return nil }
	if !m.be.shared {
		raw, closeRaw, err := m.be.open(ctx)
		if err != nil {
			return err
		}
		var cb calls
		if stB, err = countCalls(raw, &cb); err != nil {
			closeRaw()
			return err
		}
		closeB = closeRaw
	}
	password := make([]byte, 12)
	rand.Read(password)
	siteB, err := site.Open(site.Config{Opened: stB, Keys: m.keys, AdminPassword: base64.RawURLEncoding.EncodeToString(password), Logger: m.log})
	if err != nil {
		closeB()
		return fmt.Errorf("second site.Open: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if cerr := errors.Join(siteB.Close(cctx), closeB()); cerr != nil {
			m.log.Warn("scale: closing the second shop", "err", cerr)
		}
	}()
	how := "its own handle on the store"
	if m.be.shared {
		how = "the first one's handle on the store"
	}
	m.line("second site", "open in %s (%s)", round(time.Since(t0)), how)
	pB := siteB.Personalizer()
	var seenA, seenB []time.Duration
	for i := range m.c.trials {
		b := &browser{h: hA}
		steps := []struct {
			method, path string
			form         url.Values
			want         int
		}{
			{"GET", "/", nil, http.StatusOK},
			{"GET", "/products/moneyball", nil, http.StatusOK},
			{"POST", "/cart", url.Values{"id": {"moneyball"}}, http.StatusSeeOther},
		}
		for _, s := range steps {
			if rec := b.do(s.method, s.path, s.form); rec.Code != s.want {
				return fmt.Errorf("trial %d: %s %s: status %d, want %d", i+1, s.method, s.path, rec.Code, s.want)
			}
		}
		a, err := pA.Aggregates(ctx)
		if err != nil {
			return err
		}
		base := a.Segments[freshSegment]
		start := time.Now()
		rec := b.do("POST", "/checkout", url.Values{})
		loc := rec.Header().Get("Location")
		if rec.Code != http.StatusSeeOther || loc == "" {
			return fmt.Errorf("trial %d: POST /checkout: status %d, Location %q", i+1, rec.Code, loc)
		}
		if rec = b.do("GET", loc, nil); rec.Code != http.StatusOK {
			return fmt.Errorf("trial %d: GET %s: status %d", i+1, loc, rec.Code)
		}
		answered := time.Since(start)
		type seen struct {
			d   time.Duration
			n   int64
			err error
		}
		ca, cb := make(chan seen, 1), make(chan seen, 1)
		for _, w := range []struct {
			p *middleware.Personalizer
			c chan seen
		}{{pA, ca}, {pB, cb}} {
			go func() {
				d, n, err := waitSegment(ctx, w.p, freshSegment, base, start)
				w.c <- seen{d, n, err}
			}()
		}
		ra, rb := <-ca, <-cb
		if err := errors.Join(ra.err, rb.err); err != nil {
			return fmt.Errorf("trial %d: %w", i+1, err)
		}
		m.line(fmt.Sprintf("trial %d", i+1), "checkout and its page answered in %s; %s %d→%d seen on A after %s, on B after %s",
			round(answered), freshSegment, base, ra.n, seenText(ra.d), seenText(rb.d))
		seenA, seenB = append(seenA, ra.d), append(seenB, rb.d)
	}
	if len(seenA) > 0 {
		m.line("median", "A (the site that served the visitor) %s, B (the second site) %s", seenText(median(seenA)), seenText(median(seenB)))
	}
	return nil
}

// waitSegment polls p's Aggregates every pollEvery until the segment
// counts more than base, up to pollLimit; it returns the time since start
// (-1 if the count did not change) and the last count.
func waitSegment(ctx context.Context, p *middleware.Personalizer, segment string, base int64, start time.Time) (time.Duration, int64, error) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		a, err := p.Aggregates(ctx)
		if err != nil {
			return 0, 0, err
		}
		if n := a.Segments[segment]; n > base {
			return time.Since(start), n, nil
		} else if time.Since(start) > pollLimit {
			return -1, n, nil
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-t.C:
		}
	}
}

func seenText(d time.Duration) string {
	if d < 0 {
		return fmt.Sprintf("never (not within %s)", pollLimit)
	}
	return round(d).String()
}

// median returns the median of ds; a -1 (never) counts as the longest.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	for i, d := range s {
		if d < 0 {
			s[i] = math.MaxInt64
		}
	}
	slices.Sort(s)
	if d := s[len(s)/2]; d != math.MaxInt64 {
		return d
	}
	return -1
}

// browser makes requests to a handler in process, keeping its cookies.
type browser struct {
	h       http.Handler
	cookies map[string]*http.Cookie
}

const userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"

func (b *browser) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, path, body)
	req.Header.Set("User-Agent", userAgent)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if b.cookies == nil {
			b.cookies = map[string]*http.Cookie{}
		}
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	return rec
}

// round shortens a duration for the report.
func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// revision names the build's commit, when the build recorded it (go build
// does, go run does not).
func revision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return ", commit " + rev[:min(len(rev), 12)] + modified
}
