// Package postgres is a store.Store on PostgreSQL, for sites that run on
// several machines. It uses a *pgxpool.Pool (github.com/jackc/pgx/v5) that
// the caller creates, configures and closes.
//
//	pool, err := pgxpool.New(ctx, "postgres://tailor@db/tailor")
//	...
//	s, err := postgres.New(pool, postgres.Options{})
//	...
//	if err := s.Migrate(ctx); err != nil { ... } // once, at start-up
//	defer s.Close() // before pool.Close()
//
// # Schema
//
// [Store.Migrate] creates the tables and indexes if they do not exist (it
// is safe to call from several processes at once). With the default table
// name, on PostgreSQL 14 or later built with lz4, it runs:
//
//	CREATE TABLE IF NOT EXISTS "tailor_profiles" (
//		id           text COLLATE "C" PRIMARY KEY, -- the profile id
//		version      bigint      NOT NULL,         -- store.Profile.Version, for compare-and-swap
//		last_seen    timestamptz NOT NULL,         -- store.Profile.LastSeen, for retention
//		data         bytea COMPRESSION lz4 NOT NULL, -- the profile, encoded by store.Marshal
//		erased_until timestamptz,                  -- set on a tombstone: see Tombstones
//		recheck      timestamptz,                  -- store.Profile.Recheck: see Rechecks
//		count_keys   bytea[]                       -- store.CountKeys of the profile: see Aggregates
//	) WITH (toast_tuple_target = 8160);
//	CREATE INDEX IF NOT EXISTS "tailor_profiles_last_seen_idx" ON "tailor_profiles" (last_seen);
//	CREATE INDEX IF NOT EXISTS "tailor_profiles_erased_idx" ON "tailor_profiles" (erased_until)
//		WHERE erased_until IS NOT NULL;
//	CREATE INDEX IF NOT EXISTS "tailor_profiles_recheck_idx" ON "tailor_profiles" (recheck, id)
//		WHERE recheck IS NOT NULL;
//	CREATE TABLE IF NOT EXISTS "tailor_profiles_leases" (
//		name text COLLATE "C" PRIMARY KEY, holder text NOT NULL, until timestamptz NOT NULL);
//	CREATE TABLE IF NOT EXISTS "tailor_profiles_counts" (
//		key bytea NOT NULL, shard smallint NOT NULL, n bigint NOT NULL, PRIMARY KEY (key, shard));
//	CREATE TABLE IF NOT EXISTS "tailor_profiles_documents" (
//		name text COLLATE "C" PRIMARY KEY, data bytea NOT NULL, updated timestamptz NOT NULL);
//	CREATE TABLE IF NOT EXISTS "tailor_profiles_journal" (
//		pos bigint PRIMARY KEY, at timestamptz NOT NULL, data bytea NOT NULL, id text COLLATE "C");
//	CREATE INDEX IF NOT EXISTS "tailor_profiles_journal_id_idx" ON "tailor_profiles_journal" (id);
//	CREATE TABLE IF NOT EXISTS "tailor_profiles_journal_head" (
//		one bool PRIMARY KEY DEFAULT true CHECK (one), pos bigint NOT NULL);
//
// On a table made by an earlier version, without erased_until, recheck or
// count_keys, Migrate adds the columns (a change of the catalog only, with
// no rewrite of the table) and their indexes; likewise the id column of a
// journal made without it, and its index. A store on such a table
// works without Migrate too: the first write, Delete or Expire that finds
// a column or a table missing adds them (taking turns with Migrate on its
// lock) and tries again; it never creates the profiles table itself, which
// is Migrate's. Lease and PutDocument likewise create their tables; until
// then, Counts, Due, Document and Purchases read nothing.
//
// Without lz4 the column keeps the server's default compression. lz4
// compresses several times faster than pglz, and toast_tuple_target keeps
// a profile whose compressed encoding fits in a page inside the table row
// instead of moving it to the TOAST table; together they halve the
// server's work per write. Sites that manage their schema with a migration
// tool may run these statements themselves instead of calling Migrate; the
// store needs the columns, the primary keys, the tables beside the
// profiles table, and (for Expire and Due to be fast) the indexes.
//
// The profile is kept as the bytes of store.Marshal in a bytea column, not
// as jsonb. They come back exactly as they were written, they cost the
// server no parsing on write (every Apply rewrites the whole profile), and
// they are what the other stores keep. jsonb cannot hold store.Marshal's
// binary encoding, and even a JSON form of the profile would not survive
// it: jsonb rejects the NUL character (\u0000), which visitors can put in
// any string, and reorders the raw JSON of traits and event properties.
// Programs that read profiles from SQL decode data with store.Unmarshal;
// version and last_seen are plain columns.
//
// last_seen is kept to the microsecond, PostgreSQL's precision. A time
// after PostgreSQL's range (294276 AD, which only a broken or hostile clock
// produces) is stored as infinity, and such a profile never expires.
//
// # Writes
//
// Apply and ApplyBatch read the stored profiles, fold the events in with
// store.Profile.Apply, and write each profile back with a compare-and-swap
// on the version column:
//
//	UPDATE ... SET version = $new, ... WHERE id = $1 AND version = $old
//
// (or INSERT ... ON CONFLICT DO NOTHING for a new profile). A profile whose
// write changed no row was written by someone else in between: it is read
// and folded again after a short jittered pause, this time locking its row
// (SELECT ... FOR UPDATE) so that a profile that many writers compete for
// cannot starve one of them. After Options.MaxRetries retries the call
// fails with store.ErrConflict. No update is ever lost, between goroutines
// or between processes.
//
// ApplyBatch reads all profiles of a batch with one query, folds them on
// all CPUs, and writes them with one pipeline in one transaction, sending
// the first writes while later profiles are still being folded. The rows
// are written (and locked) in the order of their ids, so concurrent
// batches cannot deadlock; only the profiles whose compare-and-swap failed
// are retried. Batches of more than 500 profiles are split into
// transactions of 500.
//
// A write also sets recheck and, when the profile's count keys changed,
// count_keys and the counts (see Aggregates), and journals the purchases
// its fold applied (see Journal), in the same statement or transaction as
// the profile.
//
// A read that fails because its connection broke (a server restart, an idle
// connection that the server or a firewall closed) wrote nothing, and is
// retried on another connection; so are Load, Range, Delete and the LISTEN
// of Subscribe. A write whose outcome is unknown returns its error: calling
// Apply again with the same events is safe, as it is exactly-once.
//
// # Tombstones
//
// Delete does not delete the row: it turns it (or a new row, if there was
// no profile) into a tombstone, with empty data, erased_until set to the
// server's now() plus Options.TombstoneTTL, a new version, and no recheck
// or count keys; it first locks the row (SELECT ... FOR UPDATE) to read
// the keys it subtracts from the counts, in the same transaction. Writers that
// read the profile before then lose their compare-and-swap, and an insert
// of a new profile conflicts with the tombstone's row, so an Apply racing
// a Delete lands before it or is refused with store.ErrErased once it
// reads the tombstone. A second Delete renews it. Load, Range and Expire
// skip tombstones. Once erased_until has passed, the next Apply of the id
// writes a fresh profile over the tombstone (its version goes on from the
// tombstone's, so it never goes back), and Expire deletes the tombstones
// that remain. Times are the server's, so the clocks of the processes do
// not matter.
//
// # Aggregates
//
// The store implements store.Counter. The count of a count key (see
// store.CountKeys) is the sum of its rows in the table Table+"_counts", a
// row per key and shard; Counts reads them with one small query, whatever
// the number of profiles. A count changes in the transaction that changes
// a profile, by the difference that change makes:
//
//   - A write adds store.CountDelta of the version it read and the profile
//     it writes. The compare-and-swap on the version makes the version
//     read the version replaced: a write whose compare-and-swap fails
//     adds nothing, and is folded again from a fresh read.
//   - A row keeps the keys of its profile in count_keys, changed with the
//     counts (NULL for a tombstone, or for a profile written before
//     aggregates, which counts for nothing). Delete subtracts the keys of
//     the row it locks and turns into a tombstone; Expire's DELETE returns
//     the keys of the rows it deletes and subtracts them in the same
//     statement.
//
// The counts thus always equal what the rows count for, which an operator
// can check them against:
//
//	SELECT k, count(*) FROM "tailor_profiles", unnest(count_keys) AS k GROUP BY k
//
// The transaction of an Apply (or of up to 500 profiles of an ApplyBatch)
// writes its profiles first; if any write changes a count, it then reads
// their results (which of them were written) before it ends, and adds the
// sum of the deltas of the profiles written with one statement. That costs a round trip, but only to writes
// that change a count (a new profile, a change of segments or of an
// experiment's exposures or conversions); most writes change none. Every
// transaction (writes, Delete, Expire) adds to one shard, chosen at
// random, after it has written its profile rows, and locks that shard's
// rows in the order of their keys: writers that change the same counts
// (every new profile changes store.CountProfiles) mostly touch different
// rows, and none deadlocks on them. Keys are bytea, as visitors may put
// any byte in the names a key is made of.
//
// # Rechecks, scans and documents
//
// The store implements store.Rechecker with the recheck column, written
// with the profile: Due reads the partial index on (recheck, id), earliest
// first. recheck is kept to the microsecond, rounded up, so that a profile
// is never due before its Recheck. It implements store.Scanner with pages
// in the order of the ids, as Range reads them, the cursor being the last
// id of a page; and store.Documents with a row per document in the table
// Table+"_documents".
//
// # Journal
//
// The store implements store.Journal with the table Table+"_journal", a
// row per purchase: its position, when it was journaled (at, the server's
// clock), the purchase in a compact binary form (the profile id, the
// time, the ids and categories of the items and the prior ids, each id as
// the length of the prefix it shares with the one before and the rest),
// and the profile's id again, in a column of its own that is indexed.
// The transaction of a write journals the purchases that its folds applied
// with one statement, after its profiles and counts, for the profiles
// whose compare-and-swap succeeded only, as it adds their count deltas: a
// fold that lost is thrown away with its purchases, and its retry journals
// those of its own fold. A purchase is thus journaled exactly when its
// profile is written.
//
// Positions are handed out by the one row of Table+"_journal_head", the
// last position taken, which the journaling statement advances by the
// number of its purchases (INSERT ... ON CONFLICT DO UPDATE SET pos = pos
// + n RETURNING pos). The row stays locked until the transaction ends, so
// the transactions that journal take their positions one after the other,
// each once the one before has committed, or rolled back and given its
// positions back. Committed positions are therefore gapless, and the
// entries at a position become visible after those of every lower one: a
// reader that sees a position sees all the positions before it. Purchases
// reads the entries after the cursor's position in order, on the primary
// key, and returns the last position read as the cursor. An entry
// committed after that read has a higher position than any it returned,
// so a later call reads it: no purchase is skipped, and none is read twice,
// however the writers' commits interleave. A reader that polls with
// nothing new costs one statement per poll, which finds no row in the
// primary key.
//
// Ordering entries by transaction id, assigned before commit, would need
// a reader to stop below the oldest transaction still running in the whole
// cluster, of any database, journaling or not; one left idle in a
// transaction would hide every later purchase. The head row costs instead
// that the transactions that journal commit one at a time: each holds it
// from its last statement through its commit (a WAL flush, and a
// synchronous standby's reply if there is one), with its profiles' rows.
// An ApplyBatch takes it once for up to 500 profiles, and a write that
// applies no purchase (a page view) never takes it.
//
// TrimPurchases deletes the entries journaled before a time, 5000 per
// statement, in the order of their positions, up to the first entry
// journaled at or after it: at grows with the position, as it is read
// while the head row is held, so a statement reads no more entries than
// it deletes, plus one. The head row stays, so positions are never reused
// and a cursor from before a trim resumes at the oldest entry kept;
// deleting the head row would start positions again at 1, and cursors
// would skip what follows.
//
// Delete and Expire delete the purchases of the profiles they remove, on
// the index of the id column, in the transaction that removes them, with
// a statement of its own that runs once the profiles' rows are locked
// and deleted: its snapshot holds the purchases of every write that held
// a row before, and a write that comes after cannot commit before the
// removal does. Delete adds a statement to its transaction; Expire adds a
// round trip per 500 profiles. The rows journaled by a version of tailor
// from before the id column have none, and go only when trimmed.
//
// # Invalidations
//
// Every write and delete also calls pg_notify(channel, id) in the same
// transaction, so a notification is sent exactly when the change commits;
// a Delete's payload is the id after a byte 0x01 (see store.Change.String),
// and is sent even if there was no row. PutDocument likewise notifies the
// document's name after a byte 0x02, in the statement that writes it.
// [Store.Subscribe] LISTENs on the channel (see Options.Channel) on a
// connection of its own and reports the ids to its callback; see its
// documentation for what happens when that connection drops.
//
// # The pool is the caller's
//
// The Store never closes the pool. [Store.Close] stops the store's
// subscriptions, returns their connections to the pool and makes later
// calls fail with store.ErrClosed; close the pool after it. Any pool
// configuration works; the store holds a connection only for the duration
// of one call, except that each subscription keeps one connection for as
// long as it runs, so a pool needs MaxConns greater than the number of
// subscriptions.
package postgres
