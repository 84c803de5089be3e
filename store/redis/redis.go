// Package redis is a store.Store in Redis, for sites that run on several
// machines. It works with a single server, Sentinel and Redis Cluster,
// through any go-redis UniversalClient.
//
// # Layout
//
// Every profile belongs to one of 1024 buckets, chosen by a hash of its id.
// With the default prefix "tailor:" and bucket 0x2af, the keys are
//
//	tailor:{2af}:p:<id>   the profile encoded with store.Marshal
//	tailor:{2af}:v:<id>   its version, in decimal
//	tailor:{2af}:seen     a sorted set of the bucket's ids, scored by each
//	                      profile's LastSeen in Unix microseconds
//	tailor:{2af}:w:<tok>  a new encoding on its way in (see Writes), for
//	                      at most a minute
//	tailor:{2af}:t:<id>   the tombstone of an erased profile (see
//	                      Tombstones), for Options.TombstoneTTL
//	tailor:{2af}:k:<id>   a set of the count keys (store.CountKeys) the
//	                      stored profile counts for, if it is Counted
//	tailor:{2af}:counts   a hash of count key to the number of the
//	                      bucket's profiles counted for it (see Aggregates)
//	tailor:{2af}:due      a sorted set of the ids of the bucket's profiles
//	                      with a Recheck, scored by it in Unix microseconds
//	tailor:{2af}:scan     a copy of seen with every score 0, ordered by id,
//	                      that Scan reads a bucket from; it expires ten
//	                      minutes after its last use
//	tailor:{2af}:journal  a stream of the purchases applied to the bucket's
//	                      profiles (see Journal), an entry each
//	tailor:{2af}:j:<id>   the journal index of a profile that bought: a
//	                      list of the ids of its entries in the journal,
//	                      oldest first
//	tailor:{2af}:jd:<tok> the index of an erased profile being drained
//	                      (see Journal), for at most an hour
//	tailor:doc:<name>     a document (store.Documents)
//	tailor:journal        the journal's tick: a counter incremented after
//	                      every write that journals a purchase
//	tailor:{due}:hints    a sorted set of buckets (in hex, as in their
//	                      tag), each scored by a lower bound of the
//	                      earliest score in its due set (see Aggregates)
//	tailor:{due}:gens     a hash of bucket to the number of hint updates
//	                      writers made to it
//
// The {2af} hash tag puts a profile and its bucket's indexes, counts and
// journal in the same Cluster slot, so a Lua script updates them all
// atomically: the indexes never disagree with the profiles, which is what
// lets Expire and Range walk the indexes instead of scanning the keyspace,
// the counts never disagree with them either, and the journal holds the
// purchases of exactly the writes made, less those of the profiles
// deleted. With 1024 buckets the profiles spread over up to 1024 slots.
// The bucket count is part of the layout and never changes. The {due} tag
// puts the two keys of the due hints in one slot of their own.
//
// The store sets no expiry on profiles. Run the server with a
// maxmemory-policy that does not evict them (noeviction, or a volatile-*
// policy): a profile whose version key was evicted while its data was not
// fails every later Apply with store.ErrConflict until it is deleted.
//
// # Writes
//
// Apply loads the profile, folds the events in Go, and writes it back with a
// script that succeeds only if the version is still the one loaded
// (compare-and-swap); on conflict it reloads and retries, up to
// Options.MaxRetries times with a short randomised backoff, and then
// returns store.ErrConflict. ApplyBatch does the same for many profiles in
// two round trips: one pipeline of loads, then, after the folds (spread
// over the CPUs), one pipeline of compare-and-swaps; only the conflicted
// profiles are retried. Writers of one id within one Store wait for each
// other instead of conflicting, so conflicts only arise between processes
// (or Stores) that share the server.
//
// The new encoding is not passed to the script: Redis copies a script's
// arguments into Lua, which costs the server more than the write itself
// (for profiles of tens of kilobytes, as earlier encodings made them, ten
// times more; with today's 4 KB profiles, passing the encoding made
// BenchmarkStoreApply about 5% slower). It is
// first SET under a staging key of the same slot, with a one-minute
// expiry, in the same pipeline; the script then RENAMEs it over the
// profile, or deletes it on a conflict.
//
// Decoding, folding and encoding are done in Go on the client's CPUs, so
// the server only compares versions and stores bytes.
//
// # Aggregates
//
// The store implements store.Counter. Each bucket keeps the counts of its
// profiles in its counts hash, and each Counted profile the count keys it
// counts for in its k set. Apply computes in Go the difference
// (store.CountDelta) between the count keys of the profile it loaded and
// of the one it writes, and the compare-and-swap script applies it to the
// k set and the counts in the same step that renames the new encoding
// over the data: the script writes only if the stored version is still
// the one loaded, so the difference is taken from exactly the profile it
// replaces; on a conflict Apply reloads, folds again and computes the
// difference anew. A delta changes a count only if it changes the k set,
// so each bucket's counts are always the sums of its k sets, whoever
// wrote them. Delete and Expire subtract the k set, without decoding the
// profile, in their scripts. A profile written before the store kept
// counts (not Counted) has no k set and counts for nothing until it is
// next written; then the script counts it afresh. Counts reads the 1024
// hashes in one pipeline and adds them up.
//
// The same scripts keep the due index (store.Rechecker) of each bucket.
// So that Due, which the recheck job calls every few seconds, does not
// read the 1024 indexes each time, the due hints hold for each bucket a
// lower bound of its earliest entry, and Due reads only the buckets whose
// bound is at or before its time: an idle call is one command. The hints
// are outside the buckets' slots, so no bucket script can change them:
// a write that puts an id in a due index with a score updates the
// bucket's hint after its script has run, lowering it to at most that
// score (ZADD LT, Redis 6.2) and incrementing the bucket's generation in
// one script, at the end of the same pipeline for a *goredis.Client, or
// once the scripts have answered for other clients, as the journal's
// tick. Delete, Expire and a write that takes an id out of the index only
// remove entries, which can only raise a bucket's earliest score: they
// leave the hints as they are. Due, having read a bucket, tightens its
// hint to the earliest score it read (or removes it if the bucket was
// empty) only if the bucket's generation is still the one it read before
// reading the bucket; otherwise it may only lower it, so an entry
// written meanwhile keeps a hint at or before it (due.go has the
// argument). A writer that fails between its script and its hint update
// (or a process of an earlier version of this package) may leave an
// entry with no hint at or before it: Due reads the earliest entry of
// every bucket and repairs the hints at its first call on a Store and
// then every five minutes, which bounds how late such a profile is
// returned, and costs 1024 commands each time.
//
// Scan (store.Scanner) reads each bucket in order of id from its scan
// copy, made from seen when a scan enters the bucket. Documents are plain
// keys outside the buckets.
//
// # Journal
//
// The store implements store.Journal. The compare-and-swap script adds
// the purchases that its write applies (Profile.TakePurchases after the
// fold) to the bucket's journal with XADD, once its checks have passed, in
// the step that renames the new encoding over the data: a write that
// conflicts or is refused journals nothing, and its retry journals the
// purchases of its own fold, from the profile it then replaces. ApplyBatch
// journals in the same pipelined scripts. An entry is one field, p, the
// purchase in a compact binary form of a few dozen bytes (Items and Prior
// are sorted, and their ids stored by the prefix they share with the one
// before).
//
// Redis gives an entry its id (the server's clock in milliseconds and a
// sequence number) when the script runs, and a stream's ids only grow, so
// the entries of a bucket are in the order their writes committed.
// Purchases keeps in its cursor the id of the last entry it returned from
// each bucket, and reads each bucket after that id (XRANGE with an
// exclusive start, all buckets in one pipeline): an entry committed after
// a read has a greater id than any read before it, so a later call returns
// it, and no entry is returned twice. Across buckets there is no order to
// keep. A cursor takes 2 to 5 bytes per bucket it has read from (about
// 7 KB of text for all 1024).
//
// Reading 1024 streams is 1024 commands. So that a reader polling an idle
// journal does not send them at every poll, each write that journals a
// purchase increments the tick key after its script has run: at the end
// of the same pipeline for a *goredis.Client, which sends a pipeline in
// order on one connection, or with a command of its own once the scripts
// have answered for other clients (a Cluster runs a pipeline on several
// nodes at once). Purchases reads the tick first: if this Store found the
// same cursor at the end of the journal while the tick had the same
// value, less than a minute ago, nothing was journaled since, and it
// returns without reading the streams; an idle poll is one GET. A writer
// that fails between its script and the tick delays the purchases it
// journaled by that minute at most.
//
// TrimPurchases trims each bucket's journal with XTRIM MINID, as an
// entry's id holds the server's time when it was journaled. The journal
// grows until it is trimmed (rules/assoc trims it after each snapshot,
// and the middleware's retention job hourly); a cursor from before a trim
// reads on from the oldest entry kept. The exclusive XRANGE start, XTRIM
// MINID and LPOP with a count need Redis 6.2 or later.
//
// Delete and Expire delete the entries of each profile they remove, in
// the script that removes it, without reading the journal: the
// compare-and-swap script lists the ids XADD gives a profile's entries in
// its journal index (RPUSH), and the script that removes the profile
// deletes them (XDEL) with the index. A profile's work is thus its own
// entries, whatever the journal's length: a few microseconds each.
// Trimming does not touch the indexes (it cannot find them); the
// compare-and-swap script drops from an index the ids before the
// journal's first entry (XRANGE COUNT 1) when it adds to it, so an index
// holds no more than the profile's entries since the last trim before its
// last purchase, some 20 bytes each. To bound a script (to about a
// millisecond), Delete and Expire delete at most 500 entries of a profile
// in it; an index longer than that (a buyer of more than 500 orders in
// the journal) is renamed to a drain key in the same script, whose
// entries further scripts delete 500 at a time. Once removed, a profile's
// purchases can no longer be added to the drained entries: Delete's
// tombstone refuses them, and after Expire a new purchase of the id
// starts a new index. If the process stops while draining, the drain key
// expires within the hour and what it still lists stays until trimmed.
// Entries journaled by a version of tailor from before the indexes are in
// none, and go only when trimmed.
//
// # Durability
//
// Writes are as durable as the server's persistence settings make them
// (RDB snapshots or the append-only file): Redis acknowledges a write once
// it is in memory.
//
// # Tombstones
//
// Delete deletes the profile's keys and its journal entries (see Journal)
// and sets its tombstone key with a PX expiry of Options.TombstoneTTL
// (renewing it if it exists), in one script.
// The compare-and-swap script refuses to write while the tombstone key
// exists, so an Apply racing a Delete lands before it or is refused with
// store.ErrErased. Redis removes the tombstone when it expires; it is not
// in the bucket index, so Range and Expire never see it.
//
// # Invalidation
//
// Every write and delete publishes the profile id on Options.Channel from
// inside the same script, so a change is never made without being announced:
// a deletion as the id after a byte 0x01 (see store.Change.String).
// PutDocument likewise publishes the document's name, after a byte 0x02,
// from the script that sets it.
// Redis pub/sub delivers at most once: a subscriber whose connection drops
// misses the messages sent until go-redis has re-subscribed, so caches fed
// by Subscribe should also expire their entries after a while.
//
// # Timeouts
//
// go-redis honours a context's deadline only if the client's
// Options.ContextTimeoutEnabled is set; otherwise a call to a server that
// does not answer waits the client's ReadTimeout (3 s by default), and a
// refused dial is retried. Set ContextTimeoutEnabled, and timeouts that
// suit the site, so that the Store's calls end when their contexts do.
//
// # Logs
//
// go-redis logs what it cannot return to a caller (failed dials, dropped
// pub/sub connections) through one logger per process, which by default
// prints to standard error. New routes it into Options.Logger, at warning
// level: the Logger of the latest New that was given one wins; until then,
// slog.Default() at the time of each line.
//
// # Ownership
//
// The caller owns the client: Close stops this Store (later calls return
// store.ErrClosed, subscriptions end) but leaves the client open, so one
// client can serve several stores and the rest of the application.
package redis

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tailorhq/tailor/internal/bufpool"
	"github.com/tailorhq/tailor/internal/fold"
	"github.com/tailorhq/tailor/internal/parallel"
	"github.com/tailorhq/tailor/store"
)

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Prefix starts every key the store uses. Zero means DefaultPrefix.
	// Stores with different prefixes are independent.
	Prefix string
	// Limits bound what each profile keeps. Zero fields mean the defaults
	// in store.DefaultLimits. Every store sharing a prefix should use the
	// same limits.
	Limits store.Limits
	// MaxRetries is how many times Apply retries a compare-and-swap that
	// lost to a concurrent writer before it returns store.ErrConflict.
	// Zero means DefaultMaxRetries; a negative value means no retry.
	MaxRetries int
	// Channel is the pub/sub channel of invalidations. Zero means Prefix
	// followed by "invalidate".
	Channel string
	// TombstoneTTL is how long the tombstone that Delete leaves refuses
	// Applies of the erased id. Zero means store.DefaultTombstoneTTL;
	// negative is an error. Every store sharing a prefix should use the
	// same TTL.
	TombstoneTTL time.Duration
	// Logger receives go-redis's own log lines (see Logs in the package
	// documentation). Nil keeps the logger given to an earlier New, or
	// slog.Default().
	Logger *slog.Logger
}

// Defaults for zero Options fields.
const (
	DefaultPrefix     = "tailor:"
	DefaultMaxRetries = 10
)

// buckets is the number of index buckets; part of the layout.
const buckets = 1024

// defaultChunk bounds how many ids Range and Expire handle per bucket and
// round trip.
const defaultChunk = 512

// defaultEraseChunk bounds how many journal entries of a profile
// deleteScript and expireScript delete; unjournalScript deletes the rest,
// as many per call.
const defaultEraseChunk = 500

// Scripts. The KEYS of casScript, deleteScript and expireScript are the
// keys of one profile that Store.keys returns, in the order of the k*
// constants (data, version, bucket index, tombstone, bucket counts,
// counted set, bucket recheck index), then for casScript the staging key
// and, if the write journals purchases, the bucket's journal and the
// profile's journal index; for deleteScript and expireScript the journal,
// the journal index and a drain key (see Store.eraseKeys). They all hold
// the same hash tag, so each script touches one Cluster slot.

// Indices of the keys that Store.keys returns.
const (
	kData    = iota // the profile's encoding
	kVersion        // its version
	kSeen           // the bucket's index by LastSeen
	kTomb           // the profile's tombstone
	kCounts         // the bucket's counts
	kCounted        // the count keys the stored profile counts for
	kDue            // the bucket's index by Recheck
	nKeys           // the keys of deleteScript and expireScript

	kStaging = nKeys     // casScript's staging key, set for each write
	kJournal = nKeys + 1 // the bucket's journal, for casScript if it journals
	kJIndex  = nKeys + 2 // the profile's journal index, with the journal
	nAllKeys = nKeys + 3
)

// uncountLua defines uncount(counts, counted), which takes a profile out
// of its bucket's counts: it decrements the count of every key of its
// counted set, deleting the counts that reach zero, and deletes the set.
const uncountLua = `
local function uncount(counts, counted)
	for _, k in ipairs(redis.call('SMEMBERS', counted)) do
		if redis.call('HINCRBY', counts, k, -1) == 0 then redis.call('HDEL', counts, k) end
	end
	redis.call('DEL', counted)
end
`

// unjournalLua defines xdel(journal, ids), which deletes the entries ids
// from the journal, and unjournal(journal, index, drain, n), which
// deletes from the journal the entries that a profile's journal index
// lists, and the index, up to n of them: if more are left, it renames the
// index to drain, sets it to expire in an hour and returns 1, and
// unjournalScript deletes the rest. An index is a list of the ids of the
// profile's entries, oldest first.
const unjournalLua = `
local function xdel(journal, ids)
	for j = 1, #ids, 500 do redis.call('XDEL', journal, unpack(ids, j, math.min(j + 499, #ids))) end
end
local function unjournal(journal, index, drain, n)
	local len = redis.call('LLEN', index)
	if len > n then
		redis.call('RENAME', index, drain)
		redis.call('PEXPIRE', drain, 3600000)
		index = drain
	end
	if len > 0 then xdel(journal, redis.call('LPOP', index, n)) end
	if len > n then return 1 end
	return 0
end
`

// unjournalScript deletes from the journal KEYS[1] up to ARGV[1] of the
// entries that the drain key KEYS[2] lists, taking them off it. Returns 1
// if some are left.
var unjournalScript = goredis.NewScript(unjournalLua + `
local ids = redis.call('LPOP', KEYS[2], ARGV[1])
if ids then xdel(KEYS[1], ids) end
return redis.call('EXISTS', KEYS[2])
`)

// casScript writes the profile if its version is still ARGV[1] and it has
// no tombstone, by renaming the staging key over the data, and updates
// the bucket's indexes, counts and journal with it. ARGV: expected
// version, new version, LastSeen score, id, channel, recheck ("" leaves
// the recheck index as it is, "-" takes the id out, a score puts it in),
// uncount ("1" to take the profile out of the counts before adding, for a
// stored profile that is not Counted), the number n of purchases the fold
// applied, those n purchases encoded (appendPurchase), each added to the
// bucket's journal with an id Redis assigns, which the profile's journal
// index lists (after dropping the ids it lists from before the journal's
// first entry, which a trim removed), then the count deltas
// (store.CountDelta) as pairs of a key and "1" or "-1". A delta changes a
// count only if it changes the counted set, so that the counts are always
// the sums of the bucket's counted sets. Returns 1 when written, 0 on a
// version conflict, -1 if the staging key is gone (expired, or lost in a
// resharding), -2 if the profile was erased. A version without data (its
// profile deleted by hand) counts as no profile.
var casScript = goredis.NewScript(uncountLua + `
if redis.call('EXISTS', KEYS[4]) == 1 then
	redis.call('DEL', KEYS[8])
	return -2
end
local v = redis.call('GET', KEYS[2])
if not v or redis.call('EXISTS', KEYS[1]) == 0 then v = '0' end
if v ~= ARGV[1] then
	redis.call('DEL', KEYS[8])
	return 0
end
if redis.call('EXISTS', KEYS[8]) == 0 then return -1 end
redis.call('RENAME', KEYS[8], KEYS[1])
redis.call('PERSIST', KEYS[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
if ARGV[7] == '1' then uncount(KEYS[5], KEYS[6]) end
local nj = tonumber(ARGV[8])
if nj > 0 and redis.call('EXISTS', KEYS[10]) == 1 then
	local first = redis.call('XRANGE', KEYS[9], '-', '+', 'COUNT', 1)[1]
	local fm, fs = math.huge, 0
	if first then
		local a, b = string.match(first[1], '^(%d+)-(%d+)$')
		fm, fs = tonumber(a), tonumber(b)
	end
	while true do
		local h = redis.call('LINDEX', KEYS[10], 0)
		if not h then break end
		local a, b = string.match(h, '^(%d+)-(%d+)$')
		a, b = tonumber(a), tonumber(b)
		if a > fm or (a == fm and b >= fs) then break end
		redis.call('LPOP', KEYS[10])
	end
end
for i = 9, 8 + nj do redis.call('RPUSH', KEYS[10], redis.call('XADD', KEYS[9], '*', 'p', ARGV[i])) end
for i = 9 + nj, #ARGV, 2 do
	local k, n = ARGV[i], tonumber(ARGV[i + 1])
	local changed
	if n > 0 then changed = redis.call('SADD', KEYS[6], k) else changed = redis.call('SREM', KEYS[6], k) end
	if changed == 1 and redis.call('HINCRBY', KEYS[5], k, n) == 0 then redis.call('HDEL', KEYS[5], k) end
end
if ARGV[6] == '-' then
	redis.call('ZREM', KEYS[7], ARGV[4])
elseif ARGV[6] ~= '' then
	redis.call('ZADD', KEYS[7], ARGV[6], ARGV[4])
end
redis.call('PUBLISH', ARGV[5], ARGV[4])
return 1
`)

// deleteScript deletes a profile, takes it out of the counts and indexes,
// deletes its journal entries (up to ARGV[5]; see unjournalLua) and sets
// its tombstone. ARGV: id, channel, message, tombstone TTL in
// milliseconds, the most journal entries to delete. Returns 1 if journal
// entries are left to delete from the drain key. The deletion is
// announced even if there was no profile: other processes may hold events
// for it not yet written (erasure). The bucket's due hint stays as it is:
// an entry removed leaves it a lower bound (see due.go).
var deleteScript = goredis.NewScript(uncountLua + unjournalLua + `
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
uncount(KEYS[5], KEYS[6])
redis.call('ZREM', KEYS[7], ARGV[1])
local more = unjournal(KEYS[8], KEYS[9], KEYS[10], tonumber(ARGV[5]))
redis.call('SET', KEYS[4], '1', 'PX', ARGV[4])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return more
`)

// expireScript deletes a profile, as deleteScript does but without a
// tombstone, if its LastSeen score is still below ARGV[2]: it may have
// been seen again since Expire listed it. ARGV: id, before score,
// channel, the most journal entries to delete. Returns 0 if it deleted
// nothing, 1 if it deleted the profile, 2 if it did and journal entries
// are left to delete from the drain key.
var expireScript = goredis.NewScript(uncountLua + unjournalLua + `
local s = redis.call('ZSCORE', KEYS[3], ARGV[1])
if not s or tonumber(s) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[3], ARGV[1])
uncount(KEYS[5], KEYS[6])
redis.call('ZREM', KEYS[7], ARGV[1])
if redis.call('DEL', KEYS[1], KEYS[2]) == 0 then return 0 end
local more = unjournal(KEYS[8], KEYS[9], KEYS[10], tonumber(ARGV[4]))
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1 + more
`)

// scanScript returns the ids of up to ARGV[2] profiles of a bucket after
// the id ARGV[1], in byte order. It reads them from a copy of the bucket's
// index with every score 0 (KEYS[2], made from KEYS[1]), in which Redis
// orders members by their bytes: the index itself is ordered by LastSeen,
// which changes as profiles are written. The copy is made anew when a
// scan enters the bucket (ARGV[1] is "") or when it is gone, so it holds
// every profile stored since the scan entered the bucket; it expires
// ARGV[3] milliseconds after its last use.
var scanScript = goredis.NewScript(`
if ARGV[1] == '' or redis.call('EXISTS', KEYS[2]) == 0 then
	if redis.call('ZUNIONSTORE', KEYS[2], 1, KEYS[1], 'WEIGHTS', 0) == 0 then return {} end
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local from = '-'
if ARGV[1] ~= '' then from = '(' .. ARGV[1] end
return redis.call('ZRANGEBYLEX', KEYS[2], from, '+', 'LIMIT', 0, ARGV[2])
`)

// stagingTTL bounds how long a staged encoding outlives a writer that died
// between staging it and running casScript.
const stagingTTL = time.Minute

// Store is a store.Store in Redis. Create it with New.
type Store struct {
	client     goredis.UniversalClient
	prefix     string
	channel    string
	lim        store.Limits
	maxRetries int
	tombTTL    time.Duration
	chunk      int // defaultChunk; smaller in tests
	eraseChunk int // defaultEraseChunk; smaller in tests
	// ordered: the client runs a pipeline in order on one connection (a
	// *goredis.Client), so the journal's tick can follow the writes in
	// their own pipeline (see Store.cas).
	ordered bool
	jmemo   journalMemo
	due     dueState

	locks  idLocks // serialise this process's writers of one id
	token  string  // makes staging keys unique to this Store
	staged atomic.Uint64

	closed atomic.Bool
	done   chan struct{} // closed by Close: ends subscriptions
	once   sync.Once
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

// New returns a store that keeps profiles through client, which the caller
// keeps owning (see the package documentation). New does no I/O.
func New(client goredis.UniversalClient, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("tailor/store/redis: New: nil client")
	}
	if opts.TombstoneTTL < 0 {
		return nil, fmt.Errorf("tailor/store/redis: New: Options.TombstoneTTL is negative (%v)", opts.TombstoneTTL)
	}
	routeLogs(opts.Logger)
	s := &Store{
		client:     client,
		prefix:     opts.Prefix,
		channel:    opts.Channel,
		lim:        opts.Limits.WithDefaults(),
		maxRetries: opts.MaxRetries,
		tombTTL:    opts.TombstoneTTL,
		done:       make(chan struct{}),
		chunk:      defaultChunk,
		eraseChunk: defaultEraseChunk,
		token:      newToken(),
		jmemo:      journalMemo{ttl: journalRecheck},
		due:        dueState{lock: make(chan struct{}, 1), every: dueRepairEvery},
	}
	_, s.ordered = client.(*goredis.Client)
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.channel == "" {
		s.channel = s.prefix + "invalidate"
	}
	if s.tombTTL == 0 {
		s.tombTTL = store.DefaultTombstoneTTL
	}
	switch {
	case s.maxRetries == 0:
		s.maxRetries = DefaultMaxRetries
	case s.maxRetries < 0:
		s.maxRetries = 0
	}
	return s, nil
}

// clientLog is go-redis's process-wide logger once a Store is made: it
// passes every line to the latest Options.Logger, or to slog.Default().
var clientLog struct {
	once   sync.Once
	logger atomic.Pointer[slog.Logger] // nil: slog.Default()
}

// slogPrinter adapts go-redis's logging interface to slog.
type slogPrinter struct{}

func (slogPrinter) Printf(ctx context.Context, format string, v ...any) {
	l := clientLog.logger.Load()
	if l == nil {
		l = slog.Default()
	}
	l.Log(ctx, slog.LevelWarn, fmt.Sprintf(format, v...), "logger", "go-redis")
}

// routeLogs sends go-redis's log lines to l from now on (to the earlier
// logger, or slog.Default(), if l is nil).
func routeLogs(l *slog.Logger) {
	if l != nil {
		clientLog.logger.Store(l)
	}
	clientLog.once.Do(func() { goredis.SetLogger(slogPrinter{}) })
}

// Limits returns the limits profiles are folded with.
func (s *Store) Limits() store.Limits { return s.lim }

// Prefix returns the prefix of the store's keys.
func (s *Store) Prefix() string { return s.prefix }

// Channel returns the pub/sub channel of invalidations.
func (s *Store) Channel() string { return s.channel }

// bucketOf returns the bucket of id: its 32-bit FNV-1a hash modulo
// buckets (part of the layout), computed inline to spare the hash.Hash32
// allocations on every write.
func bucketOf(id string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return h % buckets
}

func (s *Store) bucketTag(b uint32) string {
	return s.prefix + "{" + strconv.FormatUint(uint64(b), 16) + "}:"
}

func (s *Store) indexKey(b uint32) string  { return s.bucketTag(b) + "seen" }
func (s *Store) countsKey(b uint32) string { return s.bucketTag(b) + "counts" }
func (s *Store) dueKey(b uint32) string    { return s.bucketTag(b) + "due" }
func (s *Store) scanKey(b uint32) string   { return s.bucketTag(b) + "scan" }
func (s *Store) journalKey(b uint32) string {
	return s.bucketTag(b) + keySuffixes[kJournal] // as Store.keys has it
}

// keySuffixes follow the bucket tag in the keys that Store.keys returns,
// in the order of the k* constants; those ending in ':' are followed by
// the id. The staging key has none: it is made for each write.
var keySuffixes = [nAllKeys]string{kData: "p:", kVersion: "v:", kSeen: "seen", kTomb: "t:",
	kCounts: "counts", kCounted: "k:", kDue: "due", kJournal: "journal", kJIndex: "j:"}

// keys returns the keys of id in the order of the k* constants, the KEYS
// of the scripts, with the staging key "" (see eraseKeys for those of
// deleteScript and expireScript). They are parts of one string, built with
// one allocation: the write path makes them for every profile it writes.
func (s *Store) keys(id string) []string {
	var buf [64]byte
	tag := append(buf[:0], s.prefix...)
	tag = append(tag, '{')
	tag = strconv.AppendUint(tag, uint64(bucketOf(id)), 16)
	tag = append(tag, "}:"...)
	size := 0
	for i, suf := range keySuffixes {
		if i == kStaging {
			continue
		}
		size += len(tag) + len(suf)
		if strings.HasSuffix(suf, ":") {
			size += len(id)
		}
	}
	var sb strings.Builder
	sb.Grow(size)
	var ends [nAllKeys]int
	for i, suf := range keySuffixes {
		if i != kStaging {
			sb.Write(tag)
			sb.WriteString(suf)
			if strings.HasSuffix(suf, ":") {
				sb.WriteString(id)
			}
		}
		ends[i] = sb.Len()
	}
	all := sb.String()
	out := make([]string, nAllKeys)
	start := 0
	for i, end := range ends {
		out[i], start = all[start:end], end
	}
	return out
}

// stagingKey returns a new staging key in the slot of keys, the keys of a
// profile.
func (s *Store) stagingKey(keys []string) string {
	seen := keys[kSeen]
	return seen[:len(seen)-len("seen")] + "w:" + s.token + ":" + strconv.FormatUint(s.staged.Add(1), 36)
}

// eraseKeys returns the KEYS of deleteScript and expireScript for keys,
// the keys of a profile: the first nKeys, the journal, the journal index,
// and a new drain key in the slot (see unjournalLua), which the scripts
// use only for a profile of more than Store.eraseChunk entries.
func (s *Store) eraseKeys(keys []string) []string {
	seen := keys[kSeen]
	drain := seen[:len(seen)-len("seen")] + "jd:" + s.token + ":" + strconv.FormatUint(s.staged.Add(1), 36)
	return append(keys[:nKeys:nKeys], keys[kJournal], keys[kJIndex], drain)
}

// drain deletes the journal entries that the drain key of keys (from
// eraseKeys) lists, Store.eraseChunk per script.
func (s *Store) drain(ctx context.Context, keys []string) error {
	for {
		n, err := unjournalScript.Run(ctx, s.client, []string{keys[nKeys], keys[nKeys+2]}, s.eraseChunk).Int()
		if err != nil {
			return fmt.Errorf("delete journal entries: %w", err)
		}
		if n == 0 {
			return nil
		}
	}
}

func newToken() string {
	var b [8]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// score is the index score of a LastSeen: Unix microseconds, exact in a
// float64 for the years 1685 to 2255.
func score(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

// Load returns the stored profile, or store.ErrNotFound (store.ErrErased
// while the id's tombstone lives). It reads the profile and the tombstone
// in one round trip.
func (s *Store) Load(ctx context.Context, id string) (*store.Profile, error) {
	if err := store.Check(ctx, s.closed.Load(), id); err != nil {
		return nil, err
	}
	keys := s.keys(id)
	pipe := s.client.Pipeline()
	get := pipe.Get(ctx, keys[kData])
	tomb := pipe.Exists(ctx, keys[kTomb])
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, s.wrap(err, "load profile %q", id)
	}
	v, err := get.Result()
	if errors.Is(err, goredis.Nil) {
		if tomb.Val() == 1 {
			return nil, store.ErrErased
		}
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, s.wrap(err, "load profile %q", id)
	}
	p, err := store.UnmarshalString(v)
	if err != nil {
		return nil, s.wrap(err, "load profile %q", id)
	}
	return p, nil
}

// Apply folds events into the profile with a compare-and-swap, retrying on
// conflict.
func (s *Store) Apply(ctx context.Context, id string, events []store.Event) (*store.Profile, error) {
	if err := store.Check(ctx, s.closed.Load(), id); err != nil {
		return nil, err
	}
	out := make([]*store.Profile, 1)
	if err := s.apply(ctx, []store.Batch{{ID: id, Events: events}}, out); err != nil {
		return nil, s.wrap(err, "apply %d events to profile %q", len(events), id)
	}
	if out[0] == nil {
		return nil, fmt.Errorf("tailor/store/redis: apply %d events to profile %q: %w", len(events), id, store.ErrErased)
	}
	return out[0], nil
}

// ApplyBatch applies the batches with pipelined loads and
// compare-and-swaps, retrying only the profiles that conflicted. Batches
// are applied per profile, not all or nothing: on error some profiles may
// have been written (retrying them all is safe). An id may appear in
// several batches; they are applied in order, and each returned profile is
// the state after its own batch. The profile of a batch whose id has a
// live tombstone is nil.
func (s *Store) ApplyBatch(ctx context.Context, batches []store.Batch) ([]*store.Profile, error) {
	if err := store.CheckBatch(ctx, s.closed.Load(), batches); err != nil {
		if errors.Is(err, store.ErrInvalidID) {
			err = fmt.Errorf("tailor/store/redis: %w", err)
		}
		return nil, err
	}
	out := make([]*store.Profile, len(batches))
	if len(batches) == 0 {
		return out, nil
	}
	if err := s.apply(ctx, batches, out); err != nil {
		return nil, s.wrap(err, "apply %d batches", len(batches))
	}
	return out, nil
}

// update is one profile's share of a batch apply.
type update struct {
	id     string
	keys   []string // see Store.keys
	idx    []int    // indices of its batches, in order
	data   string   // the stored encoding, if found
	found  bool
	erased bool // refused by the id's tombstone
	// filled by fold:
	expect  uint64
	final   *store.Profile
	buf     *[]byte // holds enc; back to the pool once written
	enc     []byte
	deltas  []store.Delta // the count changes from the loaded profile to final
	uncount bool          // the loaded profile is not Counted: count final afresh
	recheck string        // casScript's recheck argument
	journal [][]byte      // the purchases final applied, encoded (appendPurchase)
	jbuf    []byte        // holds journal
	err     error
}

// apply applies batches (ids already valid) and fills out, leaving nil
// the profiles of ids with a live tombstone.
func (s *Store) apply(ctx context.Context, batches []store.Batch, out []*store.Profile) error {
	byID := make(map[string]*update, len(batches))
	var all []*update
	for i, b := range batches {
		u, ok := byID[b.ID]
		if !ok {
			u = &update{id: b.ID, keys: s.keys(b.ID)}
			byID[b.ID] = u
			all = append(all, u)
		}
		u.idx = append(u.idx, i)
	}
	ids := make([]string, len(all))
	for i, u := range all {
		ids[i] = u.id
	}
	unlock, err := s.locks.lock(ctx, ids)
	if err != nil {
		return err
	}
	defer unlock()
	pending := all
	for attempt := 0; ; attempt++ {
		if err := s.load(ctx, pending); err != nil {
			return err
		}
		parallel.For(len(pending), func(i int) { s.fold(pending[i], batches, out) })
		for _, u := range pending {
			if u.err != nil {
				return u.err
			}
		}
		conflicted, err := s.cas(ctx, pending)
		if err != nil {
			return err
		}
		for _, u := range pending {
			if u.erased {
				for _, i := range u.idx {
					out[i] = nil
				}
			}
		}
		if len(conflicted) == 0 {
			return nil
		}
		if attempt >= s.maxRetries {
			return fmt.Errorf("profile %q: %d attempts lost to concurrent writers: %w", conflicted[0].id, attempt+1, store.ErrConflict)
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
		pending = conflicted
	}
}

// load reads the stored data of every update in one pipeline.
func (s *Store) load(ctx context.Context, us []*update) error {
	pipe := s.client.Pipeline()
	cmds := make([]*goredis.StringCmd, len(us))
	for i, u := range us {
		cmds[i] = pipe.Get(ctx, u.keys[0])
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("load %d profiles: %w", len(us), err)
	}
	for i, u := range us {
		v, err := cmds[i].Result()
		switch {
		case errors.Is(err, goredis.Nil):
			u.data, u.found = "", false
		case err != nil:
			return fmt.Errorf("load profile %q: %w", u.id, err)
		default:
			u.data, u.found = v, true
		}
	}
	return nil
}

// fold decodes u's profile, applies its batches and encodes the result.
func (s *Store) fold(u *update, batches []store.Batch, out []*store.Profile) {
	u.err = nil
	var p *store.Profile
	if !u.found {
		p = store.New(u.id)
	} else {
		var err error
		if p, err = store.UnmarshalString(u.data); err != nil {
			u.err = fmt.Errorf("profile %q: %w", u.id, err)
			return
		}
	}
	u.data = ""
	u.expect = p.Version
	// What the loaded profile counts for, and whether it is in the recheck
	// index, before the fold changes it. One that is not Counted was
	// written before the store kept counts and indexes: the script takes
	// whatever the counted set holds out of the counts and counts final
	// afresh, and sets the recheck index whatever it was.
	var wasBuf, nowBuf [16]string
	var was []string
	counted, recheck := u.found && p.Counted, p.Recheck
	if counted {
		was = store.CountKeys(wasBuf[:0], p)
	}
	p.Counted = true // before the fold, so that the copies it makes have it too
	u.final = fold.Batches(s.lim, p, batches, u.idx, out)
	// The purchases of this fold, from the profile loaded for this
	// attempt: a retry after a conflict folds, and journals, anew.
	u.journal, u.jbuf = u.journal[:0], u.jbuf[:0]
	for _, pu := range u.final.TakePurchases() {
		start := len(u.jbuf)
		u.jbuf = appendPurchase(u.jbuf, &pu)
		u.journal = append(u.journal, u.jbuf[start:])
	}
	u.deltas = store.KeyDelta(was, store.CountKeys(nowBuf[:0], u.final))
	u.uncount = !counted
	switch {
	case counted && u.final.Recheck.Equal(recheck):
		u.recheck = ""
	case u.final.Recheck.IsZero():
		u.recheck = "-"
	default:
		u.recheck = score(u.final.Recheck)
	}
	if u.buf == nil {
		u.buf = bufpool.Get()
	}
	u.enc, u.err = fold.Encode(u.buf, u.final)
}

// cas writes every update in one pipeline: per profile, SET of the new
// encoding under a staging key, then the compare-and-swap script. It
// returns the updates that lost to a concurrent writer, and marks erased
// those that a tombstone refused.
//
// If an update journals purchases, the journal's tick is incremented
// after the scripts have run (see Journal in the package documentation),
// and if it puts its id in the due index with a score, the bucket's due
// hint is updated after them (hintScript; see Aggregates): at the end of
// the same pipeline when the client runs it in order on one connection,
// for every update whatever its result, otherwise once their results are
// in, for those written.
func (s *Store) cas(ctx context.Context, us []*update) ([]*update, error) {
	staging := make([]string, len(us))
	sets := make([]*goredis.StatusCmd, len(us))
	var tail func(goredis.Pipeliner)
	var ticks []*goredis.IntCmd
	var hints []any
	var hinted []*goredis.Cmd
	if s.ordered {
		journals := slices.ContainsFunc(us, func(u *update) bool { return len(u.journal) > 0 })
		hints = hintArgs(us, func(int) bool { return true })
		if journals || len(hints) > 0 {
			tail = func(pipe goredis.Pipeliner) {
				if len(hints) > 0 {
					hinted = append(hinted, hintScript.EvalSha(ctx, pipe, s.hintKeys(), hints...))
				}
				if journals {
					ticks = append(ticks, pipe.Incr(ctx, s.tickKey()))
				}
			}
		}
	}
	cmds, err := s.runPipelined(ctx, casScript, len(us),
		func(pipe goredis.Pipeliner, i int) {
			u := us[i]
			staging[i] = s.stagingKey(u.keys)
			sets[i] = pipe.Set(ctx, staging[i], u.enc, stagingTTL)
		},
		func(i int) ([]string, []any) {
			u := us[i]
			keys := u.keys
			keys[kStaging] = staging[i]
			if len(u.journal) == 0 {
				keys = keys[:kStaging+1] // no key the script does not use
			}
			uncount := ""
			if u.uncount {
				uncount = "1"
			}
			args := make([]any, 8, 8+len(u.journal)+2*len(u.deltas))
			args[0], args[1], args[2], args[3], args[4], args[5], args[6] = u.expect, u.final.Version, score(u.final.LastSeen), u.id, s.channel, u.recheck, uncount
			args[7] = len(u.journal)
			for _, j := range u.journal {
				args = append(args, j)
			}
			for _, d := range u.deltas {
				n := "1"
				if d.N < 0 {
					n = "-1"
				}
				args = append(args, d.Key, n)
			}
			return keys, args
		}, tail)
	if err != nil {
		return nil, fmt.Errorf("write %d profiles: %w", len(us), err)
	}
	var conflicted []*update
	journaled := false
	written := make([]bool, len(us))
	for i, u := range us {
		if err := sets[i].Err(); err != nil {
			return nil, fmt.Errorf("stage profile %q: %w", u.id, err)
		}
		n, err := cmds[i].Int()
		if err != nil {
			return nil, fmt.Errorf("write profile %q: %w", u.id, err)
		}
		switch n {
		case 1:
			written[i] = true
			journaled = journaled || len(u.journal) > 0
		case -2:
			u.erased = true
		default: // 0: version conflict; -1: staged value gone, write again
			conflicted = append(conflicted, u)
		}
		u.enc = nil
	}
	// The pipeline has sent every encoding: the buffers can be reused.
	for _, u := range us {
		bufpool.Put(u.buf)
		u.buf = nil
	}
	for _, c := range ticks {
		if err := c.Err(); err != nil {
			return nil, fmt.Errorf("tick the journal: %w", err)
		}
	}
	if journaled && !s.ordered {
		if err := s.client.Incr(ctx, s.tickKey()).Err(); err != nil {
			return nil, fmt.Errorf("tick the journal: %w", err)
		}
	}
	// The last hint update of the pipelines follows every script; if the
	// server had not cached hintScript, it is run now, still after them.
	var herr error
	switch {
	case len(hinted) > 0:
		if herr = hinted[len(hinted)-1].Err(); isNoScript(herr) {
			herr = hintScript.Run(ctx, s.client, s.hintKeys(), hints...).Err()
		}
	case !s.ordered:
		if hints = hintArgs(us, func(i int) bool { return written[i] }); len(hints) > 0 {
			herr = hintScript.Run(ctx, s.client, s.hintKeys(), hints...).Err()
		}
	}
	if herr != nil {
		return nil, fmt.Errorf("update the due hints of %s: %w", s.hintsKey(), herr)
	}
	return conflicted, nil
}

// runPipelined runs script n times in one pipeline with EVALSHA, each call
// preceded by what before(pipe, i) adds to the pipeline, if before is not
// nil, and the calls followed by what tail adds, if tail is not nil.
// Calls that fail because the server did not have the script cached
// (after a restart or SCRIPT FLUSH) are run once more with EVAL, without
// before, in a pipeline that tail ends too. The returned commands hold the
// results; tail's commands are the caller's to check, and a NOSCRIPT
// error of one of them does not fail the call.
func (s *Store) runPipelined(ctx context.Context, script *goredis.Script, n int, before func(pipe goredis.Pipeliner, i int), call func(i int) ([]string, []any), tail func(pipe goredis.Pipeliner)) ([]*goredis.Cmd, error) {
	cmds := make([]*goredis.Cmd, n)
	pipe := s.client.Pipeline()
	for i := range n {
		if before != nil {
			before(pipe, i)
		}
		keys, args := call(i)
		cmds[i] = script.EvalSha(ctx, pipe, keys, args...)
	}
	if tail != nil {
		tail(pipe)
	}
	if _, err := pipe.Exec(ctx); err != nil && !isNoScript(err) {
		return nil, err
	}
	var retry []int
	for i, c := range cmds {
		if isNoScript(c.Err()) {
			retry = append(retry, i)
		}
	}
	if len(retry) == 0 {
		return cmds, nil
	}
	pipe = s.client.Pipeline()
	for _, i := range retry {
		keys, args := call(i)
		cmds[i] = script.Eval(ctx, pipe, keys, args...)
	}
	if tail != nil {
		tail(pipe)
	}
	if _, err := pipe.Exec(ctx); err != nil && !isNoScript(err) {
		return nil, err
	}
	return cmds, nil
}

func isNoScript(err error) bool {
	return err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT")
}

// idLocks serialises the writers of each id within a Store. The
// compare-and-swap keeps writes correct without it; it saves the work that
// goroutines of one process would waste by conflicting with each other.
type idLocks struct {
	mu sync.Mutex
	m  map[string]*idLock
}

type idLock struct {
	ch   chan struct{} // holds a token while locked
	refs int           // goroutines holding or waiting for the lock
}

// lock locks every id (in sorted order, so that two callers cannot
// deadlock) and returns the function that unlocks them. It gives up when
// ctx is done.
func (l *idLocks) lock(ctx context.Context, ids []string) (unlock func(), err error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[string]*idLock)
	}
	held := make([]*idLock, len(ids))
	for i, id := range ids {
		k := l.m[id]
		if k == nil {
			k = &idLock{ch: make(chan struct{}, 1)}
			l.m[id] = k
		}
		k.refs++
		held[i] = k
	}
	l.mu.Unlock()
	release := func(locked int) {
		for i := range locked {
			<-held[i].ch
		}
		l.mu.Lock()
		for i, k := range held {
			if k.refs--; k.refs == 0 {
				delete(l.m, ids[i])
			}
		}
		l.mu.Unlock()
	}
	for i, k := range held {
		select {
		case k.ch <- struct{}{}:
		case <-ctx.Done():
			release(i)
			return nil, ctx.Err()
		}
	}
	return func() { release(len(held)) }, nil
}

// backoff sleeps before retry attempt+1: about 1ms, doubling up to 32ms,
// randomised so that conflicting writers spread out.
func backoff(ctx context.Context, attempt int) error {
	d := time.Millisecond << min(attempt, 5)
	d = d/2 + rand.N(d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Delete removes the profile and leaves (or renews) its tombstone; a
// missing id is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := store.Check(ctx, s.closed.Load(), id); err != nil {
		return err
	}
	keys := s.eraseKeys(s.keys(id))
	more, err := deleteScript.Run(ctx, s.client, keys, id, s.channel, store.Change{ID: id, Deleted: true}.String(), max(s.tombTTL.Milliseconds(), 1), s.eraseChunk).Int()
	if err == nil && more == 1 {
		err = s.drain(ctx, keys)
	}
	if err != nil {
		return s.wrap(err, "delete profile %q", id)
	}
	return nil
}

// Range calls fn with every profile, bucket by bucket, walking each
// bucket's index with ZSCAN and loading its profiles in pipelines. A
// profile changed during Range may be seen in either state; one added or
// deleted may or may not be seen.
func (s *Store) Range(ctx context.Context, fn func(*store.Profile) bool) error {
	for b := range uint32(buckets) {
		cont, err := s.rangeBucket(ctx, b, fn)
		if err != nil {
			return s.wrap(err, "range over profiles")
		}
		if !cont {
			return nil
		}
	}
	return nil
}

func (s *Store) rangeBucket(ctx context.Context, b uint32, fn func(*store.Profile) bool) (bool, error) {
	var seen map[string]bool // ZSCAN may return an id twice
	var cursor uint64
	for {
		if s.closed.Load() {
			return false, store.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		kv, next, err := s.client.ZScan(ctx, s.indexKey(b), cursor, "", int64(s.chunk)).Result()
		if err != nil {
			return false, fmt.Errorf("scan bucket %x: %w", b, err)
		}
		var us []*update
		for i := 0; i < len(kv); i += 2 { // member, score, member, score...
			id := kv[i]
			if seen[id] {
				continue
			}
			if seen == nil {
				seen = make(map[string]bool)
			}
			seen[id] = true
			us = append(us, &update{id: id, keys: s.keys(id)})
		}
		if len(us) > 0 {
			if err := s.load(ctx, us); err != nil {
				return false, err
			}
		}
		for _, u := range us {
			if !u.found { // deleted since the scan
				continue
			}
			p, err := store.UnmarshalString(u.data)
			if err != nil {
				return false, fmt.Errorf("profile %q: %w", u.id, err)
			}
			if err := ctx.Err(); err != nil {
				return false, err
			}
			if !fn(p) {
				return false, nil
			}
		}
		if cursor = next; cursor == 0 {
			return true, nil
		}
	}
}

// Expire deletes the profiles last seen before before, compared at
// microsecond precision, and returns how many it deleted. It lists
// candidates from the bucket indexes and deletes each with a script that
// checks its LastSeen again, so a visitor who comes back meanwhile is kept.
// When it returns an error, the count is of the profiles deleted until
// then.
func (s *Store) Expire(ctx context.Context, before time.Time) (int, error) {
	max := score(before)
	total := 0
	for {
		if s.closed.Load() {
			return total, store.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
		pipe := s.client.Pipeline()
		lists := make([]*goredis.StringSliceCmd, buckets)
		n := s.chunk
		for b := range uint32(buckets) {
			lists[b] = pipe.ZRangeArgs(ctx, goredis.ZRangeArgs{
				Key: s.indexKey(b), Start: "-inf", Stop: "(" + max, ByScore: true, Count: int64(n),
			})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return total, s.wrap(err, "expire profiles last seen before %s: list", before.Format(time.RFC3339Nano))
		}
		var ids []string
		full := false
		for _, c := range lists {
			ids = append(ids, c.Val()...)
			full = full || len(c.Val()) == n
		}
		if len(ids) == 0 {
			return total, nil
		}
		keys := make([][]string, len(ids))
		cmds, err := s.runPipelined(ctx, expireScript, len(ids), nil, func(i int) ([]string, []any) {
			if keys[i] == nil {
				keys[i] = s.eraseKeys(s.keys(ids[i]))
			}
			return keys[i], []any{ids[i], max, s.channel, s.eraseChunk}
		}, nil)
		if err != nil {
			return total, s.wrap(err, "expire profiles last seen before %s", before.Format(time.RFC3339Nano))
		}
		for i, c := range cmds {
			n, err := c.Int()
			if err == nil && n == 2 {
				err = s.drain(ctx, keys[i])
			}
			if err != nil {
				return total, s.wrap(err, "expire profile %q", ids[i])
			}
			total += min(n, 1)
		}
		if !full {
			return total, nil
		}
	}
}

// Counts implements store.Counter: the sums of the buckets' counts, read
// in one pipeline. Each bucket's counts change in the scripts that write,
// delete and expire its profiles, so they are exact at the moment each is
// read; the buckets are not read at one instant, so writes during the
// call may be seen in some buckets and not others, as if made just before
// or just after it.
func (s *Store) Counts(ctx context.Context) (map[string]int64, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pipe := s.client.Pipeline()
	cmds := make([]*goredis.MapStringStringCmd, buckets)
	for b := range uint32(buckets) {
		cmds[b] = pipe.HGetAll(ctx, s.countsKey(b))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.wrap(err, "read counts")
	}
	out := make(map[string]int64)
	for b, c := range cmds {
		for k, v := range c.Val() {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("tailor/store/redis: read counts: field %q of %s holds %q, not an integer", k, s.countsKey(uint32(b)), v)
			}
			out[k] += n
		}
	}
	maps.DeleteFunc(out, func(_ string, n int64) bool { return n == 0 })
	return out, nil
}

// scanTTL is how long a bucket's scan copy (see scanScript) outlives the
// last page read from it.
const scanTTL = 10 * time.Minute

// maxScanWindow bounds how many buckets Scan reads in one round trip.
const maxScanWindow = 128

// Scan implements store.Scanner: bucket by bucket, and within a bucket in
// byte order of id (see scanScript), loading each page's profiles in one
// pipeline. The cursor is the bucket in hex, ':', and the last id read
// from it. A page that ends a bucket goes on with the next ones,
// reading 1, 2, 4... up to maxScanWindow buckets per round trip, so that
// a scan of few profiles takes few pages; a profile deleted since its id
// was read is left out, so a page may be short.
func (s *Store) Scan(ctx context.Context, cursor string, max int) ([]*store.Profile, string, error) {
	if err := store.CheckScan(ctx, s.closed.Load(), max); err != nil {
		return nil, "", err
	}
	b, after, err := parseCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	var us []*update
	next := ""
	for window := 1; b < buckets && next == ""; window = min(2*window, maxScanWindow) {
		if s.closed.Load() {
			return nil, "", store.ErrClosed
		}
		n, want := min(window, buckets-b), max-len(us)
		cmds, err := s.runPipelined(ctx, scanScript, n, nil, func(i int) ([]string, []any) {
			from := ""
			if i == 0 {
				from = after
			}
			bi := uint32(b + i)
			return []string{s.indexKey(bi), s.scanKey(bi)}, []any{from, want, scanTTL.Milliseconds()}
		}, nil)
		if err != nil {
			return nil, "", s.wrap(err, "scan profiles from bucket %x", b)
		}
		for i, c := range cmds {
			ids, err := c.StringSlice()
			if err != nil {
				return nil, "", s.wrap(err, "scan profiles of bucket %x", b+i)
			}
			ids = ids[:min(len(ids), max-len(us))]
			for _, id := range ids {
				us = append(us, &update{id: id, keys: s.keys(id)})
			}
			if len(us) == max {
				next = strconv.FormatInt(int64(b+i), 16) + ":" + ids[len(ids)-1]
				break
			}
		}
		b, after = b+n, ""
	}
	if len(us) > 0 {
		if err := s.load(ctx, us); err != nil {
			return nil, "", s.wrap(err, "scan profiles")
		}
	}
	out := make([]*store.Profile, 0, len(us))
	for _, u := range us {
		if !u.found { // deleted since its id was read
			continue
		}
		p, err := store.UnmarshalString(u.data)
		if err != nil {
			return nil, "", s.wrap(err, "scan profile %q", u.id)
		}
		out = append(out, p)
	}
	return out, next, nil
}

// parseCursor reads a cursor made by Scan: the bucket to go on with and
// the id after which to go on ("" for the start).
func parseCursor(cursor string) (bucket int, after string, err error) {
	if cursor == "" {
		return 0, "", nil
	}
	hex, after, ok := strings.Cut(cursor, ":")
	b, perr := strconv.ParseUint(hex, 16, 32)
	if !ok || perr != nil || b >= buckets {
		return 0, "", fmt.Errorf("tailor/store/redis: scan cursor %q: not a cursor this store made (<bucket in hex>:<id>)", cursor)
	}
	return int(b), after, nil
}

// docKey returns the key of the document name: one key, like a lease's.
func (s *Store) docKey(name string) string { return s.prefix + "doc:" + name }

// Document implements store.Documents.
func (s *Store) Document(ctx context.Context, name string) ([]byte, error) {
	if err := store.CheckDocument(ctx, s.closed.Load(), name, 0); err != nil {
		return nil, err
	}
	data, err := s.client.Get(ctx, s.docKey(name)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("tailor/store/redis: document %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, s.wrap(err, "read document %q", name)
	}
	return data, nil
}

// putDocumentScript sets the document KEYS[1] to ARGV[1], without expiry,
// and publishes ARGV[3] on the channel ARGV[2]: in one script, so that the
// document is written when the message is sent, and never written without
// it.
var putDocumentScript = goredis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`)

// PutDocument implements store.Documents: a SET without expiry, and the
// announcement of the document on Options.Channel (see store.Change), in
// one script.
func (s *Store) PutDocument(ctx context.Context, name string, data []byte) error {
	if err := store.CheckDocument(ctx, s.closed.Load(), name, len(data)); err != nil {
		return err
	}
	msg := store.Change{Document: name}.String()
	if err := putDocumentScript.Run(ctx, s.client, []string{s.docKey(name)}, data, s.channel, msg).Err(); err != nil {
		return s.wrap(err, "write document %q", name)
	}
	return nil
}

// Subscribe calls fn with every profile written or deleted and every
// document put through any store on the same server (or cluster) and
// channel (see store.Change), until ctx is done or the store is closed.
// It returns once Redis has confirmed the subscription. fn is called from
// one goroutine per subscription, in the order messages arrive; a
// subscriber that blocks for a minute loses messages (go-redis drops
// them).
func (s *Store) Subscribe(ctx context.Context, fn func(store.Change)) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ps := s.client.Subscribe(ctx, s.channel)
	msg, err := ps.Receive(ctx)
	if err == nil {
		if _, ok := msg.(*goredis.Subscription); !ok {
			err = fmt.Errorf("unexpected reply %T", msg)
		}
	}
	if err != nil {
		ps.Close()
		return s.wrap(err, "subscribe to %q", s.channel)
	}
	ch := ps.Channel(goredis.WithChannelSize(1024))
	go func() {
		defer ps.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.done:
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				if ctx.Err() == nil && !s.closed.Load() {
					fn(store.ParseChange(m.Payload))
				}
			}
		}
	}()
	return nil
}

// Close stops the store: later calls return store.ErrClosed and
// subscriptions end (their fn is not called after Close returns, though a
// call in progress may still be running). It does not close the client,
// which the caller owns. Calls in progress finish with the client. Closing
// twice is not an error.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		close(s.done)
	})
	return nil
}

// wrap turns err into the error a method returns: sentinels and context
// errors as they are, anything else prefixed with the operation.
func (s *Store) wrap(err error, op string, args ...any) error {
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrClosed),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("tailor/store/redis: %s: %w", fmt.Sprintf(op, args...), err)
}

// leaseScript takes or renews the lease KEYS[1] for the holder ARGV[1]
// for ARGV[2] milliseconds, unless another holder has it. Returns 1 if
// the holder has it now.
var leaseScript = goredis.NewScript(`
local h = redis.call('GET', KEYS[1])
if h and h ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// releaseScript deletes the lease KEYS[1] if the holder ARGV[1] has it.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`)

// leaseKey returns the key of the lease name: one key, so a script on it
// works in a Cluster too.
func (s *Store) leaseKey(name string) string { return s.prefix + "lease:" + name }

// Lease implements store.Leaser: the lease is a key with the holder as its
// value and the ttl as its expiry, by the server's clock.
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if err := store.CheckLease(ctx, s.closed.Load(), name, holder); err != nil {
		return false, err
	}
	if err := store.CheckLeaseTTL(ttl); err != nil {
		return false, err
	}
	n, err := leaseScript.Run(ctx, s.client, []string{s.leaseKey(name)}, holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, s.wrap(err, "lease %q", name)
	}
	return n == 1, nil
}

// Release implements store.Leaser.
func (s *Store) Release(ctx context.Context, name, holder string) error {
	if err := store.CheckLease(ctx, s.closed.Load(), name, holder); err != nil {
		return err
	}
	if err := releaseScript.Run(ctx, s.client, []string{s.leaseKey(name)}, holder).Err(); err != nil && !errors.Is(err, goredis.Nil) {
		return s.wrap(err, "release lease %q", name)
	}
	return nil
}
