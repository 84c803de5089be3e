package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tailorhq/tailor/internal/fold"
	"github.com/tailorhq/tailor/store"
)

// Defaults for zero fields of Options.
const (
	DefaultTable      = "tailor_profiles"
	DefaultMaxRetries = 10
)

// maxTableLen keeps the derived index name within PostgreSQL's 63 bytes.
const maxTableLen = 63 - len("_last_seen_idx")

// chunk is the most profiles ApplyBatch writes in one transaction, and the
// most that Range holds in memory and Expire deletes in one statement.
const chunk = 500

// Options configure a Store. The zero value is valid: every zero field means
// its default.
type Options struct {
	// Table is the name of the profiles table: 1 to 49 lowercase ASCII
	// letters, digits and underscores, not starting with a digit. It is
	// quoted in every statement and found on the connections' search_path;
	// to use another schema, set search_path in the pool's configuration.
	// The zero value means DefaultTable, "tailor_profiles".
	Table string
	// Limits bound what one profile keeps; zero fields mean the defaults of
	// store.DefaultLimits. Every process that shares a table must use the
	// same limits.
	Limits store.Limits
	// MaxRetries is how many times Apply and ApplyBatch retry a profile
	// whose compare-and-swap lost to a concurrent writer (or whose
	// transaction failed with a deadlock or a serialization failure, or
	// whose connection broke before anything was written) before they give
	// up; after a lost compare-and-swap they then return store.ErrConflict.
	// Retries lock the rows they read, so one is almost always enough.
	// Zero means DefaultMaxRetries, 10; a negative value means no retries,
	// so that every lost compare-and-swap is an ErrConflict.
	MaxRetries int
	// Channel is the LISTEN/NOTIFY channel that writes and deletes are
	// announced on, with the same rules as Table but up to 63 bytes. Every
	// process that shares
	// a table must use the same channel. The zero value means the table's
	// name, so "tailor_profiles" by default, and stores on different tables
	// do not hear each other.
	Channel string
	// TombstoneTTL is how long the tombstone that Delete leaves refuses
	// Applies of the erased id (see the package documentation). Zero means
	// store.DefaultTombstoneTTL; negative is an error. Every process that
	// shares a table should use the same TTL.
	TombstoneTTL time.Duration
}

// Store is a store.Store on a PostgreSQL table. It is safe for concurrent
// use, also by several processes sharing the table. The zero value is not
// usable; call New.
type Store struct {
	pool       *pgxpool.Pool
	table      string // unquoted
	channel    string // unquoted
	lim        store.Limits
	maxRetries int
	tombTTL    time.Duration
	sql        statements

	closed atomic.Bool
	// mu orders Subscribe against Close, so that Close waits for every
	// subscription's goroutine.
	mu     sync.Mutex
	subs   sync.WaitGroup
	done   context.Context // canceled by Close
	cancel context.CancelFunc
}

type statements struct {
	createTable, createIndex    string // createTable has %s for COMPRESSION and WITH
	missingColumns, addColumns  string // for tables made by earlier versions
	createErasedIndex           string
	createRecheckIndex          string
	load, loadMany, lockMany    string
	update, insert              string
	lockOne, tombstone, newTomb string // Delete
	expire, page, sweep         string
	listen                      string
	createCounts, addCounts     string
	counts, due                 string
	createDocuments             string
	createJournal, journal      string
	createJournalHead           string
	journalIDCol, addJournalID  string
	createJournalIDIndex        string
	purchases, trim, unjournal  string
	unjournalMany               string
	document, putDocument       string
	createLeases                string
	lease, release              string
}

var (
	_ store.Store        = (*Store)(nil)
	_ store.BatchApplier = (*Store)(nil)
	_ store.Ranger       = (*Store)(nil)
	_ store.Expirer      = (*Store)(nil)
	_ store.Invalidator  = (*Store)(nil)
	_ store.Leaser       = (*Store)(nil)
	_ store.Counter      = (*Store)(nil)
	_ store.Rechecker    = (*Store)(nil)
	_ store.Scanner      = (*Store)(nil)
	_ store.Documents    = (*Store)(nil)
	_ store.Journal      = (*Store)(nil)
)

// New returns a store on pool. It validates opts but does not touch the
// database; call Migrate to create the table. The pool stays the caller's:
// Close does not close it.
func New(pool *pgxpool.Pool, opts Options) (*Store, error) {
	if pool == nil {
		return nil, errors.New("tailor/store/postgres: New: nil pool")
	}
	table := opts.Table
	if table == "" {
		table = DefaultTable
	}
	if err := checkName(table, maxTableLen); err != nil {
		return nil, fmt.Errorf("tailor/store/postgres: Options.Table %q: %w", table, err)
	}
	channel := opts.Channel
	if channel == "" {
		channel = table
	}
	if err := checkName(channel, 63); err != nil {
		return nil, fmt.Errorf("tailor/store/postgres: Options.Channel %q: %w", channel, err)
	}
	if opts.TombstoneTTL < 0 {
		return nil, fmt.Errorf("tailor/store/postgres: Options.TombstoneTTL is negative (%v)", opts.TombstoneTTL)
	}
	tombTTL := opts.TombstoneTTL
	if tombTTL == 0 {
		tombTTL = store.DefaultTombstoneTTL
	}
	retries := opts.MaxRetries
	switch {
	case retries == 0:
		retries = DefaultMaxRetries
	case retries < 0:
		retries = 0
	}
	s := &Store{
		pool:       pool,
		table:      table,
		channel:    channel,
		lim:        opts.Limits.WithDefaults(),
		maxRetries: retries,
		tombTTL:    tombTTL,
		sql:        newStatements(table, channel),
	}
	s.done, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// checkName reports whether name is a plain lowercase SQL identifier of at
// most max bytes.
func checkName(name string, max int) error {
	if len(name) > max {
		return fmt.Errorf("%d bytes, more than %d", len(name), max)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case c >= '0' && c <= '9':
			if i == 0 {
				return errors.New("starts with a digit; want a lowercase letter or an underscore")
			}
		default:
			return fmt.Errorf("byte %d is %q; want lowercase ASCII letters, digits and underscores", i, c)
		}
	}
	return nil
}

// The states of a row, as the rowState expression reads them.
const (
	stateProfile = 0 // a profile
	stateExpired = 1 // a tombstone whose TTL has passed: no profile
	stateErased  = 2 // a live tombstone
)

// rowState is the SQL expression of a row's state, on the server's clock.
const rowState = `CASE WHEN erased_until IS NULL THEN 0 WHEN erased_until > now() THEN 2 ELSE 1 END::int4`

func newStatements(table, channel string) statements {
	t := pgx.Identifier{table}.Sanitize()
	idx := pgx.Identifier{table + "_last_seen_idx"}.Sanitize()
	erasedIdx := pgx.Identifier{table + "_erased_idx"}.Sanitize()
	recheckIdx := pgx.Identifier{table + "_recheck_idx"}.Sanitize()
	leases := pgx.Identifier{table + "_leases"}.Sanitize()
	counts := pgx.Identifier{table + "_counts"}.Sanitize()
	docs := pgx.Identifier{table + "_documents"}.Sanitize()
	journal := pgx.Identifier{table + "_journal"}.Sanitize()
	head := pgx.Identifier{table + "_journal_head"}.Sanitize()
	journalIDIdx := pgx.Identifier{table + "_journal_id_idx"}.Sanitize()
	// addCounts adds n[i] to the count of key[i] in one shard. The keys
	// are distinct and sorted, so that every transaction locks the rows
	// of a shard in the same order and two cannot deadlock.
	addCounts := `INSERT INTO ` + counts + ` AS c (key, shard, n)
	SELECT k, $3::int2, d FROM unnest($1::bytea[], $2::int8[]) AS u(k, d) ORDER BY k
	ON CONFLICT (key, shard) DO UPDATE SET n = c.n + EXCLUDED.n`
	return statements{
		createTable: `CREATE TABLE IF NOT EXISTS ` + t + ` (
	id           text COLLATE "C" PRIMARY KEY,
	version      bigint      NOT NULL,
	last_seen    timestamptz NOT NULL,
	data         bytea%s NOT NULL,
	erased_until timestamptz,
	recheck      timestamptz,
	count_keys   bytea[]
)%s`,
		createIndex: `CREATE INDEX IF NOT EXISTS ` + idx + ` ON ` + t + ` (last_seen)`,
		missingColumns: `SELECT 3 - count(*) FROM pg_attribute WHERE attrelid = to_regclass($1)
	AND attname IN ('erased_until', 'recheck', 'count_keys') AND NOT attisdropped`,
		addColumns: `ALTER TABLE ` + t + ` ADD COLUMN IF NOT EXISTS erased_until timestamptz,
	ADD COLUMN IF NOT EXISTS recheck timestamptz, ADD COLUMN IF NOT EXISTS count_keys bytea[]`,
		createErasedIndex:  `CREATE INDEX IF NOT EXISTS ` + erasedIdx + ` ON ` + t + ` (erased_until) WHERE erased_until IS NOT NULL`,
		createRecheckIndex: `CREATE INDEX IF NOT EXISTS ` + recheckIdx + ` ON ` + t + ` (recheck, id) WHERE recheck IS NOT NULL`,
		load:               `SELECT version, data, ` + rowState + ` FROM ` + t + ` WHERE id = $1`,
		loadMany:           `SELECT id, version, data, ` + rowState + ` FROM ` + t + ` WHERE id = ANY($1)`,
		// Rows are sorted before they are locked, so lockers go in id
		// order: byte order, as Go sorts, even if a table made without
		// Migrate has another collation.
		lockMany: `SELECT id, version, data, ` + rowState + ` FROM ` + t + ` WHERE id = ANY($1) ORDER BY id COLLATE "C" FOR UPDATE`,
		// The compare-and-swap. The notification is sent when the
		// transaction commits, and only if the row was written; the number
		// of rows the SELECT returns is the number written. A Delete
		// changes the version, so a profile erased since it was read is
		// not written; one written over an expired tombstone is a profile
		// again. recheck and count_keys are written with the profile, so
		// that they are always those of the profile stored; count_keys
		// is NULL (kept) when the keys did not change.
		update: `WITH w AS (UPDATE ` + t + ` SET version = $3::bigint, last_seen = $4::timestamptz, data = $5::bytea, erased_until = NULL,
		recheck = $7::timestamptz, count_keys = COALESCE($8::bytea[], count_keys)
	WHERE id = $1::text AND version = $2::bigint RETURNING id)
SELECT pg_notify($6::text, id) FROM w`,
		insert: `WITH w AS (INSERT INTO ` + t + ` (id, version, last_seen, data, recheck, count_keys)
	VALUES ($1::text, $2::bigint, $3::timestamptz, $4::bytea, $6::timestamptz, $7::bytea[])
	ON CONFLICT (id) DO NOTHING RETURNING id)
SELECT pg_notify($5::text, id) FROM w`,
		// Delete locks the row (if any) to read the count keys of the
		// profile it replaces, then turns it into a tombstone with a new
		// version, so that writers that read the profile lose their
		// compare-and-swap; without a row, it inserts a tombstone, unless
		// a profile was inserted in between (then it starts again).
		// Delete notifies even when there was no profile, so that every
		// cache drops the id (erasure).
		lockOne: `SELECT count_keys FROM ` + t + ` WHERE id = $1 FOR UPDATE`,
		tombstone: `WITH d AS (UPDATE ` + t + ` SET version = version + 1, last_seen = now(), data = '',
		erased_until = now() + $4::bigint * interval '1 microsecond', recheck = NULL, count_keys = NULL
	WHERE id = $1::text RETURNING id)
SELECT pg_notify($2, $3) FROM d`,
		newTomb: `WITH d AS (INSERT INTO ` + t + ` (id, version, last_seen, data, erased_until)
	VALUES ($1::text, 1, now(), '', now() + $4::bigint * interval '1 microsecond')
	ON CONFLICT (id) DO NOTHING RETURNING id)
SELECT pg_notify($2, $3) FROM d`,
		// last_seen is checked again on the row being deleted, so that a
		// profile updated since the inner SELECT's snapshot is kept.
		// Tombstones are not profiles: never expired, nor counted. The
		// count keys of the rows deleted are subtracted in the same
		// statement, after every row is deleted (the aggregate reads them
		// all), in key order. It returns the ids deleted, whose
		// purchases unjournalMany then removes.
		expire: `WITH d AS (DELETE FROM ` + t + ` WHERE id IN (SELECT id FROM ` + t + ` WHERE last_seen < $1 AND erased_until IS NULL LIMIT $3)
		AND last_seen < $1 AND erased_until IS NULL RETURNING id, count_keys),
	c AS (INSERT INTO ` + counts + ` AS c (key, shard, n)
		SELECT k, $4::int2, -count(*) FROM d, unnest(d.count_keys) AS k GROUP BY k ORDER BY k
		ON CONFLICT (key, shard) DO UPDATE SET n = c.n + EXCLUDED.n)
SELECT id, pg_notify($2, id) FROM d`,
		sweep:  `DELETE FROM ` + t + ` WHERE erased_until <= now()`,
		page:   `SELECT id, version, data FROM ` + t + ` WHERE id > $1 AND erased_until IS NULL ORDER BY id LIMIT $2`,
		listen: `LISTEN ` + pgx.Identifier{channel}.Sanitize(),
		// Aggregates: a row per count key and shard, the count being the
		// sum over the shards. Keys are bytea: they hold whatever a
		// visitor put in a segment or experiment name, NUL included.
		createCounts: `CREATE TABLE IF NOT EXISTS ` + counts + ` (
	key   bytea    NOT NULL,
	shard smallint NOT NULL,
	n     bigint   NOT NULL,
	PRIMARY KEY (key, shard)
)`,
		addCounts: addCounts,
		counts:    `SELECT key, sum(n)::int8 FROM ` + counts + ` GROUP BY key HAVING sum(n) <> 0`,
		due:       `SELECT id FROM ` + t + ` WHERE recheck <= $1 ORDER BY recheck, id LIMIT $2`,
		createDocuments: `CREATE TABLE IF NOT EXISTS ` + docs + ` (
	name    text COLLATE "C" PRIMARY KEY,
	data    bytea NOT NULL,
	updated timestamptz NOT NULL
)`,
		// The journal: a row per purchase, at a position that the head
		// row hands out in the writing transaction (see the package
		// documentation). at is the server's clock when the entry was
		// journaled, for TrimPurchases.
		// id is the profile's, for Delete and Expire; NULL in the rows
		// that a version before it journaled.
		createJournal: `CREATE TABLE IF NOT EXISTS ` + journal + ` (
	pos  bigint PRIMARY KEY,
	at   timestamptz NOT NULL,
	data bytea NOT NULL,
	id   text COLLATE "C"
)`,
		journalIDCol:         `SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'id' AND NOT attisdropped`,
		addJournalID:         `ALTER TABLE ` + journal + ` ADD COLUMN IF NOT EXISTS id text COLLATE "C"`,
		createJournalIDIndex: `CREATE INDEX IF NOT EXISTS ` + journalIDIdx + ` ON ` + journal + ` (id)`,
		createJournalHead: `CREATE TABLE IF NOT EXISTS ` + head + ` (
	one bool PRIMARY KEY DEFAULT true CHECK (one),
	pos bigint NOT NULL
)`,
		// The head row is the last position handed out: locked by the
		// upsert until the transaction ends, so that the transactions that
		// journal commit one after the other, in the order of their
		// positions. It is the last row a write locks.
		journal: `WITH h AS (INSERT INTO ` + head + ` AS h (one, pos) VALUES (true, cardinality($1::bytea[]))
	ON CONFLICT (one) DO UPDATE SET pos = h.pos + EXCLUDED.pos RETURNING pos)
INSERT INTO ` + journal + ` (pos, at, data, id)
	SELECT h.pos - cardinality($1::bytea[]) + u.o, clock_timestamp(), u.d, u.i FROM h, unnest($1::bytea[], $2::text[]) WITH ORDINALITY AS u(d, i, o)`,
		purchases: `SELECT pos, data FROM ` + journal + ` WHERE pos > $1 ORDER BY pos LIMIT $2`,
		// trim deletes a chunk of the entries before $1 after position
		// $2, found on the primary key (= ANY of an array, not IN, which
		// would scan the table to join the chunk): of the $3 entries after
		// $2, those before the first journaled at or after $1. It reads
		// no more than the chunk, where filtering the journal by at would
		// read all of it when little is old: at grows with pos, as the
		// head row hands positions out one transaction at a time and at
		// is read while it is held.
		trim: `WITH c AS (SELECT pos, bool_and(at < $1) OVER (ORDER BY pos) AS old
		FROM (SELECT pos, at FROM ` + journal + ` WHERE pos > $2 ORDER BY pos LIMIT $3) f),
	d AS (DELETE FROM ` + journal + ` WHERE pos = ANY(ARRAY(SELECT pos FROM c WHERE old)) RETURNING pos)
SELECT count(*), coalesce(max(pos), 0) FROM d`,
		// Delete's and Expire's, in the transaction that removes the
		// profiles, after it has locked their rows (see Journal in the
		// package documentation).
		unjournal:     `DELETE FROM ` + journal + ` WHERE id = $1`,
		unjournalMany: `DELETE FROM ` + journal + ` WHERE id = ANY($1::text[])`,
		document:      `SELECT data FROM ` + docs + ` WHERE name = $1`,
		// The document is announced in the statement that writes it,
		// so that the notification is sent when, and only if, the write
		// commits. A payload is a name of at most store.MaxLeaseName
		// bytes and a mark: far under NOTIFY's limit of 8000 bytes.
		putDocument: `WITH w AS (INSERT INTO ` + docs + ` AS d (name, data, updated) VALUES ($1::text, $2::bytea, now())
	ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data, updated = EXCLUDED.updated RETURNING 1)
SELECT pg_notify($3::text, $4::text) FROM w`,
		// Leases: a row per lease, taken when free, expired or the
		// caller's own, by the server's clock.
		createLeases: `CREATE TABLE IF NOT EXISTS ` + leases + ` (
	name   text COLLATE "C" PRIMARY KEY,
	holder text NOT NULL,
	until  timestamptz NOT NULL
)`,
		lease: `INSERT INTO ` + leases + ` AS l (name, holder, until) VALUES ($1::text, $2::text, now() + $3::bigint * interval '1 millisecond')
	ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until
	WHERE l.holder = EXCLUDED.holder OR l.until <= now()
	RETURNING holder`,
		release: `DELETE FROM ` + leases + ` WHERE name = $1 AND holder = $2`,
	}
}

// Table returns the name of the profiles table.
func (s *Store) Table() string { return s.table }

// Channel returns the LISTEN/NOTIFY channel of the store's invalidations.
func (s *Store) Channel() string { return s.channel }

// Limits returns the limits profiles are folded with.
func (s *Store) Limits() store.Limits { return s.lim }

// Migrate creates the profiles table and its indexes if they do not
// exist, adds the columns and tables that a table made by an earlier
// version lacks, and creates the tables of leases, counts, documents and
// the journal;
// see the package documentation for the schema. It is idempotent and safe
// to call from several processes at once: they take turns on an advisory
// lock.
func (s *Store) Migrate(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	err := s.migrating(ctx, func(tx pgx.Tx) error {
		var version int
		var lz4 bool
		err := tx.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, EXISTS (
	SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals))`).Scan(&version, &lz4)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, createTable(s.sql.createTable, version, lz4)); err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, s.sql.createIndex); err != nil {
			return err
		}
		return s.upgrade(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("tailor/store/postgres: migrate table %s: %w", s.table, err)
	}
	return nil
}

// migrating runs f in a transaction that holds the store's migration
// lock, so that concurrent migrations take turns: concurrent CREATE TABLE
// IF NOT EXISTS can fail with a unique violation in the catalog.
func (s *Store) migrating(ctx context.Context, f func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "tailor/store/postgres: migrate "+s.table); err != nil {
			return err
		}
		return f(tx)
	})
}

// upgrade brings an existing profiles table up to date: the columns of
// tombstones and aggregates, their indexes, and the tables beside it
// (leases, counts, documents, the journal and its head).
func (s *Store) upgrade(ctx context.Context, tx pgx.Tx) error {
	// The check spares the ALTER's exclusive lock when nothing is missing.
	var missing int
	if err := tx.QueryRow(ctx, s.sql.missingColumns, pgx.Identifier{s.table}.Sanitize()).Scan(&missing); err != nil {
		return err
	}
	if missing > 0 {
		// Nullable columns without a default: a change of the catalog
		// only, with no rewrite of the table. Their rows count for
		// nothing and are due for nothing until they are next written.
		if _, err := tx.Exec(ctx, s.sql.addColumns); err != nil {
			return err
		}
	}
	for _, stmt := range []string{s.sql.createErasedIndex, s.sql.createRecheckIndex, s.sql.createLeases, s.sql.createCounts, s.sql.createDocuments,
		s.sql.createJournal, s.sql.createJournalHead} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	// A journal made before it had the id column: added as the columns
	// of the profiles table are, and indexed.
	var idCol int
	if err := tx.QueryRow(ctx, s.sql.journalIDCol, pgx.Identifier{s.table + "_journal"}.Sanitize()).Scan(&idCol); err != nil {
		return err
	}
	if idCol == 0 {
		if _, err := tx.Exec(ctx, s.sql.addJournalID); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, s.sql.createJournalIDIndex)
	return err
}

// catchUp is Migrate for a store whose table was migrated by an earlier
// version, run when a statement finds a column or a table missing: it
// upgrades the profiles table if there is one. It does not create it
// (that is Migrate's), so that a store on a table that does not exist
// fails as before and leaves nothing behind.
func (s *Store) catchUp(ctx context.Context) error {
	err := s.migrating(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{s.table}.Sanitize()).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return nil
		}
		return s.upgrade(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("tailor/store/postgres: bring table %s up to date: %w", s.table, err)
	}
	return nil
}

// createTable completes the CREATE TABLE statement for a server of the
// given version (server_version_num) that has lz4 or not.
func createTable(stmt string, version int, lz4 bool) string {
	// lz4 compresses and decompresses profiles several times faster than
	// the default pglz (PostgreSQL 14 or later, built with lz4).
	compression := ""
	if lz4 && version >= 140000 {
		compression = " COMPRESSION lz4"
	}
	// A row is moved to the TOAST table only if it is still larger than
	// toast_tuple_target once compressed. The default, 2 kB, moves most
	// profiles out of line, which costs PostgreSQL about twice the CPU per
	// write; 8160 (the largest) keeps a profile whose compressed encoding
	// fits in a page inline (PostgreSQL 11 or later).
	with := ""
	if version >= 110000 {
		with = " WITH (toast_tuple_target = 8160)"
	}
	return fmt.Sprintf(stmt, compression, with)
}

// Load returns the stored profile, or an error wrapping store.ErrNotFound
// (store.ErrErased while the id's tombstone lives).
func (s *Store) Load(ctx context.Context, id string) (*store.Profile, error) {
	if err := store.Check(ctx, s.closed.Load(), id); err != nil {
		return nil, err
	}
	var (
		version int64
		data    []byte
		state   int32
	)
	err := s.again(ctx, func() error {
		return s.pool.QueryRow(ctx, s.sql.load, id).Scan(&version, &data, &state)
	})
	switch {
	case err == nil && state == stateErased:
		err = store.ErrErased
	case errors.Is(err, pgx.ErrNoRows), err == nil && state == stateExpired:
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("tailor/store/postgres: load %q from table %s: %w", id, s.table, err)
	}
	if err != nil {
		return nil, fmt.Errorf("tailor/store/postgres: load %q from table %s: %w", id, s.table, err)
	}
	p, err := decode(id, version, data)
	if err != nil {
		return nil, fmt.Errorf("tailor/store/postgres: load %q from table %s: %w", id, s.table, err)
	}
	return p, nil
}

// decode decodes a stored row; the columns win over what data says.
func decode(id string, version int64, data []byte) (*store.Profile, error) {
	p, err := store.Unmarshal(data)
	if err != nil {
		return nil, err
	}
	p.ID = id
	p.Version = uint64(version)
	return p, nil
}

// Apply folds events into the stored profile (a new one if there is none)
// and writes it back with a compare-and-swap on its version, retrying up to
// Options.MaxRetries times when another writer got there first; see the
// package documentation. Every successful Apply increments the version and
// announces the id on the store's channel.
func (s *Store) Apply(ctx context.Context, id string, events []store.Event) (*store.Profile, error) {
	if err := store.Check(ctx, s.closed.Load(), id); err != nil {
		return nil, err
	}
	ps, err := s.applyChunk(ctx, []store.Batch{{ID: id, Events: events}})
	if err != nil {
		return nil, err
	}
	if ps[0] == nil { // refused by a tombstone
		return nil, fmt.Errorf("tailor/store/postgres: apply to %q in table %s: %w", id, s.table, store.ErrErased)
	}
	return ps[0], nil
}

// ApplyBatch applies every batch, reading the profiles with one query and
// writing them in one transaction (per 500 profiles). Batches for the same
// id are applied in order, and each gets the profile as it was after its
// own events, as if applied one after the other. On error, the batches of
// earlier transactions are applied; retrying them all is safe. The profile
// of a batch whose id has a live tombstone is nil.
func (s *Store) ApplyBatch(ctx context.Context, batches []store.Batch) ([]*store.Profile, error) {
	if err := store.CheckBatch(ctx, s.closed.Load(), batches); err != nil {
		if errors.Is(err, store.ErrInvalidID) {
			err = fmt.Errorf("tailor/store/postgres: %w", err)
		}
		return nil, err
	}
	if len(batches) == 0 {
		return []*store.Profile{}, nil
	}
	// Give every distinct id a chunk, in order of first appearance; the
	// batches of one id go to its chunk, in their order.
	chunkOf := make([]int, len(batches))
	ids := make(map[string]int, len(batches))
	for i, b := range batches {
		c, ok := ids[b.ID]
		if !ok {
			c = len(ids) / chunk
			ids[b.ID] = c
		}
		chunkOf[i] = c
	}
	if len(ids) <= chunk {
		return s.applyChunk(ctx, batches)
	}
	out := make([]*store.Profile, len(batches))
	var (
		idx []int
		sub []store.Batch
	)
	for c := 0; c*chunk < len(ids); c++ {
		idx, sub = idx[:0], sub[:0]
		for i, b := range batches {
			if chunkOf[i] == c {
				idx = append(idx, i)
				sub = append(sub, b)
			}
		}
		ps, err := s.applyChunk(ctx, sub)
		if err != nil {
			return nil, err
		}
		for k, i := range idx {
			out[i] = ps[k]
		}
	}
	return out, nil
}

// group is the batches of one id within a chunk.
type group struct {
	id      string
	batches []int // indexes into the chunk, in order
}

// applyChunk applies batches in one read and one transaction, retrying the
// profiles whose compare-and-swap failed.
func (s *Store) applyChunk(ctx context.Context, batches []store.Batch) ([]*store.Profile, error) {
	byID := make(map[string]int, len(batches))
	var groups []group
	for i, b := range batches {
		g, ok := byID[b.ID]
		if !ok {
			g = len(groups)
			byID[b.ID] = g
			groups = append(groups, group{id: b.ID})
		}
		groups[g].batches = append(groups[g].batches, i)
	}
	// Write in id order, so that concurrent transactions lock rows in the
	// same order and cannot deadlock.
	slices.SortFunc(groups, func(a, b group) int { return strings.Compare(a.id, b.id) })
	out := make([]*store.Profile, len(batches))
	caughtUp := false
	for attempt := 0; ; attempt++ {
		// The first attempt is optimistic; retries lock the rows they read,
		// so that a profile many writers compete for cannot starve one.
		lost, err := s.applyOnce(ctx, batches, groups, out, attempt > 0)
		if err == nil && len(lost) == 0 {
			return out, nil
		}
		if isUndefined(err) && !caughtUp {
			// A table made by an earlier version, which nothing was
			// written to: bring it up to date and try again, once.
			caughtUp = true
			if err := s.catchUp(ctx); err != nil {
				return nil, s.applyError(groups, err)
			}
			attempt--
			continue
		}
		if err != nil && !retryable(err) {
			return nil, s.applyError(groups, err)
		}
		if attempt >= s.maxRetries {
			if err == nil {
				err = fmt.Errorf("%w (%d attempts)", store.ErrConflict, attempt+1)
				groups = lost
			}
			return nil, s.applyError(groups, err)
		}
		if err == nil {
			groups = lost // the others are written
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return nil, s.applyError(groups, err)
		}
	}
}

func (s *Store) applyError(groups []group, err error) error {
	switch len(groups) {
	case 1:
		return fmt.Errorf("tailor/store/postgres: apply to %q in table %s: %w", groups[0].id, s.table, err)
	default:
		return fmt.Errorf("tailor/store/postgres: apply to %d profiles (%q, ...) in table %s: %w", len(groups), groups[0].id, s.table, err)
	}
}

// applyOnce reads the profiles of groups, folds their batches in, and writes
// them in one transaction. It fills out for the groups written and returns
// the groups whose compare-and-swap failed.
//
// Without lock, the read is a plain SELECT, and the writes are one pipeline
// with one Sync: one implicit transaction. With lock, the read begins a
// transaction and locks the rows (in id order, like the writes), and the
// pipeline of writes commits it: the same two round trips, but no other
// writer can change the rows in between. Only an insert race or a deadlock
// with Expire can still make it fail.
func (s *Store) applyOnce(ctx context.Context, batches []store.Batch, groups []group, out []*store.Profile, lock bool) ([]group, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	// Release destroys a connection left in a transaction by an error, which
	// rolls the transaction back.
	defer conn.Release()

	stored, err := s.read(ctx, conn, groups, lock)
	if err != nil {
		if conn.Conn().IsClosed() && ctx.Err() == nil {
			// The connection broke before anything was written (a server
			// restart, a network failure, an idle connection that the
			// server or a firewall closed): try again on another.
			err = connLost{err}
		}
		return nil, err
	}

	writes := make([]write, len(groups))
	ready, wait := s.foldAll(batches, groups, stored, out, writes)
	lost, err := s.writeAll(ctx, conn.Conn(), groups, writes, ready, lock)
	wait()
	for i := range writes {
		if p, ok := writes[i].err.(panicked); ok {
			panic(p.value) // in the caller's goroutine, as without foldAll's
		}
	}
	return lost, err
}

// read reads the stored profiles of groups: with lock, it begins a
// transaction and locks their rows.
func (s *Store) read(ctx context.Context, conn *pgxpool.Conn, groups []group, lock bool) (map[string]row, error) {
	ids := make([]string, len(groups))
	for i, g := range groups {
		ids[i] = g.id
	}
	if !lock {
		return scanRows(conn.Query(ctx, s.sql.loadMany, ids))
	}
	var b pgx.Batch
	b.Queue("BEGIN")
	b.Queue(s.sql.lockMany, ids)
	br := conn.SendBatch(ctx, &b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, err
	}
	stored, err := scanRows(br.Query())
	if err != nil {
		br.Close()
		return nil, err
	}
	return stored, br.Close()
}

// connLost is the error of a read whose connection broke: nothing was
// written, and another connection may do better.
type connLost struct{ err error }

func (e connLost) Error() string { return e.err.Error() }
func (e connLost) Unwrap() error { return e.err }

// A write is a folded profile, ready to be written.
type write struct {
	erased       bool  // refused by a live tombstone: nothing to write
	exists       bool  // update version old, else insert
	old, version int64 // the versions before and after
	seen         int64 // last_seen in PostgreSQL's binary form
	recheck      int64 // the profile's Recheck in PostgreSQL's binary form, if hasRecheck
	hasRecheck   bool
	data         []byte
	keys         []byte        // the profile's count keys, a bytea[] in binary form; nil if unchanged
	delta        []store.Delta // the change of the counts, if the write succeeds
	// entries are the purchases the fold applied, as elements of a
	// bytea[] (appendEntries), and purchases their number: journaled if
	// the write succeeds.
	entries   []byte
	purchases int
	err       error
}

// minFold is the fewest profiles worth a goroutine of their own.
const minFold = 8

// foldAll folds the batches of each group into its stored profile (a new
// one if there is none), setting out and writes. Decoding, folding and
// encoding are most of ApplyBatch's work in this process, so large chunks
// are folded on all CPUs, in the background: writes[i] is set when
// ready[i] is closed (ready is nil when everything was folded before
// foldAll returned). wait waits for the folding goroutines.
func (s *Store) foldAll(batches []store.Batch, groups []group, stored map[string]row, out []*store.Profile, writes []write) (ready []chan struct{}, wait func()) {
	workers := min(runtime.GOMAXPROCS(0), len(groups)/minFold)
	if workers <= 1 {
		for i := range groups {
			writes[i] = s.fold(batches, &groups[i], stored, out)
		}
		return nil, func() {}
	}
	ready = make([]chan struct{}, len(groups))
	for i := range ready {
		ready[i] = make(chan struct{})
	}
	var (
		next atomic.Int64 // groups are taken in order, so that they are ready about in order
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(groups); i = int(next.Add(1) - 1) {
				writes[i] = s.foldRecover(batches, &groups[i], stored, out)
				close(ready[i])
			}
		})
	}
	return ready, wg.Wait
}

// panicked is the error of a fold that panicked on a folding goroutine.
type panicked struct{ value any }

func (p panicked) Error() string { return fmt.Sprintf("panic: %v", p.value) }

// foldRecover is fold, with a panic returned as a panicked error.
func (s *Store) foldRecover(batches []store.Batch, g *group, stored map[string]row, out []*store.Profile) (w write) {
	defer func() {
		if v := recover(); v != nil {
			w = write{err: panicked{v}}
		}
	}()
	return s.fold(batches, g, stored, out)
}

// fold folds the batches of g; it sets only g's entries of out, to nil if
// g's id has a live tombstone.
func (s *Store) fold(batches []store.Batch, g *group, stored map[string]row, out []*store.Profile) write {
	r, exists := stored[g.id]
	var p *store.Profile
	switch {
	case exists && r.state == stateErased:
		for _, i := range g.batches {
			out[i] = nil
		}
		return write{erased: true}
	case exists && r.state == stateExpired:
		// A fresh profile, written over the tombstone with a
		// compare-and-swap on its version.
		p = store.New(g.id)
		p.Version = uint64(r.version)
	case exists:
		var err error
		if p, err = decode(g.id, r.version, r.data); err != nil {
			return write{err: err}
		}
	default:
		p = store.New(g.id)
	}
	w := write{exists: exists, old: int64(p.Version)}
	// The counts change by the difference between the keys of the
	// version read, which the compare-and-swap makes the version
	// replaced, and those of the profile written (store.CountDelta; p is
	// folded in place, so its keys are taken first).
	var was, now [16]string
	wasKeys := was[:0]
	if p.Counted {
		wasKeys = store.CountKeys(wasKeys, p)
	}
	p.Counted = true
	p = fold.Batches(s.lim, p, batches, g.batches, out)
	nowKeys := store.CountKeys(now[:0], p)
	if w.delta = store.KeyDelta(wasKeys, nowKeys); len(w.delta) > 0 {
		// Otherwise the stored keys are those of the profile already
		// (or NULL, for none): they are kept.
		w.keys = appendByteaArray(nil, nowKeys)
	}
	// The purchases of this fold only: a fold that lost its
	// compare-and-swap is thrown away with its purchases, and its retry
	// folds, and journals, its own.
	w.entries, w.purchases = appendEntries(nil, p.TakePurchases())
	w.version = int64(p.Version)
	w.seen = micros(p.LastSeen)
	if !p.Recheck.IsZero() {
		w.recheck, w.hasRecheck = ceilMicros(p.Recheck), true
	}
	w.data, w.err = store.Marshal(p)
	return w
}

type row struct {
	version int64
	data    []byte
	state   int32 // stateProfile, stateExpired or stateErased
}

// scanRows collects the rows of loadMany and lockMany by id.
func scanRows(rows pgx.Rows, err error) (map[string]row, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := make(map[string]row)
	for rows.Next() {
		var (
			id string
			r  row
		)
		if err := rows.Scan(&id, &r.version, &r.data, &r.state); err != nil {
			return nil, err
		}
		m[id] = r
	}
	return m, rows.Err()
}

// retryable reports whether an attempt that failed with err may simply be
// made again: its transaction was rolled back or never started.
func retryable(err error) bool {
	if pgconn.SafeToRetry(err) || errors.As(err, new(connLost)) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", // serialization_failure
			"40P01": // deadlock_detected
			return true
		}
	}
	return false
}

// backoff returns the pause before retry attempt+1: exponential from 1ms,
// capped at 100ms, with full jitter in its upper half.
func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond
	if attempt < 7 {
		d = time.Millisecond << attempt
	}
	return d/2 + jitter(d/2)
}

// jitter returns a random duration in [0, d].
func jitter(d time.Duration) time.Duration { return rand.N(d + 1) }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PostgreSQL's timestamptz range, with a margin: 4713 BC to 294276 AD.
var (
	minTime = time.Date(-4712, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(294275, 1, 1, 0, 0, 0, 0, time.UTC)
)

// timestamp converts t for a timestamptz column, mapping times out of
// PostgreSQL's range to -infinity and infinity.
func timestamp(t time.Time) pgtype.Timestamptz {
	switch {
	case t.Before(minTime):
		return pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	case t.After(maxTime):
		return pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

// y2k is PostgreSQL's epoch, 2000-01-01 UTC, in Unix microseconds.
const y2k = 946684800_000_000

// micros returns t in PostgreSQL's binary form of timestamptz: microseconds
// since 2000-01-01 UTC, rounded down, with infinities as for timestamp.
func micros(t time.Time) int64 {
	switch ts := timestamp(t); ts.InfinityModifier {
	case pgtype.Infinity:
		return math.MaxInt64
	case pgtype.NegativeInfinity:
		return math.MinInt64
	}
	return t.Unix()*1_000_000 + int64(t.Nanosecond())/1000 - y2k
}

// ceilMicros is micros rounded up, for Recheck: stored no earlier than
// it is, a profile is never due before its time.
func ceilMicros(t time.Time) int64 {
	m := micros(t)
	if t.Nanosecond()%1000 != 0 && m != math.MaxInt64 && m != math.MinInt64 {
		m++
	}
	return m
}

// Delete replaces the profile with a tombstone (or leaves one, or renews
// it), subtracts what the profile counted for, deletes its purchases from
// the journal, and announces the id on the store's channel, whether or not
// it was stored.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := store.Check(ctx, s.closed.Load(), id); err != nil {
		return err
	}
	payload := store.Change{ID: id, Deleted: true}.String()
	caughtUp := false
	for attempt := 0; ; attempt++ {
		done, err := s.deleteOnce(ctx, id, payload)
		switch {
		case err == nil && done:
			return nil
		case err == nil:
			// A profile was inserted since the read found no row: the
			// next attempt locks it.
			if attempt < s.maxRetries {
				continue
			}
			err = fmt.Errorf("%w (%d attempts)", store.ErrConflict, attempt+1)
		case isUndefined(err) && !caughtUp:
			caughtUp = true
			if err = s.catchUp(ctx); err == nil {
				attempt--
				continue
			}
		case (retryable(err) || broken(err)) && attempt < s.maxRetries && ctx.Err() == nil:
			// Delete is idempotent: if the first attempt committed, the
			// next finds a tombstone, which counts for nothing.
			if err = sleep(ctx, backoff(attempt)); err == nil {
				continue
			}
		}
		return fmt.Errorf("tailor/store/postgres: delete %q from table %s: %w", id, s.table, err)
	}
}

// deleteOnce makes id's row a tombstone in one transaction: it locks the
// row and reads its count keys (NULL for a tombstone or a profile written
// before aggregates), then writes the tombstone, subtracts the keys and
// deletes the profile's purchases from the journal.
// Without a row, it inserts a tombstone, unless a profile was inserted
// since the read: then it returns false, having changed nothing.
func (s *Store) deleteOnce(ctx context.Context, id, payload string) (bool, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	// Release destroys a connection left in a transaction by an error, which
	// rolls the transaction back.
	defer conn.Release()

	var b pgx.Batch
	b.Queue("BEGIN")
	b.Queue(s.sql.lockOne, id)
	br := conn.SendBatch(ctx, &b)
	var keys [][]byte
	found := true
	_, err = br.Exec()
	if err == nil {
		if err = br.QueryRow().Scan(&keys); errors.Is(err, pgx.ErrNoRows) {
			found, err = false, nil
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}

	b = pgx.Batch{}
	ttl := s.tombTTL.Microseconds()
	if found {
		b.Queue(s.sql.tombstone, id, s.channel, payload, ttl)
	} else {
		b.Queue(s.sql.newTomb, id, s.channel, payload, ttl)
	}
	if len(keys) > 0 {
		slices.SortFunc(keys, bytes.Compare) // the lock order of addCounts
		ns := make([]int64, len(keys))
		for i := range ns {
			ns[i] = -1
		}
		b.Queue(s.sql.addCounts, keys, ns, shard())
	}
	// A statement after the lock, so with a snapshot taken after the
	// writes that held the row committed: their purchases are seen.
	b.Queue(s.sql.unjournal, id)
	b.Queue("COMMIT")
	br = conn.SendBatch(ctx, &b)
	defer br.Close()
	tag, err := br.Exec()
	if err != nil {
		return false, err
	}
	if len(keys) > 0 {
		if _, err := br.Exec(); err != nil {
			return false, err
		}
	}
	if _, err := br.Exec(); err != nil {
		return false, err
	}
	commit, err := br.Exec()
	if err == nil && commit.String() != "COMMIT" {
		err = fmt.Errorf("transaction ended with %s", commit)
	}
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, br.Close()
}

// again runs f, which must be safe to run twice (a read, or an idempotent
// write), and runs it again, up to MaxRetries times with backoff, while it
// fails because its connection broke.
func (s *Store) again(ctx context.Context, f func() error) error {
	for attempt := 0; ; attempt++ {
		err := f()
		if err == nil || attempt >= s.maxRetries || ctx.Err() != nil || !broken(err) {
			return err
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return err
		}
	}
}

// broken reports whether err says that the connection broke: nothing was
// sent, or the server ended the session (FATAL: a restart, an administrator,
// an idle timeout), or the network dropped it.
func broken(err error) bool {
	if pgconn.SafeToRetry(err) || errors.As(err, new(connLost)) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Severity == "FATAL" || strings.HasPrefix(pgErr.Code, "08"))
}

// Range calls fn with every stored profile in the order of their ids (byte
// order), until fn returns false. It reads 500 profiles at a time, holding
// no connection while fn runs, so fn may use the store. A profile stored
// for the whole of the call is visited exactly once; one written or deleted
// meanwhile may or may not be visited, and is visited as it was when its
// page was read.
func (s *Store) Range(ctx context.Context, fn func(*store.Profile) bool) error {
	type raw struct {
		id      string
		version int64
		data    []byte
	}
	page := make([]raw, 0, chunk)
	after := ""
	for {
		if s.closed.Load() {
			return store.ErrClosed
		}
		err := s.again(ctx, func() error {
			page = page[:0]
			rows, err := s.pool.Query(ctx, s.sql.page, after, chunk)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var r raw
				if err := rows.Scan(&r.id, &r.version, &r.data); err != nil {
					return err
				}
				page = append(page, r)
			}
			return rows.Err()
		})
		if err != nil {
			return fmt.Errorf("tailor/store/postgres: range over table %s after %q: %w", s.table, after, err)
		}
		for i := range page {
			if err := ctx.Err(); err != nil {
				return err
			}
			p, err := decode(page[i].id, page[i].version, page[i].data)
			if err != nil {
				return fmt.Errorf("tailor/store/postgres: range over table %s: profile %q: %w", s.table, page[i].id, err)
			}
			page[i].data = nil
			if !fn(p) {
				return nil
			}
		}
		if len(page) < chunk {
			return nil
		}
		after = page[len(page)-1].id
	}
}

// Expire deletes the profiles last seen before before, 500 per statement,
// subtracts what they counted for in the same statement, announces their
// ids on the store's channel, and returns how many it deleted. It never
// deletes a profile last seen at or after before; one last seen less than
// a microsecond before it may be kept (last_seen is stored to the
// microsecond). On error, the count is of the profiles already deleted.
// It first deletes the tombstones whose TTL has passed, which it does not
// count.
func (s *Store) Expire(ctx context.Context, before time.Time) (int, error) {
	if s.closed.Load() {
		return 0, store.ErrClosed
	}
	err := s.again(ctx, func() error {
		_, err := s.pool.Exec(ctx, s.sql.sweep)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("tailor/store/postgres: delete expired tombstones of table %s: %w", s.table, err)
	}
	total := 0
	limit := timestamp(before)
	caughtUp := false
	for attempt := 0; ; {
		if s.closed.Load() {
			return total, store.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := s.expireOnce(ctx, limit)
		if err != nil {
			if isUndefined(err) && !caughtUp {
				caughtUp = true
				if err = s.catchUp(ctx); err == nil {
					continue
				}
			}
			if retryable(err) && attempt < s.maxRetries {
				if err := sleep(ctx, backoff(attempt)); err != nil {
					return total, err
				}
				attempt++
				continue
			}
			return total, fmt.Errorf("tailor/store/postgres: expire profiles of table %s last seen before %v (%d deleted): %w", s.table, before, total, err)
		}
		total += n
		if n < chunk {
			return total, nil
		}
	}
}

// expireOnce deletes up to chunk profiles last seen before limit, and
// their purchases from the journal, in one transaction of two round
// trips: the expire statement, which locks and deletes the rows and
// returns their ids, then the deletion of their purchases. It is a
// statement of its own so that its snapshot, taken once the rows are
// deleted, holds the purchases of every write that committed while
// expire waited for a row's lock; and a write that comes after cannot
// commit before this transaction does, as it waits for the deleted
// rows.
func (s *Store) expireOnce(ctx context.Context, limit pgtype.Timestamptz) (int, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	// Release destroys a connection left in a transaction by an error, which
	// rolls the transaction back.
	defer conn.Release()
	var b pgx.Batch
	b.Queue("BEGIN")
	b.Queue(s.sql.expire, limit, s.channel, chunk, shard())
	br := conn.SendBatch(ctx, &b)
	var ids []string
	_, err = br.Exec()
	if err == nil {
		var rows pgx.Rows
		rows, err = br.Query()
		if err == nil {
			ids, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
				var id string
				return id, r.Scan(&id, nil)
			})
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	b = pgx.Batch{}
	if len(ids) > 0 {
		b.Queue(s.sql.unjournalMany, ids)
	}
	b.Queue("COMMIT")
	br = conn.SendBatch(ctx, &b)
	defer br.Close()
	if len(ids) > 0 {
		if _, err := br.Exec(); err != nil {
			return 0, err
		}
	}
	commit, err := br.Exec()
	if err == nil && commit.String() != "COMMIT" {
		err = fmt.Errorf("transaction ended with %s", commit)
	}
	if err != nil {
		return 0, err
	}
	return len(ids), br.Close()
}

// Close makes every later call return store.ErrClosed and ends the store's
// subscriptions, waiting until they have returned their connections to the
// pool. It does not close the pool, which is the caller's. Calls in flight
// run to their end.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed.Store(true)
	s.mu.Unlock()
	s.cancel()
	s.subs.Wait()
	return nil
}

// Lease implements store.Leaser with a row of the table Table+"_leases",
// which Migrate creates (and Lease too, the first time, for a database
// migrated before leases).
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if err := store.CheckLease(ctx, s.closed.Load(), name, holder); err != nil {
		return false, err
	}
	if err := store.CheckLeaseTTL(ttl); err != nil {
		return false, err
	}
	var got string
	err := s.pool.QueryRow(ctx, s.sql.lease, name, holder, ttl.Milliseconds()).Scan(&got)
	if isUndefinedTable(err) {
		if err = s.create(ctx, s.sql.createLeases); err == nil {
			err = s.pool.QueryRow(ctx, s.sql.lease, name, holder, ttl.Milliseconds()).Scan(&got)
		}
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil // another holder's lease lives
	case err != nil:
		return false, fmt.Errorf("tailor/store/postgres: lease %q: %w", name, err)
	}
	return true, nil
}

// Release implements store.Leaser.
func (s *Store) Release(ctx context.Context, name, holder string) error {
	if err := store.CheckLease(ctx, s.closed.Load(), name, holder); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, s.sql.release, name, holder); err != nil && !isUndefinedTable(err) {
		return fmt.Errorf("tailor/store/postgres: release lease %q: %w", name, err)
	}
	return nil
}

// Counts implements store.Counter: one read of the counts table (a row
// per count key and shard), whatever the number of profiles.
func (s *Store) Counts(ctx context.Context) (map[string]int64, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	out := make(map[string]int64)
	err := s.again(ctx, func() error {
		clear(out)
		rows, err := s.pool.Query(ctx, s.sql.counts)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				key []byte
				n   int64
			)
			if err := rows.Scan(&key, &n); err != nil {
				return err
			}
			out[string(key)] = n
		}
		return rows.Err()
	})
	switch {
	case isUndefinedTable(err):
		// Migrated before aggregates, and never written since: nothing
		// counts yet (see store.Profile.Counted).
		return out, nil
	case err != nil:
		return nil, fmt.Errorf("tailor/store/postgres: counts of table %s: %w", s.table, err)
	}
	return out, nil
}

// Due implements store.Rechecker with the partial index on (recheck, id).
// recheck is stored to the microsecond, rounded up, so a profile is never
// due before its Recheck, and at most a microsecond after it.
func (s *Store) Due(ctx context.Context, t time.Time, max int) ([]string, error) {
	if err := store.CheckScan(ctx, s.closed.Load(), max); err != nil {
		return nil, err
	}
	var ids []string
	err := s.again(ctx, func() error {
		rows, err := s.pool.Query(ctx, s.sql.due, timestamp(t), max)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42703":
		// No recheck column: migrated before aggregates, and never
		// written since, so nothing is indexed.
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("tailor/store/postgres: profiles of table %s due at %v: %w", s.table, t, err)
	}
	return ids, nil
}

// Scan implements store.Scanner: pages in the order of the ids (as Range
// reads them), the cursor being the last id of a full page. The page after
// a last page that was full is empty.
func (s *Store) Scan(ctx context.Context, cursor string, max int) ([]*store.Profile, string, error) {
	if err := store.CheckScan(ctx, s.closed.Load(), max); err != nil {
		return nil, "", err
	}
	var out []*store.Profile
	err := s.again(ctx, func() error {
		out = out[:0]
		rows, err := s.pool.Query(ctx, s.sql.page, cursor, max)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id      string
				version int64
				data    []byte
			)
			if err := rows.Scan(&id, &version, &data); err != nil {
				return err
			}
			p, err := decode(id, version, data)
			if err != nil {
				return fmt.Errorf("profile %q: %w", id, err)
			}
			out = append(out, p)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, "", fmt.Errorf("tailor/store/postgres: scan table %s after %q: %w", s.table, cursor, err)
	}
	next := ""
	if len(out) == max {
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// Document implements store.Documents with a row of the table
// Table+"_documents".
func (s *Store) Document(ctx context.Context, name string) ([]byte, error) {
	if err := store.CheckDocument(ctx, s.closed.Load(), name, 0); err != nil {
		return nil, err
	}
	var data []byte
	err := s.again(ctx, func() error {
		return s.pool.QueryRow(ctx, s.sql.document, name).Scan(&data)
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows), isUndefinedTable(err):
		// No documents table: none was ever put.
		return nil, fmt.Errorf("tailor/store/postgres: document %q of table %s: %w", name, s.table, store.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("tailor/store/postgres: document %q of table %s: %w", name, s.table, err)
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

// PutDocument implements store.Documents. It creates the documents table
// if it does not exist, as Lease does the leases table. The document is
// announced on the store's channel (see store.Change) by pg_notify in the
// same transaction, so subscribers hear of it when it commits.
func (s *Store) PutDocument(ctx context.Context, name string, data []byte) error {
	if err := store.CheckDocument(ctx, s.closed.Load(), name, len(data)); err != nil {
		return err
	}
	if data == nil {
		data = []byte{} // an empty document, not NULL
	}
	msg := store.Change{Document: name}.String()
	put := func() error {
		return s.again(ctx, func() error {
			_, err := s.pool.Exec(ctx, s.sql.putDocument, name, data, s.channel, msg)
			return err
		})
	}
	err := put()
	if isUndefinedTable(err) {
		if err = s.create(ctx, s.sql.createDocuments); err == nil {
			err = put()
		}
	}
	if err != nil {
		return fmt.Errorf("tailor/store/postgres: put document %q of %d bytes in table %s: %w", name, len(data), s.table, err)
	}
	return nil
}

// create runs stmt, which creates a table beside the profiles table (of
// leases or documents, which do not need it), taking turns with Migrate
// and other processes on the same advisory lock.
func (s *Store) create(ctx context.Context, stmt string) error {
	return s.migrating(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, stmt)
		return err
	})
}

// isUndefinedTable reports whether err says a table does not exist.
func isUndefinedTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}

// isUndefined reports whether err says a table or a column does not
// exist: the table was made by an earlier version (see catchUp).
func isUndefined(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "42703")
}
