package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/bolt"
	"github.com/tailorhq/tailor/store/postgres"
	"github.com/tailorhq/tailor/store/redis"
)

// A backend is the store under test: where it is, how to open it (again),
// what its server reports of the work it did, and how to remove what the
// run created.
type backend struct {
	name  string
	where string
	// open opens a new handle on the store: a connection of its own for a
	// server, the file for bbolt.
	open func(ctx context.Context) (store.Store, func() error, error)
	// shared is set when the store can be opened once at a time (a bbolt
	// file): a second site shares the first one's handle.
	shared bool
	// sent counts what the handles that open made sent to the server
	// (commands, statements), by name; nil for bbolt.
	sent *tally
	// server reads the server's own counters of work, by name, and says
	// what they are; nil for bbolt.
	server     func(ctx context.Context) (map[string]int64, error)
	serverNote string
	// size says how much room the store takes.
	size    func(ctx context.Context) (string, error)
	cleanup func(ctx context.Context) error
}

func (b *backend) sizeOf(ctx context.Context) (string, error) {
	if b.size == nil {
		return "", errors.New("unknown")
	}
	return b.size(ctx)
}

// mib writes a number of bytes in MiB.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// tally counts things by name, and the round trips that carried them; it
// is safe for concurrent use.
type tally struct {
	mu    sync.Mutex
	n     map[string]int64
	trips atomic.Int64
}

func (t *tally) add(name string, n int64) {
	t.mu.Lock()
	if t.n == nil {
		t.n = map[string]int64{}
	}
	t.n[name] += n
	t.mu.Unlock()
}

func (t *tally) snapshot() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.n)
}

// diff returns the non-zero differences a-b, by name.
func diff(a, b map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range a {
		if d := v - b[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// describe lists counts by name, the largest first, or "none".
func describe(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			if m[a] > m[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	if len(keys) == 1 {
		return fmt.Sprintf("%s %d", keys[0], m[keys[0]])
	}
	var total int64
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
		total += m[k]
	}
	return fmt.Sprintf("%d: %s", total, strings.Join(parts, "; "))
}

// boltBackend keeps the store in the file db, which must not exist yet
// (every run starts from nothing), or in a temporary directory if db is
// empty.
func boltBackend(db string) (*backend, error) {
	var dir string
	if db == "" {
		var err error
		if dir, err = os.MkdirTemp("", "tailor-scale-"); err != nil {
			return nil, err
		}
		db = filepath.Join(dir, "scale.db")
	} else if _, err := os.Stat(db); err == nil {
		return nil, fmt.Errorf("-db %s exists: name a new file, so that the run starts from nothing", db)
	}
	return &backend{
		name: "bolt", where: db, shared: true,
		open: func(context.Context) (store.Store, func() error, error) {
			s, err := bolt.Open(db, bolt.Options{})
			if err != nil {
				return nil, nil, err
			}
			return s, s.Close, nil
		},
		size: func(context.Context) (string, error) {
			fi, err := os.Stat(db)
			if err != nil {
				return "", err
			}
			return mib(fi.Size()) + " (the file)", nil
		},
		cleanup: func(context.Context) error {
			if dir != "" {
				return os.RemoveAll(dir)
			}
			return os.Remove(db)
		},
	}, nil
}

// redisBackend keeps the store in Redis at url under a fresh key prefix.
// It counts the commands its clients send with a go-redis hook, and reads
// the server's INFO commandstats, which count every client's.
func redisBackend(url string) (*backend, error) {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("-redis %s: %w", url, err)
	}
	prefix := fmt.Sprintf("tailor-scale-%d:", time.Now().UnixNano())
	sent := &tally{}
	admin := goredis.NewClient(opt) // not counted: INFO, and the clean-up
	return &backend{
		name: "redis", where: fmt.Sprintf("%s, key prefix %s", opt.Addr, prefix), sent: sent,
		open: func(ctx context.Context) (store.Store, func() error, error) {
			c := goredis.NewClient(opt)
			c.AddHook(countHook{sent})
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := c.Ping(pctx).Err(); err != nil {
				c.Close()
				return nil, nil, fmt.Errorf("redis %s: %w", opt.Addr, err)
			}
			s, err := redis.New(c, redis.Options{Prefix: prefix})
			if err != nil {
				c.Close()
				return nil, nil, err
			}
			return s, func() error { return errors.Join(s.Close(), c.Close()) }, nil
		},
		server: func(ctx context.Context) (map[string]int64, error) {
			info, err := admin.Info(ctx, "commandstats").Result()
			if err != nil {
				return nil, err
			}
			return parseCommandStats(info), nil
		},
		size: func(ctx context.Context) (string, error) {
			info, err := admin.Info(ctx, "memory").Result()
			if err != nil {
				return "", err
			}
			for line := range strings.Lines(info) {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
					n, err := strconv.ParseInt(v, 10, 64)
					return mib(n) + " (the server's used_memory, every key of it)", err
				}
			}
			return "", errors.New("no used_memory in INFO memory")
		},
		serverNote: "the server's INFO commandstats: every client's, other programs' too, and the one INFO of this measure",
		cleanup: func(ctx context.Context) error {
			defer admin.Close()
			iter := admin.Scan(ctx, 0, prefix+"*", 1000).Iterator()
			var keys []string
			var err error
			for iter.Next(ctx) {
				if keys = append(keys, iter.Val()); len(keys) == 1000 {
					err = errors.Join(err, admin.Unlink(ctx, keys...).Err())
					keys = keys[:0]
				}
			}
			if len(keys) > 0 {
				err = errors.Join(err, admin.Unlink(ctx, keys...).Err())
			}
			return errors.Join(err, iter.Err())
		},
	}, nil
}

// parseCommandStats reads the calls of each command of INFO commandstats
// (lines "cmdstat_get:calls=1,usec=...").
func parseCommandStats(info string) map[string]int64 {
	out := map[string]int64{}
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		for field := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(field, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				out[name] = n
			}
		}
	}
	return out
}

// countHook counts the commands a go-redis client sends.
type countHook struct{ t *tally }

func (h countHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h countHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.t.trips.Add(1)
		h.t.add(cmd.Name(), 1)
		return next(ctx, cmd)
	}
}

func (h countHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.t.trips.Add(1)
		for _, cmd := range cmds {
			h.t.add(cmd.Name(), 1)
		}
		return next(ctx, cmds)
	}
}

// postgresBackend keeps the store in PostgreSQL at url in a fresh table.
// It counts the statements its pools send with a pgx tracer, and reads the
// database's transactions from pg_stat_database (pg_stat_statements is not
// assumed to be installed), which count every client's.
func postgresBackend(url string) (*backend, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("-postgres: %w", err)
	}
	table := fmt.Sprintf("tailor_scale_%d", time.Now().UnixNano())
	sent := &tally{}
	var adminOnce sync.Once
	var admin *pgxpool.Pool
	var adminErr error
	adminPool := func(ctx context.Context) (*pgxpool.Pool, error) {
		adminOnce.Do(func() { admin, adminErr = pgxpool.NewWithConfig(ctx, cfg.Copy()) })
		return admin, adminErr
	}
	return &backend{
		name: "postgres", where: fmt.Sprintf("%s:%d/%s, table %s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, table), sent: sent,
		open: func(ctx context.Context) (store.Store, func() error, error) {
			c := cfg.Copy()
			c.ConnConfig.Tracer = pgTracer{sent, table}
			pool, err := pgxpool.NewWithConfig(ctx, c)
			if err != nil {
				return nil, nil, fmt.Errorf("postgres: %w", err)
			}
			s, err := postgres.New(pool, postgres.Options{Table: table})
			if err != nil {
				pool.Close()
				return nil, nil, err
			}
			mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := s.Migrate(mctx); err != nil {
				s.Close()
				pool.Close()
				return nil, nil, fmt.Errorf("postgres: migrate: %w", err)
			}
			return s, func() error { err := s.Close(); pool.Close(); return err }, nil
		},
		server: func(ctx context.Context) (map[string]int64, error) {
			pool, err := adminPool(ctx)
			if err != nil {
				return nil, err
			}
			var n int64
			err = pool.QueryRow(ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
			return map[string]int64{"transactions": n}, err
		},
		size: func(ctx context.Context) (string, error) {
			pool, err := adminPool(ctx)
			if err != nil {
				return "", err
			}
			var n int64
			err = pool.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(format('%I', tablename))), 0)::bigint FROM pg_tables
	WHERE schemaname = current_schema() AND (tablename = $1 OR starts_with(tablename, $1 || '_'))`, table).Scan(&n)
			return mib(n) + " (the tables, with indexes and TOAST)", err
		},
		serverNote: "pg_stat_database xact_commit+xact_rollback of the database: every client's, other programs' too, and the one SELECT of this measure",
		cleanup: func(ctx context.Context) error {
			pool, err := adminPool(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			rows, err := pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND (tablename = $1 OR starts_with(tablename, $1 || '_'))`, table)
			if err != nil {
				return err
			}
			tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			for _, t := range tables {
				if _, err := pool.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{t}.Sanitize()); err != nil {
					return err
				}
			}
			return nil
		},
	}, nil
}

// pgTracer counts the statements a pgx pool sends, by their first words,
// with the store's table (and the names made from it) written T.
type pgTracer struct {
	t     *tally
	table string
}

func (p pgTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	p.t.trips.Add(1)
	p.t.add(statementName(strings.ReplaceAll(d.SQL, p.table, "T")), 1)
	return ctx
}

func (p pgTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (p pgTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	p.t.trips.Add(1)
	return ctx
}

func (p pgTracer) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	p.t.add(statementName(strings.ReplaceAll(d.SQL, p.table, "T")), 1)
}

func (p pgTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// statementName names a statement by its first words, enough to tell the
// store's statements apart, without the quotes of identifiers.
func statementName(sql string) string {
	words := strings.Fields(strings.ReplaceAll(sql, `"`, ""))
	s := strings.Join(words[:min(len(words), 6)], " ")
	if len(words) > 6 {
		s += "…"
	}
	return "[" + s + "]"
}
