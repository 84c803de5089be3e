package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tailorhq/tailor/internal/testenv"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/postgres"
	"github.com/tailorhq/tailor/store/storetest"
)

// newPool returns a pool on the test database, closed when t ends.
// appName, if set, names the pool's connections in pg_stat_activity.
func newPool(t testing.TB, maxConns int32, appName string) *pgxpool.Pool {
	t.Helper()
	return newPoolMode(t, maxConns, appName, pgx.QueryExecModeCacheStatement)
}

func newPoolMode(t testing.TB, maxConns int32, appName string, mode pgx.QueryExecMode) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.DefaultQueryExecMode = mode
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	if appName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = appName
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// tableName returns a table name that no other test uses.
func tableName() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "tailor_test_" + hex.EncodeToString(b)
}

// newStore returns a migrated store on a new table of pool, whose table is
// dropped when t ends.
func newStore(t testing.TB, pool *pgxpool.Pool, opts postgres.Options) *postgres.Store {
	t.Helper()
	if opts.Table == "" {
		opts.Table = tableName()
	}
	s, err := postgres.New(pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropTable(t, pool, opts.Table) })
	return s
}

func dropTable(t testing.TB, pool *pgxpool.Pool, table string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range []string{table, table + "_leases", table + "_counts", table + "_documents", table + "_journal", table + "_journal_head"} {
		if _, err := pool.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Errorf("drop table %s: %v", name, err)
		}
	}
}

func TestConformance(t *testing.T) {
	pool := newPool(t, 32, "")
	storetest.RunWith(t, func(t *testing.T, o storetest.Options) store.Store {
		return newStore(t, pool, postgres.Options{TombstoneTTL: o.TombstoneTTL})
	})
}

// TestConformanceNoPreparedStatements runs the suite on connections that
// prepare no statements, as behind a transaction-pooling PgBouncer.
func TestConformanceNoPreparedStatements(t *testing.T) {
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			pool := newPoolMode(t, 32, "", mode)
			storetest.RunWith(t, func(t *testing.T, o storetest.Options) store.Store {
				return newStore(t, pool, postgres.Options{TombstoneTTL: o.TombstoneTTL})
			})
		})
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 8, "")
	table := tableName()
	s, err := postgres.New(pool, postgres.Options{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropTable(t, pool, table) })
	// Concurrent first migrations, then again: all succeed.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- s.Migrate(t.Context()) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	if _, err := s.Apply(t.Context(), "v", []store.Event{storetest.Page("m", 1, "/")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if p, err := s.Load(t.Context(), "v"); err != nil || p.Counts["page"] != 1 {
		t.Fatalf("after a second Migrate: Load = %v, %v; want the profile kept", p, err)
	}
	var cols []string
	rows, _ := pool.Query(t.Context(), `SELECT column_name || ' ' || data_type FROM information_schema.columns
		WHERE table_name = $1 AND table_schema = current_schema() ORDER BY ordinal_position`, table)
	cols, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"id text", "version bigint", "last_seen timestamp with time zone", "data bytea", "erased_until timestamp with time zone",
		"recheck timestamp with time zone", "count_keys ARRAY"}
	if strings.Join(cols, ", ") != strings.Join(want, ", ") {
		t.Errorf("columns = %q, want %q", cols, want)
	}
	var idx int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%(last_seen)'`, table).Scan(&idx); err != nil || idx != 1 {
		t.Errorf("index on last_seen: %d, %v", idx, err)
	}
}

func TestNewRejectsBadNames(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 1, "")
	for _, tc := range []struct {
		opts postgres.Options
		want string // in the error
	}{
		{postgres.Options{Table: "Profiles"}, `Options.Table "Profiles": byte 0 is 'P'`},
		{postgres.Options{Table: "1profiles"}, `Options.Table "1profiles": starts with a digit`},
		{postgres.Options{Table: "my-profiles"}, `Options.Table "my-profiles": byte 2 is '-'`},
		{postgres.Options{Table: "public.profiles"}, `Options.Table "public.profiles": byte 6 is '.'`},
		{postgres.Options{Table: `x"; DROP TABLE users; --`}, `byte 1 is '"'`},
		{postgres.Options{Table: "p\x00"}, `byte 1 is '\x00'`},
		{postgres.Options{Table: strings.Repeat("t", 50)}, "50 bytes, more than 49"},
		{postgres.Options{Channel: "Invalidations"}, `Options.Channel "Invalidations": byte 0 is 'I'`},
		{postgres.Options{Channel: strings.Repeat("c", 64)}, "64 bytes, more than 63"},
	} {
		s, err := postgres.New(pool, tc.opts)
		if err == nil {
			t.Errorf("New(%+v) = %v, want an error", tc.opts, s)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) error %q, want it to contain %q", tc.opts, err, tc.want)
		}
	}
	if _, err := postgres.New(nil, postgres.Options{}); err == nil {
		t.Error("New(nil pool) succeeded")
	}
	s, err := postgres.New(pool, postgres.Options{})
	if err != nil || s.Table() != "tailor_profiles" || s.Channel() != "tailor_profiles" {
		t.Errorf("New with zero Options: %v, %v", s, err)
	}
	s, err = postgres.New(pool, postgres.Options{Table: "_p2"})
	if err != nil || s.Channel() != "_p2" || s.Limits() != store.DefaultLimits {
		t.Errorf("New(Table: _p2): %v, %v; want the channel named after the table", s, err)
	}
}

// TestTwoProcesses has two stores on separate pools (as two processes
// would be) write the same profiles concurrently, and each hear the other's
// writes.
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	table := tableName()
	a := newStore(t, newPool(t, 8, ""), postgres.Options{Table: table})
	b, err := postgres.New(newPool(t, 8, ""), postgres.Options{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	heard := make(chan string, 1000)
	if err := a.Subscribe(t.Context(), func(c store.Change) { heard <- c.ID }); err != nil {
		t.Fatal(err)
	}
	const workers, per = 8, 30
	var wg sync.WaitGroup
	for w := range workers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for i := 1; i <= per; i++ {
				id := fmt.Sprintf("hot%d", i%2)
				var err error
				if i%3 == 0 {
					_, err = s.ApplyBatch(t.Context(), []store.Batch{
						{ID: "hot1", Events: []store.Event{storetest.Page(fmt.Sprintf("w%db", w), i, "/")}},
						{ID: "hot0", Events: []store.Event{storetest.Page(fmt.Sprintf("w%db", w), i, "/")}},
					})
				} else {
					_, err = s.Apply(t.Context(), id, []store.Event{storetest.Page(fmt.Sprintf("w%d", w), i, "/")})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for _, id := range []string{"hot0", "hot1"} {
		p, err := b.Load(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		total += p.Counts["page"]
	}
	// Every third iteration writes both profiles.
	if want := workers * (per + per/3); total != want {
		t.Fatalf("%d page views stored, want %d", total, want)
	}
	if _, err := b.Apply(t.Context(), "from-b", []store.Event{storetest.Page("b", 1, "/")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case id := <-heard:
			if id == "from-b" {
				return
			}
		case <-deadline:
			t.Fatal("a write through one store was not heard by the other's subscription")
		}
	}
}

func TestApplyBatchSameID(t *testing.T) {
	t.Parallel()
	s := newStore(t, newPool(t, 2, ""), postgres.Options{})
	if _, err := s.Apply(t.Context(), "x", []store.Event{storetest.Page("a", 1, "/")}); err != nil {
		t.Fatal(err)
	}
	ps, err := s.ApplyBatch(t.Context(), []store.Batch{
		{ID: "x", Events: []store.Event{storetest.Page("a", 2, "/")}},
		{ID: "y", Events: []store.Event{storetest.Page("a", 1, "/")}},
		{ID: "x", Events: []store.Event{storetest.Page("a", 3, "/"), storetest.Page("a", 2, "/")}},
		{ID: "x", Events: nil},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		id             string
		version, pages int
	}{{"x", 2, 2}, {"y", 1, 1}, {"x", 3, 3}, {"x", 4, 3}} {
		p := ps[i]
		if p.ID != want.id || p.Version != uint64(want.version) || p.Counts["page"] != want.pages {
			t.Errorf("batch %d: %s version %d, %d pages; want %s version %d, %d pages", i, p.ID, p.Version, p.Counts["page"], want.id, want.version, want.pages)
		}
	}
	ps[0].Counts["page"] = 99 // profiles are not shared between batches
	if ps[2].Counts["page"] != 3 {
		t.Error("profiles returned for two batches of one id share memory")
	}
	p, err := s.Load(t.Context(), "x")
	if err != nil || p.Version != 4 || p.Counts["page"] != 3 {
		t.Fatalf("Load(x) = version %d, %v, %v; want version 4, 3 pages", p.Version, p.Counts, err)
	}
}

// TestApplyBatchLarge applies more profiles than fit one transaction, with
// repeated ids spread across the input.
func TestApplyBatchLarge(t *testing.T) {
	t.Parallel()
	s := newStore(t, newPool(t, 2, ""), postgres.Options{})
	const ids = 1234
	var batches []store.Batch
	for round := 1; round <= 2; round++ {
		for v := range ids {
			batches = append(batches, store.Batch{ID: fmt.Sprintf("v%04d", v), Events: []store.Event{storetest.Page("l", round, "/")}})
		}
	}
	ps, err := s.ApplyBatch(t.Context(), batches)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		round := i/ids + 1
		if p.ID != batches[i].ID || p.Counts["page"] != round || p.Version != uint64(round) {
			t.Fatalf("batch %d (%s, round %d): got %s version %d, %d pages", i, batches[i].ID, round, p.ID, p.Version, p.Counts["page"])
		}
	}
	n := 0
	err = s.Range(t.Context(), func(p *store.Profile) bool {
		if p.Counts["page"] != 2 || p.Version != 2 {
			t.Errorf("%s: version %d, %d pages; want 2, 2", p.ID, p.Version, p.Counts["page"])
		}
		n++
		return true
	})
	if err != nil || n != ids {
		t.Fatalf("Range visited %d profiles, %v; want %d", n, err, ids)
	}
}

// TestApplyBatchNoDeadlock has batches with the same ids in different orders
// run concurrently.
func TestApplyBatchNoDeadlock(t *testing.T) {
	t.Parallel()
	s := newStore(t, newPool(t, 8, ""), postgres.Options{})
	const workers, rounds, ids = 6, 15, 40
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := 1; r <= rounds; r++ {
				var bs []store.Batch
				for k := range ids {
					v := (k*7 + w*13 + r) % ids // a different order each time
					bs = append(bs, store.Batch{ID: fmt.Sprintf("v%d", v), Events: []store.Event{storetest.Page(fmt.Sprint("w", w), r, "/")}})
				}
				if _, err := s.ApplyBatch(t.Context(), bs); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for v := range ids {
		p, err := s.Load(t.Context(), fmt.Sprintf("v%d", v))
		if err != nil || p.Counts["page"] != workers*rounds {
			t.Fatalf("v%d: %v, %v; want %d pages", v, p.Counts, err, workers*rounds)
		}
	}
}

// TestConflict has writers that never retry race for one profile: some
// lose with ErrConflict, and exactly the winners' events are stored.
func TestConflict(t *testing.T) {
	t.Parallel()
	s := newStore(t, newPool(t, 8, ""), postgres.Options{MaxRetries: -1})
	const workers, per = 8, 25
	var (
		mu        sync.Mutex
		won, lost int
		wg        sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := 1; i <= per; i++ {
				_, err := s.Apply(t.Context(), "hot", []store.Event{storetest.Page(fmt.Sprint("w", w), i, "/")})
				mu.Lock()
				switch {
				case err == nil:
					won++
				case errors.Is(err, store.ErrConflict):
					lost++
					if !strings.Contains(err.Error(), `"hot"`) {
						t.Errorf("conflict error does not name the profile: %v", err)
					}
				default:
					t.Error(err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	p, err := s.Load(t.Context(), "hot")
	if err != nil {
		t.Fatal(err)
	}
	if p.Counts["page"] != won || int(p.Version) != won {
		t.Fatalf("%d Applies succeeded, %d lost; stored %d page views at version %d", won, lost, p.Counts["page"], p.Version)
	}
	t.Logf("%d Applies succeeded, %d returned ErrConflict", won, lost)
}

// TestRoundTrip checks that what Apply returns, what Load returns and what
// Range returns are the same profile (compared in their JSON form, which
// sorts map keys), with strings that jsonb would not keep.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := newStore(t, newPool(t, 2, ""), postgres.Options{})
	evs := []store.Event{
		{ID: "n1", Type: store.TypeTrack, Name: "nul\u0000name", Time: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
			Path: "/a\u0000b", Props: []byte(`{"z": 1, "a": "\u0000", "dup": 1, "dup": 2, "big": 1e400}`)},
		{ID: "n2", Type: store.TypeIdentify, Time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
			Traits: []byte(`{"b":"\u0000 ✓ \ud83c\udfa8","a":[1,2.50,-0e0]}`)},
		{ID: "n3", Type: store.TypePage, Time: time.Time{}, Referrer: strings.Repeat("é", 300)},
	}
	want, err := s.Apply(t.Context(), "rt", evs)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.Marshal(want)
	got, err := s.Load(t.Context(), "rt")
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(got)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("Load differs from Apply:\n got %s\nwant %s", gotJSON, wantJSON)
	}
	s.Range(t.Context(), func(p *store.Profile) bool {
		rangeJSON, _ := json.Marshal(p)
		if !bytes.Equal(rangeJSON, wantJSON) {
			t.Errorf("Range differs from Apply:\n got %s\nwant %s", rangeJSON, wantJSON)
		}
		return true
	})
}

// TestExtremeTimes applies events at times beyond PostgreSQL's timestamp
// range: last_seen becomes infinity, and the profile keeps the exact time.
// (LastSeen only grows from the zero time, year 1, so it is never below the
// range; Expire's argument can be.)
func TestExtremeTimes(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 2, "")
	s := newStore(t, pool, postgres.Options{})
	stored := map[string]bool{}
	for _, tc := range []struct {
		id       string
		at       time.Time
		lastSeen string
	}{
		{"future", time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC), "infinity"},
		{"y10k", time.Date(10000, 1, 1, 0, 0, 0, 1999, time.UTC), "10000-01-01 00:00:00.000001"},
	} {
		ev := store.Event{ID: "x", Type: store.TypePage, Time: tc.at}
		p, err := s.Apply(t.Context(), tc.id, []store.Event{ev})
		if err != nil {
			// An encoding that cannot represent the time (JSON stops at year
			// 9999) fails the Apply; it must say which profile, and store
			// nothing.
			t.Logf("Apply at %v: %v", tc.at, err)
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.id)) {
				t.Errorf("Apply at %v: %v; want an error naming the profile", tc.at, err)
			}
			if _, err := s.Load(t.Context(), tc.id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Load after the failed Apply: %v, want ErrNotFound", err)
			}
			continue
		}
		stored[tc.id] = true
		l, err := s.Load(t.Context(), tc.id)
		if err != nil || !l.LastSeen.Equal(tc.at) || !p.LastSeen.Equal(tc.at) {
			t.Errorf("%s: LastSeen %v, %v (%v); want %v", tc.id, p.LastSeen, l.LastSeen, err, tc.at)
		}
		var got string
		err = pool.QueryRow(t.Context(), `SELECT CASE WHEN isfinite(last_seen)
			THEN to_char(last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') ELSE last_seen::text END
			FROM `+pgx.Identifier{s.Table()}.Sanitize()+` WHERE id = $1`, tc.id).Scan(&got)
		if err != nil || got != tc.lastSeen {
			t.Errorf("%s: last_seen = %s (%v), want %s", tc.id, got, err, tc.lastSeen)
		}
	}
	if n, err := s.Expire(t.Context(), time.Date(-5000, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil || n != 0 {
		t.Fatalf("Expire(5001 BC) = %d, %v; want 0", n, err)
	}
	// A profile last seen at infinity never expires.
	n, err := s.Expire(t.Context(), time.Date(400000, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || n != len(stored)-map[bool]int{true: 1}[stored["future"]] {
		t.Fatalf("Expire(year 400000) = %d, %v; want all but the profile at infinity", n, err)
	}
	if _, err := s.Load(t.Context(), "future"); stored["future"] && err != nil {
		t.Errorf("a profile last seen at infinity expired: %v", err)
	}
}

func TestRangeLargeAndReentrant(t *testing.T) {
	t.Parallel()
	// One connection: Range must not hold it while fn runs.
	s := newStore(t, newPool(t, 1, ""), postgres.Options{})
	const n = 1100
	var batches []store.Batch
	for v := range n {
		batches = append(batches, store.Batch{ID: fmt.Sprintf("r%05d", v), Events: []store.Event{storetest.Page("r", 1, "/")}})
	}
	if _, err := s.ApplyBatch(t.Context(), batches); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	last := ""
	err := s.Range(t.Context(), func(p *store.Profile) bool {
		seen[p.ID]++
		if p.ID <= last {
			t.Errorf("Range gave %q after %q", p.ID, last)
		}
		last = p.ID
		if len(seen)%100 == 0 { // use the store from fn
			if _, err := s.Apply(t.Context(), p.ID, []store.Event{storetest.Page("r", 2, "/")}); err != nil {
				t.Errorf("Apply from Range's fn: %v", err)
			}
		}
		return true
	})
	if err != nil || len(seen) != n {
		t.Fatalf("Range visited %d profiles, %v; want %d", len(seen), err, n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("Range visited %s %d times", id, k)
		}
	}
	calls := 0
	if err := s.Range(t.Context(), func(*store.Profile) bool { calls++; return calls < 600 }); err != nil || calls != 600 {
		t.Fatalf("Range stopped after %d calls, %v; want 600", calls, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	err = s.Range(ctx, func(*store.Profile) bool { cancel(); return true })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Range with ctx canceled by fn: %v, want context.Canceled", err)
	}
}

func TestExpire(t *testing.T) {
	t.Parallel()
	s := newStore(t, newPool(t, 4, ""), postgres.Options{})
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var batches []store.Batch
	for v := range 1200 {
		batches = append(batches, store.Batch{ID: fmt.Sprintf("e%d", v), Events: []store.Event{
			{ID: "x", Type: store.TypePage, Time: base.Add(time.Duration(v) * time.Minute)},
		}})
	}
	if _, err := s.ApplyBatch(t.Context(), batches); err != nil {
		t.Fatal(err)
	}
	heard := make(chan string, 2000)
	if err := s.Subscribe(t.Context(), func(c store.Change) { heard <- c.ID }); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Expire(t.Context(), time.Time{}); err != nil || n != 0 {
		t.Fatalf("Expire(zero time) = %d, %v; want 0", n, err)
	}
	// e0 .. e1099 were last seen before e1100.
	if n, err := s.Expire(t.Context(), base.Add(1100*time.Minute)); err != nil || n != 1100 {
		t.Fatalf("Expire = %d, %v; want 1100", n, err)
	}
	if _, err := s.Load(t.Context(), "e1100"); err != nil {
		t.Fatalf("e1100, last seen exactly at the limit, was expired: %v", err)
	}
	for range 1100 {
		select {
		case <-heard:
		case <-time.After(5 * time.Second):
			t.Fatal("expired ids were not all announced")
		}
	}
	// Beyond PostgreSQL's timestamp range: infinity.
	if n, err := s.Expire(t.Context(), time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil || n != 100 {
		t.Fatalf("Expire(year 300000) = %d, %v; want 100", n, err)
	}
}

func TestSubscribeLifecycle(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 4, "")
	s := newStore(t, pool, postgres.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	heard := make(chan string, 10)
	if err := s.Subscribe(ctx, func(c store.Change) { heard <- c.ID }); err != nil {
		t.Fatal(err)
	}
	if got := pool.Stat().AcquiredConns(); got != 1 {
		t.Fatalf("%d connections acquired while subscribed, want 1", got)
	}
	if err := s.Delete(t.Context(), "gone"); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-heard:
		if id != "gone" {
			t.Fatalf("heard %q, want gone", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Delete was not announced")
	}
	cancel()
	waitFor(t, "the subscription to give its connection back", func() bool { return pool.Stat().AcquiredConns() == 0 })
	// The connection came back clean: not listening any more.
	for _, c := range pool.AcquireAllIdle(t.Context()) {
		var n int
		if err := c.QueryRow(t.Context(), "SELECT count(*) FROM pg_listening_channels()").Scan(&n); err != nil || n != 0 {
			t.Errorf("a pooled connection listens on %d channels (%v)", n, err)
		}
		c.Release()
	}

	// Close ends subscriptions and gives their connections back.
	if err := s.Subscribe(t.Context(), func(store.Change) {}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := pool.Stat().AcquiredConns(); got != 0 {
		t.Fatalf("%d connections still acquired after Close", got)
	}
	if err := s.Subscribe(t.Context(), func(store.Change) {}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v, want ErrClosed", err)
	}
	for name, err := range map[string]error{
		"ApplyBatch": func() error { _, err := s.ApplyBatch(t.Context(), nil); return err }(),
		"Range":      s.Range(t.Context(), func(*store.Profile) bool { return true }),
		"Expire":     func() error { _, err := s.Expire(t.Context(), time.Now()); return err }(),
		"Migrate":    s.Migrate(t.Context()),
	} {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	// The pool is the caller's: still usable.
	if err := pool.Ping(t.Context()); err != nil {
		t.Fatalf("pool after Close: %v", err)
	}
}

func TestErrorsNameWhatFailed(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 2, "")
	s := newStore(t, pool, postgres.Options{})
	_, err := s.Load(t.Context(), "nobody")
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), `"nobody"`) || !strings.Contains(err.Error(), s.Table()) {
		t.Errorf("Load(missing) error %q: want ErrNotFound naming the id and the table", err)
	}
	// A store whose table does not exist.
	missing, err := postgres.New(pool, postgres.Options{Table: "tailor_no_such_table"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = missing.Apply(t.Context(), "v", []store.Event{storetest.Page("e", 1, "/")})
	if err == nil || !strings.Contains(err.Error(), `apply to "v" in table tailor_no_such_table`) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Apply without table: %v", err)
	}
	_, err = missing.ApplyBatch(t.Context(), []store.Batch{{ID: "ok"}, {ID: "bad\n"}})
	if !errors.Is(err, store.ErrInvalidID) || !strings.Contains(err.Error(), "batch 2 of 2") {
		t.Errorf("ApplyBatch with an invalid id: %v", err)
	}
}

// TestOutage kills the server side of every connection of the pools, as a
// server restart or a network failure would, and checks that the store
// recovers: Apply retries a read that failed on a dead connection (or,
// without retries, fails once), nothing is applied twice, and the
// subscription reconnects.
func TestOutage(t *testing.T) {
	t.Parallel()
	app := "tailor_outage_" + tableName()
	pool := newPool(t, 1, app)
	subPool := newPool(t, 1, app)
	admin := newPool(t, 1, "")
	s := newStore(t, pool, postgres.Options{})
	sub, err := postgres.New(subPool, postgres.Options{Table: s.Table()})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	heard := make(chan string, 100)
	if err := sub.Subscribe(t.Context(), func(c store.Change) { heard <- c.ID }); err != nil {
		t.Fatal(err)
	}
	kill := func() {
		t.Helper()
		var n int
		err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n)
		if err != nil || n == 0 {
			t.Fatalf("terminated %d backends, %v", n, err)
		}
	}

	seq := 0
	apply := func() error {
		seq++
		_, err := s.Apply(t.Context(), "v", []store.Event{storetest.Page("o", seq, "/")})
		return err
	}
	if err := apply(); err != nil {
		t.Fatal(err)
	}
	select { // the subscription hears writes before the outage
	case <-heard:
	case <-time.After(5 * time.Second):
		t.Fatal("no notification before the outage")
	}
	kill()
	// The pool's only connection is dead, and the pool does not know yet
	// (it pings only connections idle for a second): the read fails, before
	// anything is written, and Apply tries again on a new connection.
	if err := apply(); err != nil {
		t.Fatalf("Apply on a killed connection: %v; want it retried on a new connection", err)
	}
	// With no retries allowed, the same outage is an error, and the next
	// call succeeds on a new connection.
	once, err := postgres.New(pool, postgres.Options{Table: s.Table(), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	kill()
	seq++
	_, err = once.Apply(t.Context(), "v", []store.Event{storetest.Page("o", seq, "/")})
	if err == nil || !strings.Contains(err.Error(), `apply to "v"`) {
		t.Fatalf("Apply on a killed connection without retries: %v; want an error naming the profile", err)
	}
	t.Logf("Apply on a killed connection without retries: %v", err)
	seq-- // the same events again
	if err := apply(); err != nil {
		t.Fatalf("Apply after the pool dropped the dead connection: %v", err)
	}
	// Reads and deletes are retried too.
	kill()
	if _, err := s.Load(t.Context(), "v"); err != nil {
		t.Fatalf("Load on a killed connection: %v", err)
	}
	kill()
	if err := s.Range(t.Context(), func(*store.Profile) bool { return true }); err != nil {
		t.Fatalf("Range on a killed connection: %v", err)
	}
	kill()
	if err := s.Delete(t.Context(), "nobody"); err != nil {
		t.Fatalf("Delete on a killed connection: %v", err)
	}
	p, err := s.Load(t.Context(), "v")
	if err != nil || p.Counts["page"] != seq {
		t.Fatalf("after the outage: %v, %v; want %d page views", p.Counts, err, seq)
	}

	// The subscription reconnects: a write after the last outage is heard.
	deadline := time.Now().Add(15 * time.Second)
	for i := 1; ; i++ {
		if _, err := s.Apply(t.Context(), "after", []store.Event{storetest.Page("after", i, "/")}); err != nil {
			t.Fatal(err)
		}
		timeout := time.After(100 * time.Millisecond)
	wait:
		for {
			select {
			case id := <-heard:
				if id != "after" {
					continue // from before the last outage
				}
				var listening int
				if err := admin.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'`, app).Scan(&listening); err != nil || listening != 1 {
					t.Errorf("%d listening backends (%v), want 1", listening, err)
				}
				return
			case <-timeout:
				break wait
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the subscription did not reconnect within 15s")
		}
	}
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTombstones checks what the conformance suite cannot see: Migrate
// adds the tombstone column to a table made before it, keeping the
// profiles; a tombstone is a row that Expire deletes once its TTL has
// passed; a negative TTL is refused.
func TestTombstones(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 4, "")
	if _, err := postgres.New(pool, postgres.Options{TombstoneTTL: -time.Second}); err == nil || !strings.Contains(err.Error(), "TombstoneTTL") {
		t.Fatalf("New with a negative TombstoneTTL: %v, want an error naming it", err)
	}
	table := tableName()
	t.Cleanup(func() { dropTable(t, pool, table) })
	ctx := t.Context()
	// The table as Migrate made it before tombstones, with one profile.
	old, err := store.Marshal(func() *store.Profile {
		p := store.New("kept")
		p.Apply(store.DefaultLimits, storetest.Page("o", 1, "/"))
		p.Version = 1
		return p
	}())
	if err != nil {
		t.Fatal(err)
	}
	tq := pgx.Identifier{table}.Sanitize()
	if _, err := pool.Exec(ctx, `CREATE TABLE `+tq+` (id text COLLATE "C" PRIMARY KEY, version bigint NOT NULL, last_seen timestamptz NOT NULL, data bytea NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO `+tq+` VALUES ('kept', 1, now(), $1)`, old); err != nil {
		t.Fatal(err)
	}
	const ttl = 2 * time.Second
	s, err := postgres.New(pool, postgres.Options{Table: table, TombstoneTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate of a table without erased_until: %v", err)
	}
	if p, err := s.Load(ctx, "kept"); err != nil || p.Counts["page"] != 1 {
		t.Fatalf("Load after Migrate = %v, %v; want the profile kept", p, err)
	}
	deleted := time.Now()
	if err := s.Delete(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	// Checked only if the machine took less than the TTL to get here.
	if _, err := s.Apply(ctx, "kept", []store.Event{storetest.Page("o", 2, "/")}); !errors.Is(err, store.ErrErased) && time.Since(deleted) < ttl {
		t.Fatalf("Apply right after Delete: %v, want ErrErased", err)
	}
	rows := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+tq).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(30*time.Second + ttl)
	for {
		if _, err := s.Load(ctx, "kept"); !errors.Is(err, store.ErrErased) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tombstone still alive 30s after its TTL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := rows(); n != 1 {
		t.Fatalf("%d rows before Expire, want the expired tombstone's", n)
	}
	if n, err := s.Expire(ctx, time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("Expire = %d, %v; want 0, nil", n, err)
	}
	if n := rows(); n != 0 {
		t.Fatalf("%d rows after Expire, want none: the expired tombstone stayed", n)
	}
}

// TestLeaseWithoutLeasesTable: a database migrated before leases (no
// leases table) gets one on the first Lease; Release before it exists is
// not an error.
func TestLeaseWithoutLeasesTable(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 8, "")
	s := newStore(t, pool, postgres.Options{})
	if _, err := pool.Exec(t.Context(), "DROP TABLE "+pgx.Identifier{s.Table() + "_leases"}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(t.Context(), "jobs", "a"); err != nil {
		t.Fatalf("Release without a leases table: %v", err)
	}
	var wg sync.WaitGroup
	won := make(chan bool, 4)
	for h := range 4 {
		wg.Go(func() {
			ok, err := s.Lease(t.Context(), "jobs", fmt.Sprint("h", h), time.Minute)
			if err != nil {
				t.Errorf("Lease without a leases table: %v", err)
			}
			won <- ok
		})
	}
	wg.Wait()
	close(won)
	n := 0
	for ok := range won {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d holders got the lease, want 1", n)
	}
}

// segments returns a segments event that moves a profile from was to segs,
// to be rechecked at until (zero: never).
func segments(seq int, id string, was, segs []string, until time.Time) store.Event {
	return store.Event{ID: store.EventID("seg", uint64(seq)), Type: store.TypeSegments, Time: time.Now(),
		Classified: &store.Classification{Visitor: id, Was: was, Segments: segs, Until: until}}
}

// sqlCounts counts the count_keys column of every row, as an operator
// would audit the counts table with SQL.
func sqlCounts(t *testing.T, pool *pgxpool.Pool, table string) map[string]int64 {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT k, count(*) FROM `+pgx.Identifier{table}.Sanitize()+`, unnest(count_keys) AS k GROUP BY k`)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for rows.Next() {
		var (
			k []byte
			n int64
		)
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		m[string(k)] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustCounts(t *testing.T, s *postgres.Store) map[string]int64 {
	t.Helper()
	got, err := s.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestAggregatesOverPreviousTable opens a store over a table as the
// version before aggregates made it (no recheck or count_keys column, no
// counts or documents table), with a profile in it, and checks that the
// store works, whether Migrate brings the table up to date or the first
// write that needs it does; the old profile counts from its next write.
func TestAggregatesOverPreviousTable(t *testing.T) {
	t.Parallel()
	for _, migrate := range []bool{false, true} {
		t.Run(fmt.Sprint("migrate=", migrate), func(t *testing.T) {
			t.Parallel()
			pool := newPool(t, 4, "")
			table := tableName()
			t.Cleanup(func() { dropTable(t, pool, table) })
			ctx := t.Context()
			tq := pgx.Identifier{table}.Sanitize()
			_, err := pool.Exec(ctx, `CREATE TABLE `+tq+` (id text COLLATE "C" PRIMARY KEY, version bigint NOT NULL,
				last_seen timestamptz NOT NULL, data bytea NOT NULL, erased_until timestamptz)`)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"kept", "stale"} {
				p := store.New(id)
				p.Apply(store.DefaultLimits, storetest.Page("o", 1, "/"), segments(2, id, nil, []string{"fans"}, time.Time{}))
				p.Version = 2
				data, err := store.Marshal(p)
				if err != nil {
					t.Fatal(err)
				}
				seen := "now()"
				if id == "stale" {
					seen = "'2000-01-01Z'"
				}
				if _, err := pool.Exec(ctx, `INSERT INTO `+tq+` VALUES ($1, 2, `+seen+`, $2)`, id, data); err != nil {
					t.Fatal(err)
				}
			}
			s, err := postgres.New(pool, postgres.Options{Table: table})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if migrate {
				if err := s.Migrate(ctx); err != nil {
					t.Fatalf("Migrate of a table made before aggregates: %v", err)
				}
			} else {
				// Reads before anything was written: nothing counted,
				// nothing due, no documents.
				if got := mustCounts(t, s); len(got) != 0 {
					t.Fatalf("Counts before any write = %v, want none", got)
				}
				if ids, err := s.Due(ctx, time.Now().Add(time.Hour), 10); err != nil || len(ids) != 0 {
					t.Fatalf("Due before any write = %q, %v; want none", ids, err)
				}
				if _, err := s.Document(ctx, "progress"); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("Document without a documents table: %v, want ErrNotFound", err)
				}
			}
			if got := mustCounts(t, s); len(got) != 0 {
				t.Fatalf("Counts over profiles written before aggregates = %v, want none", got)
			}
			// The old profile counts from its next write; a new one at once.
			until := time.Now().Add(time.Minute)
			if _, err := s.Apply(ctx, "kept", []store.Event{storetest.Page("o", 3, "/")}); err != nil {
				t.Fatalf("Apply to a profile written before aggregates: %v", err)
			}
			if _, err := s.Apply(ctx, "new", []store.Event{storetest.Page("o", 1, "/"), segments(2, "new", nil, []string{"fans"}, until)}); err != nil {
				t.Fatal(err)
			}
			want := map[string]int64{store.CountProfiles: 2, store.SegmentKey("fans"): 2}
			if got := mustCounts(t, s); !maps.Equal(got, want) {
				t.Fatalf("Counts after writes = %v, want %v", got, want)
			}
			if ids, err := s.Due(ctx, until.Add(time.Second), 10); err != nil || !slices.Equal(ids, []string{"new"}) {
				t.Fatalf("Due = %q, %v; want [new]", ids, err)
			}
			// Expiring a profile that never counted subtracts nothing.
			if n, err := s.Expire(ctx, time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil || n != 1 {
				t.Fatalf("Expire = %d, %v; want 1 (stale)", n, err)
			}
			if err := s.Delete(ctx, "kept"); err != nil {
				t.Fatal(err)
			}
			want = map[string]int64{store.CountProfiles: 1, store.SegmentKey("fans"): 1}
			if got := mustCounts(t, s); !maps.Equal(got, want) {
				t.Fatalf("Counts after Expire and Delete = %v, want %v", got, want)
			}
			if err := s.PutDocument(ctx, "progress", []byte("v9")); err != nil {
				t.Fatalf("PutDocument without a documents table: %v", err)
			}
			if got, err := s.Document(ctx, "progress"); err != nil || string(got) != "v9" {
				t.Fatalf("Document = %q, %v; want v9", got, err)
			}
		})
	}
}

// TestCountsNoDeadlock has writers of disjoint profiles change the same
// counts at once, without retries: a deadlock on the rows of the counts
// table would fail one of them (it does within seconds if the rows are
// locked out of key order). Then the counts must equal both Range's
// profiles and the count_keys column, which Delete and Expire subtract.
func TestCountsNoDeadlock(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 8, "")
	s := newStore(t, pool, postgres.Options{MaxRetries: -1})
	const writers, rounds, per = 6, 30, 8
	segs := [][]string{{"a", "b", "c", "d", "e", "f"}, {"b", "g", "h"}, {"c", "d", "i", "j"}, {}, {"k", "l", "a", "h"}}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			var was [per][]string
			for r := range rounds {
				batches := make([]store.Batch, per)
				for i := range batches {
					id := fmt.Sprintf("w%d-%03d", w, i)
					to := segs[(w+r+i)%len(segs)]
					batches[i] = store.Batch{ID: id, Events: []store.Event{storetest.Page("p", r+1, "/"), segments(r+1, id, was[i], to, time.Time{})}}
					was[i] = to
				}
				if _, err := s.ApplyBatch(t.Context(), batches); err != nil {
					t.Errorf("writer %d, round %d: %v", w, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	want := map[string]int64{}
	err := s.Range(t.Context(), func(p *store.Profile) bool {
		for _, k := range store.CountKeys(nil, p) {
			want[k]++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if want[store.CountProfiles] != writers*per {
		t.Fatalf("Range counted %d profiles, want %d", want[store.CountProfiles], writers*per)
	}
	if got := mustCounts(t, s); !maps.Equal(got, want) {
		t.Fatalf("Counts = %v\nover Range = %v", got, want)
	}
	if got := sqlCounts(t, pool, s.Table()); !maps.Equal(got, want) {
		t.Fatalf("count_keys column counts %v\nover Range = %v", got, want)
	}
}

// TestCountKeysAnyBytes: count keys hold what visitors put in names, NUL
// and invalid UTF-8 included; they must neither fail the write nor be
// changed.
func TestCountKeysAnyBytes(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 2, "")
	s := newStore(t, pool, postgres.Options{})
	odd := "a\x00b\xff"
	traits := `{"` + store.ExposureTraitPrefix + "hero\xfe" + `":{"variant":"B\u0000","segment":""}}`
	evs := []store.Event{storetest.Page("o", 1, "/"), segments(2, "v", nil, []string{odd}, time.Time{}),
		{ID: store.EventID("o", 3), Type: store.TypeIdentify, Time: time.Now(), Traits: []byte(traits)}}
	p, err := s.Apply(t.Context(), "v", evs)
	if err != nil {
		t.Fatalf("Apply with odd bytes in segment and experiment names: %v", err)
	}
	want := map[string]int64{}
	for _, k := range store.CountKeys(nil, p) {
		want[k]++
	}
	if len(want) < 3 {
		t.Fatalf("the profile counts for %q: the test does not test odd keys", store.CountKeys(nil, p))
	}
	if got := mustCounts(t, s); !maps.Equal(got, want) {
		t.Fatalf("Counts = %+q, want %+q", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	if err := s.Delete(t.Context(), "v"); err != nil {
		t.Fatal(err)
	}
	if got := mustCounts(t, s); len(got) != 0 {
		t.Fatalf("Counts after Delete = %+q, want none", slices.Sorted(maps.Keys(got)))
	}
}

// TestDueRoundsUp: recheck is kept to the microsecond, so a Recheck between
// two microseconds is due at the later one, never before it is.
func TestDueRoundsUp(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 2, "")
	s := newStore(t, pool, postgres.Options{})
	at := time.Date(2030, 1, 2, 3, 4, 5, 6_000, time.UTC)
	until := at.Add(1) // a nanosecond after a microsecond
	if _, err := s.Apply(t.Context(), "v", []store.Event{storetest.Page("o", 1, "/"), segments(2, "v", nil, []string{"fans"}, until)}); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Load(t.Context(), "v"); err != nil || !p.Recheck.Equal(until) {
		t.Fatalf("Load = %v, %v; want Recheck %v exactly", p, err, until)
	}
	for _, tc := range []struct {
		t    time.Time
		want int
	}{{at, 0}, {until, 0}, {at.Add(time.Microsecond), 1}} {
		if ids, err := s.Due(t.Context(), tc.t, 10); err != nil || len(ids) != tc.want {
			t.Errorf("Due(%v) = %q, %v; want %d", tc.t, ids, err, tc.want)
		}
	}
}

// TestScanSkipsTombstones: Scan, like Range, returns profiles only, and a
// cursor can be resumed by another store on the table.
func TestScanSkipsTombstones(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 2, "")
	s := newStore(t, pool, postgres.Options{})
	for _, id := range []string{"a", "b", "c", "d"} {
		if _, err := s.Apply(t.Context(), id, []store.Event{storetest.Page("o", 1, "/")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(t.Context(), "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(t.Context(), "never"); err != nil { // a tombstone without a profile
		t.Fatal(err)
	}
	ps, next, err := s.Scan(t.Context(), "", 2)
	if err != nil || len(ps) != 2 || ps[0].ID != "a" || ps[1].ID != "c" || next != "c" {
		t.Fatalf("first page: %v, %q, %v; want a, c and the cursor c", ps, next, err)
	}
	other, err := postgres.New(pool, postgres.Options{Table: s.Table()})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for next != "" {
		if ps, next, err = other.Scan(t.Context(), next, 2); err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			ids = append(ids, p.ID)
		}
	}
	if !slices.Equal(ids, []string{"d"}) {
		t.Fatalf("resumed scan = %q, want [d]", ids)
	}
}

// TestDocumentAnnouncedToOtherProcess: a document put through one store is
// announced to the subscribers of another on its own pool, as in another
// process, when it commits, and reads as put when it is heard.
func TestDocumentAnnouncedToOtherProcess(t *testing.T) {
	t.Parallel()
	table := tableName()
	a := newStore(t, newPool(t, 4, ""), postgres.Options{Table: table})
	b, err := postgres.New(newPool(t, 4, ""), postgres.Options{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := make(chan heardDoc, 10)
	if err := b.Subscribe(t.Context(), func(c store.Change) {
		data, err := b.Document(t.Context(), c.Document)
		got <- heardDoc{c, string(data), err}
	}); err != nil {
		t.Fatal(err)
	}
	// The first put creates the documents table; the second updates a row.
	for _, v := range []string{"v1", "v2"} {
		if err := a.PutDocument(t.Context(), "segments/live", []byte(v)); err != nil {
			t.Fatal(err)
		}
		select {
		case h := <-got:
			if want := (heardDoc{c: store.Change{Document: "segments/live"}, data: v}); h != want {
				t.Fatalf("heard %+v, want %+v", h, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("document %s was not announced to the other process within 5s", v)
		}
	}
}

// heardDoc is a change heard, with the document it names read then.
type heardDoc struct {
	c    store.Change
	data string
	err  error
}
