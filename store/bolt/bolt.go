// Package bolt is a store.Store that keeps profiles in one file on the local
// disk, with go.etcd.io/bbolt. It is tailor's default store for a site that
// runs as one process.
//
// # Layout
//
// The file holds these buckets:
//
//   - "profiles": profile id → the profile encoded with store.Marshal.
//   - "lastseen": the index that Expire walks: a key of the profile's
//     LastSeen (12 bytes that sort in time order) followed by its id, with an
//     empty value.
//   - "recheck": the index that Due walks: a key of the profile's
//     Profile.Recheck (the same 12 bytes) followed by its id, with an empty
//     value; only profiles with a Recheck have an entry.
//   - "counts": the aggregates of store.Counter: count key → the number of
//     profiles that count for it, 8 bytes big-endian; a count that falls to
//     zero is deleted.
//   - "tombstones": the id of a profile erased by Delete → when its
//     tombstone expires, in Unix nanoseconds (8 bytes, big-endian).
//   - "documents": the name of a document (store.Documents) → its bytes.
//   - "journal": the journal of store.Journal: a sequence number of the
//     bucket, 8 bytes big-endian → a purchase: when it was journaled (Unix
//     nanoseconds, 8 bytes big-endian), the profile's id, the time of the
//     order, the ids and categories of its items and the ids bought
//     before, front-coded (they are sorted), with varint lengths: some 18
//     bytes, and 2 per item and per id bought before, besides the ids.
//   - "journalids": the journal's index by profile, for Delete and Expire:
//     a key of the profile's id, a 0 byte and the sequence number of one
//     of its entries, with an empty value. The bucket's own sequence is
//     the last journal sequence number indexed.
//   - "meta": the layout's version, checked by Open, and while a file of
//     layout 1 is being upgraded, how far the upgrade has gone.
//
// Apply, ApplyBatch, Delete and Expire change the two indexes and the
// counts in the same transaction as the profiles they come from, Apply
// and ApplyBatch append to the journal in it, and Delete and Expire take
// the profile's purchases out of it, so they are never out of step with
// the profiles, even across a crash: a count is changed by
// store.CountDelta of the stored profile a transaction replaces and the
// one it writes, and bbolt runs one writing transaction at a time, so no
// two writes of a profile can both count from the same old version.
// Counts reads the counts bucket, and Due the recheck index, in one read
// transaction: a consistent snapshot, whatever the number of profiles.
//
// Files of layout 1, written before the store kept aggregates, are
// upgraded by Open: it counts every profile once, sets its
// Profile.Counted and indexes its Recheck, in transactions of 1024
// profiles, which takes about 2 s per 100,000 profiles; an upgrade
// interrupted by a crash resumes at the next Open. The file is marked
// layout 2 before the upgrade starts, so that an earlier version of
// tailor, which would write profiles without counting them, refuses it.
//
// The journal came later, in layout 2 still: Open adds its bucket to a
// file that has none, whose journal then starts empty (profiles do not
// keep their orders, so there is nothing to fill it with). An earlier
// version of tailor still opens such a file, and would apply purchases
// without journaling them: a gap in what a model learns from, but nothing
// wrong in profiles or counts, unlike a write that does not count. The
// journal's index came later still: Open indexes the entries of a journal
// that has none, and also those that an earlier version journaled, without
// indexing them, since this one last had the file (the entries after the
// index's sequence), in transactions of 1024 entries.
//
// # Journal
//
// Apply and ApplyBatch journal each purchase that their folds applied
// (store.Profile.TakePurchases of the profile written) in the transaction
// that writes the profile, under the bucket's next sequence number
// (bbolt's NextSequence, kept in the bucket and so part of the
// transaction): the purchase is journaled if and only if the write
// commits, once, as a transaction that fails rolls back its entries and
// the sequence with them, and a write never conflicts, so never reruns a
// fold. bbolt runs one writing transaction at a time and a read
// transaction sees the commits made before it began, so the sequence
// numbers a reader finds are every number up to the last committed (but
// those trimmed): a commit after a reader passed a cursor has a number
// above it. The cursor of Purchases is the last number returned, in
// decimal; Purchases reads up to 1024 entries per read transaction, and
// with nothing new it costs one read transaction and one seek in the
// file's memory map, with no system call.
//
// TrimPurchases deletes entries from the start of the bucket, which is
// in commit order, while they were journaled before its time; the bucket's
// sequence stays, so numbers are never reused and a cursor from before
// the trim resumes at the oldest entry kept. The time journaled is taken
// in the writing transaction, so it precedes the commit, when readers
// can see the entry, by up to the commit's duration (its fsync): trim
// before the time a reader reached its cursor less a margin.
//
// Delete and Expire remove the entries of each profile they remove, in
// the transaction that removes it: the index "journalids" finds them with
// one seek, without reading the journal, so each costs a delete per entry
// of the profile's. Appending indexes each entry in the writing
// transaction, and TrimPurchases deletes the index keys of the entries it
// deletes (it decodes them for the id). An Apply racing a Delete commits
// before it, and its entries are deleted, or is refused by the tombstone.
//
// # Tombstones
//
// Delete removes the profile and puts its id in "tombstones" in one
// transaction; Apply reads the tombstone in the transaction that would
// write the profile, so an Apply racing a Delete lands before it or is
// refused with store.ErrErased. A tombstone lives for
// Options.TombstoneTTL; once it has expired, the next Apply of the id
// removes it and starts a fresh profile, and Expire removes every expired
// one. Files written by earlier versions of tailor have no "tombstones"
// bucket; Open adds it.
//
// # Concurrency
//
// bbolt locks the file, so one process at a time has it open; a second Open
// of the same file waits up to Options.Timeout and then fails. Within the
// process every method is safe for concurrent use. bbolt runs one writing
// transaction at a time, so Apply never conflicts and needs no retry; it
// still increments Profile.Version, as the store contract asks.
//
// Every Apply is one transaction, and so one commit with its fsync.
// ApplyBatch applies all its batches in one transaction: with many profiles
// to write (a write-behind flush) it is much faster than one Apply each.
//
// # Crash safety
//
// A bbolt commit is durable: the file is fsynced before Update returns. Once
// Apply, ApplyBatch, Delete or Expire has returned without error its change
// survives a crash of the process or of the machine; a transaction that was
// interrupted by a crash is rolled back as a whole when the file is next
// opened, so a profile, its index entries and the counts never disagree.
// Options.NoSync gives this up for speed.
//
// # Invalidation
//
// Store implements store.Invalidator for subscribers in this process, which
// is every process that can write the file.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/tailorhq/tailor/internal/bufpool"
	"github.com/tailorhq/tailor/internal/fold"
	"github.com/tailorhq/tailor/internal/lease"
	"github.com/tailorhq/tailor/internal/parallel"
	"github.com/tailorhq/tailor/store"
)

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Limits bound what each profile keeps. Zero fields mean the defaults
	// in store.DefaultLimits.
	Limits store.Limits
	// Timeout is how long Open waits for another process to release its
	// lock on the file. Zero means DefaultTimeout; a negative value waits
	// for ever.
	Timeout time.Duration
	// NoSync skips the fsync at each commit. Writes get much faster, but a
	// crash of the machine (not of the process) may lose recent commits or
	// corrupt the file. Use it only for tests and for bulk loads that can
	// be redone. The zero value, false, syncs every commit.
	NoSync bool
	// Mode is the permission bits of the file when Open creates it. Zero
	// means 0600.
	Mode os.FileMode
	// TombstoneTTL is how long the tombstone that Delete leaves refuses
	// Applies of the erased id. Zero means store.DefaultTombstoneTTL;
	// negative is an error.
	TombstoneTTL time.Duration
}

// DefaultTimeout is how long Open waits for the file's lock when
// Options.Timeout is zero.
const DefaultTimeout = time.Second

// layoutVersion is stored in the meta bucket. Open refuses other versions
// but layoutV1, the layout before the counts, recheck and documents
// buckets, which it upgrades.
const (
	layoutVersion = "2"
	layoutV1      = "1"
)

var (
	bucketProfiles = []byte("profiles")
	bucketLastSeen = []byte("lastseen")
	bucketTombs    = []byte("tombstones")
	bucketRecheck  = []byte("recheck")
	bucketCounts   = []byte("counts")
	bucketDocs     = []byte("documents")
	bucketMeta     = []byte("meta")
	keyLayout      = []byte("layout")
	// keyUpgrade, in meta while a file of layout 1 is being upgraded, is
	// a 0 byte before the first profile is counted and then a 1 byte
	// followed by the id of the last profile counted.
	keyUpgrade = []byte("upgrade")
)

// rangeChunk is how many profiles Range and Scan read per read
// transaction, expireChunk how many Expire deletes per write transaction,
// and upgradeChunk how many profiles the upgrade of a layout 1 file counts
// per write transaction.
const (
	rangeChunk   = 128
	expireChunk  = 1024
	upgradeChunk = 1024
)

// Store is a store.Store in a bbolt file. Create it with Open.
type Store struct {
	db      *bbolt.DB
	path    string
	lim     store.Limits
	tombTTL time.Duration
	closed  atomic.Bool

	mu      sync.Mutex
	subs    map[int]subscriber
	nextSub int

	leases lease.Table // only one process opens the file: leases live in it
}

type subscriber struct {
	ctx context.Context
	fn  func(store.Change)
}

var (
	_ store.Store        = (*Store)(nil)
	_ store.BatchApplier = (*Store)(nil)
	_ store.Ranger       = (*Store)(nil)
	_ store.Expirer      = (*Store)(nil)
	_ store.Invalidator  = (*Store)(nil)
	_ store.Counter      = (*Store)(nil)
	_ store.Rechecker    = (*Store)(nil)
	_ store.Scanner      = (*Store)(nil)
	_ store.Documents    = (*Store)(nil)
	_ store.Journal      = (*Store)(nil)
	_ store.Leaser       = (*Store)(nil)
)

// Open opens the store in the file at path, creating the file if it does
// not exist (its directory must). Close the store to release the file.
func Open(path string, opts Options) (*Store, error) {
	if opts.TombstoneTTL < 0 {
		return nil, fmt.Errorf("tailor/store/bolt: open %s: Options.TombstoneTTL is negative (%v)", path, opts.TombstoneTTL)
	}
	tombTTL := opts.TombstoneTTL
	if tombTTL == 0 {
		tombTTL = store.DefaultTombstoneTTL
	}
	timeout := opts.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		timeout = 0 // bbolt: wait for ever
	}
	mode := opts.Mode
	if mode == 0 {
		mode = 0o600
	}
	db, err := bbolt.Open(path, mode, &bbolt.Options{
		Timeout:      timeout,
		NoSync:       opts.NoSync,
		FreelistType: bbolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("tailor/store/bolt: open %s: the file is locked by another process (waited %v): %w", path, timeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("tailor/store/bolt: open %s: %w", path, err)
	}
	upgrade := false
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		switch v := meta.Get(keyLayout); {
		case v == nil:
			if err := meta.Put(keyLayout, []byte(layoutVersion)); err != nil {
				return err
			}
		case string(v) == layoutV1:
			// Marked as the new layout first, so that an earlier version
			// of tailor refuses the file from now on.
			if err := meta.Put(keyLayout, []byte(layoutVersion)); err != nil {
				return err
			}
			if err := meta.Put(keyUpgrade, []byte{0}); err != nil {
				return err
			}
		case string(v) != layoutVersion:
			return fmt.Errorf("layout version %q, this version of tailor reads %q", v, layoutVersion)
		}
		upgrade = meta.Get(keyUpgrade) != nil
		for _, b := range [][]byte{bucketProfiles, bucketLastSeen, bucketTombs, bucketRecheck, bucketCounts, bucketDocs, bucketJournal, bucketJournalIDs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && upgrade {
		err = upgradeV1(db)
	}
	if err == nil {
		err = indexJournal(db)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("tailor/store/bolt: open %s: %w", path, err)
	}
	return &Store{db: db, path: path, lim: opts.Limits.WithDefaults(), tombTTL: tombTTL, subs: make(map[int]subscriber)}, nil
}

// upgradeV1 finishes the upgrade of a file of layout 1, which kept no
// counts and no recheck index, from where keyUpgrade says it is: it counts
// each profile's store.CountKeys, sets its Counted, re-encodes it and
// indexes its Recheck, upgradeChunk profiles per transaction, each of
// which also moves keyUpgrade past its profiles, so that a crash loses no
// work and counts no profile twice. A profile that cannot be decoded is
// left as it is: not Counted, it counts for nothing (see
// store.CountDelta). The last transaction removes keyUpgrade.
func upgradeV1(db *bbolt.DB) error {
	for done := false; !done; {
		err := db.Update(func(tx *bbolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			mark := meta.Get(keyUpgrade)
			if len(mark) == 0 {
				return fmt.Errorf("malformed upgrade mark %q", mark)
			}
			type counted struct {
				id []byte
				p  *store.Profile
			}
			var ps []counted
			var last []byte
			c := tx.Bucket(bucketProfiles).Cursor()
			var k, v []byte
			if mark[0] == 0 {
				k, v = c.First()
			} else if k, v = c.Seek(mark[1:]); bytes.Equal(k, mark[1:]) {
				k, v = c.Next()
			}
			for n := 0; k != nil && n < upgradeChunk; k, v = c.Next() {
				n++
				last = k
				if p, err := store.Unmarshal(v); err == nil { // copies v
					ps = append(ps, counted{bytes.Clone(k), p})
				}
			}
			done = k == nil
			// The cursor is done with: the bucket may change now.
			var mark2 []byte
			if !done {
				mark2 = append([]byte{1}, last...)
			}
			profiles, recheck := tx.Bucket(bucketProfiles), tx.Bucket(bucketRecheck)
			var ds []store.Delta
			for _, cp := range ps {
				for _, key := range store.CountKeys(nil, cp.p) {
					ds = append(ds, store.Delta{Key: key, N: 1})
				}
				cp.p.Counted = true
				enc, err := store.Marshal(cp.p)
				if err != nil {
					return fmt.Errorf("encode profile %q: %w", cp.id, err)
				}
				if err := profiles.Put(cp.id, enc); err != nil {
					return fmt.Errorf("put profile %q: %w", cp.id, err)
				}
				if err := reindex(recheck, nil, recheckKey(cp.p, string(cp.id))); err != nil {
					return fmt.Errorf("index the recheck of profile %q: %w", cp.id, err)
				}
			}
			if err := addCounts(tx.Bucket(bucketCounts), ds); err != nil {
				return err
			}
			if done {
				return meta.Delete(keyUpgrade)
			}
			return meta.Put(keyUpgrade, mark2)
		})
		if err != nil {
			return fmt.Errorf("upgrade from layout %s: %w", layoutV1, err)
		}
	}
	return nil
}

// Limits returns the limits profiles are folded with.
func (s *Store) Limits() store.Limits { return s.lim }

// Path returns the file's path.
func (s *Store) Path() string { return s.path }

// Load returns the stored profile, or store.ErrNotFound (store.ErrErased
// while the id's tombstone lives).
func (s *Store) Load(ctx context.Context, id string) (*store.Profile, error) {
	if err := store.Check(ctx, s.closed.Load(), id); err != nil {
		return nil, err
	}
	var p *store.Profile
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketProfiles).Get([]byte(id))
		if b == nil {
			if s.tombstoned(tx.Bucket(bucketTombs), id, time.Now()) {
				return store.ErrErased
			}
			return store.ErrNotFound
		}
		var err error
		p, err = store.Unmarshal(b) // copies: b is only valid in tx
		return err
	})
	if err != nil {
		return nil, s.wrap(err, "load profile %q", id)
	}
	return p, nil
}

// Apply folds events into the profile in one write transaction.
func (s *Store) Apply(ctx context.Context, id string, events []store.Event) (*store.Profile, error) {
	if err := store.Check(ctx, s.closed.Load(), id); err != nil {
		return nil, err
	}
	out := make([]*store.Profile, 1)
	if err := s.apply(ctx, []store.Batch{{ID: id, Events: events}}, out); err != nil {
		return nil, s.wrap(err, "apply %d events to profile %q", len(events), id)
	}
	if out[0] == nil {
		return nil, fmt.Errorf("tailor/store/bolt: apply %d events to profile %q: %w", len(events), id, store.ErrErased)
	}
	s.notify(store.Change{ID: id})
	return out[0], nil
}

// ApplyBatch applies every batch in one write transaction, so with one
// commit: either all batches are applied or none is. The profiles are
// decoded, folded and encoded on all CPUs while the transaction is open. An
// id may appear in several batches; they are applied in order, and each
// returned profile is the state after its own batch. The profile of a
// batch whose id has a live tombstone is nil.
func (s *Store) ApplyBatch(ctx context.Context, batches []store.Batch) ([]*store.Profile, error) {
	if err := store.CheckBatch(ctx, s.closed.Load(), batches); err != nil {
		if errors.Is(err, store.ErrInvalidID) {
			err = fmt.Errorf("tailor/store/bolt: %w", err)
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
	for i, b := range batches {
		if out[i] != nil {
			s.notify(store.Change{ID: b.ID})
		}
	}
	return out, nil
}

// update is one profile's share of an apply.
type update struct {
	id     string
	idx    []int  // indices of its batches, in order
	erased bool   // the id has a live tombstone: nothing is written
	old    []byte // the stored encoding, valid in the transaction; nil if new
	// set by fold:
	oldSeen    []byte // the stored lastseen key; nil if new
	oldRecheck []byte // the stored recheck key; nil if none
	delta      []store.Delta
	final      *store.Profile
	purchases  []store.Purchase // applied by the fold, to journal
	buf        *[]byte          // holds enc; back to the pool once the transaction ends
	enc        []byte
	err        error
}

// apply applies batches (ids already valid) in one write transaction and
// fills out, leaving nil the profiles of ids with a live tombstone. Reads
// happen first, then the folds in parallel (the transaction is not touched
// meanwhile, so the read values stay valid), then the writes: profiles,
// their index entries, the purchases the folds applied to the journal, and
// the counts.
func (s *Store) apply(ctx context.Context, batches []store.Batch, out []*store.Profile) error {
	byID := make(map[string]*update, len(batches))
	var us []*update
	for i, b := range batches {
		u, ok := byID[b.ID]
		if !ok {
			u = &update{id: b.ID}
			byID[b.ID] = u
			us = append(us, u)
		}
		u.idx = append(u.idx, i)
	}
	defer func() {
		for _, u := range us {
			bufpool.Put(u.buf)
		}
	}()
	return s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil { // canceled while waiting for the writer lock
			return err
		}
		profiles, seen, tombs := tx.Bucket(bucketProfiles), tx.Bucket(bucketLastSeen), tx.Bucket(bucketTombs)
		now := time.Now()
		live := us[:0:0]
		for _, u := range us {
			if tombs.Get([]byte(u.id)) != nil {
				if u.erased = s.tombstoned(tombs, u.id, now); u.erased {
					continue
				}
				if err := tombs.Delete([]byte(u.id)); err != nil { // expired
					return fmt.Errorf("remove expired tombstone of %q: %w", u.id, err)
				}
			}
			u.old = profiles.Get([]byte(u.id))
			live = append(live, u)
		}
		parallel.For(len(live), func(i int) { s.fold(live[i], batches, out) })
		for _, u := range live {
			if u.err != nil {
				return u.err
			}
		}
		recheck := tx.Bucket(bucketRecheck)
		var journal *journalEntries // made at the first purchase
		var ds []store.Delta
		for _, u := range live {
			if err := profiles.Put([]byte(u.id), u.enc); err != nil {
				return fmt.Errorf("put profile %q: %w", u.id, err)
			}
			if err := reindex(seen, u.oldSeen, timeKey(u.final.LastSeen, u.id)); err != nil {
				return fmt.Errorf("index the last visit of profile %q: %w", u.id, err)
			}
			if err := reindex(recheck, u.oldRecheck, recheckKey(u.final, u.id)); err != nil {
				return fmt.Errorf("index the recheck of profile %q: %w", u.id, err)
			}
			if len(u.purchases) > 0 {
				if journal == nil {
					journal = newJournalEntries(tx, time.Now())
				}
				if err := journal.put(u.purchases); err != nil {
					return err
				}
			}
			ds = append(ds, u.delta...)
		}
		return addCounts(tx.Bucket(bucketCounts), ds)
	})
}

// fold decodes u's profile, applies its batches, encodes the result,
// takes the purchases it applied and works out the change of the counts:
// store.CountDelta of the stored profile and the result, taken from the
// count keys of the stored profile before it is folded in place.
func (s *Store) fold(u *update, batches []store.Batch, out []*store.Profile) {
	p := store.New(u.id)
	var wasBuf, nowBuf [16]string
	var was []string
	if u.old != nil {
		var err error
		if p, err = store.Unmarshal(u.old); err != nil { // copies u.old
			u.err = fmt.Errorf("profile %q: %w", u.id, err)
			return
		}
		u.oldSeen = timeKey(p.LastSeen, u.id)
		u.oldRecheck = recheckKey(p, u.id)
		if p.Counted { // an uncounted profile counts for nothing, as in CountDelta
			was = store.CountKeys(wasBuf[:0], p)
		}
		u.old = nil
	}
	p.Counted = true
	u.final = fold.Batches(s.lim, p, batches, u.idx, out)
	u.purchases = u.final.TakePurchases()
	u.delta = store.KeyDelta(was, store.CountKeys(nowBuf[:0], u.final))
	u.buf = bufpool.Get()
	u.enc, u.err = fold.Encode(u.buf, u.final)
}

// reindex moves a profile's entry in the index b from the key was to the
// key now, either of which may be nil for no entry.
func reindex(b *bbolt.Bucket, was, now []byte) error {
	if bytes.Equal(was, now) {
		return nil
	}
	if was != nil {
		if err := b.Delete(was); err != nil {
			return err
		}
	}
	if now != nil {
		return b.Put(now, nil)
	}
	return nil
}

// addCounts adds ds, in any order and with repeated keys, to the counts
// bucket, deleting the counts that fall to zero.
func addCounts(counts *bbolt.Bucket, ds []store.Delta) error {
	if len(ds) == 0 {
		return nil
	}
	slices.SortFunc(ds, func(a, b store.Delta) int { return strings.Compare(a.Key, b.Key) })
	for i := 0; i < len(ds); {
		key, n := ds[i].Key, int64(0)
		for ; i < len(ds) && ds[i].Key == key; i++ {
			n += ds[i].N
		}
		if n == 0 {
			continue
		}
		k := []byte(key)
		if v := counts.Get(k); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("malformed count %q: %d bytes, want 8", key, len(v))
			}
			n += int64(binary.BigEndian.Uint64(v))
		}
		var err error
		if n == 0 {
			err = counts.Delete(k)
		} else {
			err = counts.Put(k, binary.BigEndian.AppendUint64(nil, uint64(n)))
		}
		if err != nil {
			return fmt.Errorf("count %q: %w", key, err)
		}
	}
	return nil
}

// recheckKey returns the recheck index key of p, stored under id, or nil
// if p has no Recheck.
func recheckKey(p *store.Profile, id string) []byte {
	if p.Recheck.IsZero() {
		return nil
	}
	return timeKey(p.Recheck, id)
}

// tombstoned reports whether id has a tombstone that lives at now.
func (s *Store) tombstoned(tombs *bbolt.Bucket, id string, now time.Time) bool {
	v := tombs.Get([]byte(id))
	return len(v) == 8 && now.UnixNano() < int64(binary.BigEndian.Uint64(v))
}

// Delete removes the profile and its purchases from the journal, and
// leaves (or renews) its tombstone, in one transaction; a missing id is
// not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := store.Check(ctx, s.closed.Load(), id); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		until := binary.BigEndian.AppendUint64(nil, uint64(time.Now().Add(s.tombTTL).UnixNano()))
		if err := tx.Bucket(bucketTombs).Put([]byte(id), until); err != nil {
			return fmt.Errorf("put tombstone: %w", err)
		}
		if err := unjournal(tx, id); err != nil {
			return err
		}
		profiles := tx.Bucket(bucketProfiles)
		b := profiles.Get([]byte(id))
		if b == nil {
			return nil
		}
		seen, recheck := tx.Bucket(bucketLastSeen), tx.Bucket(bucketRecheck)
		p, err := store.Unmarshal(b)
		if err != nil {
			// An undecodable profile is still erased: its index entries
			// are found the slow way. What it counted for cannot be known.
			if err := deleteIndexOf(seen, id); err != nil {
				return err
			}
			if err := deleteIndexOf(recheck, id); err != nil {
				return err
			}
			return profiles.Delete([]byte(id))
		}
		if err := seen.Delete(timeKey(p.LastSeen, id)); err != nil {
			return err
		}
		if err := reindex(recheck, recheckKey(p, id), nil); err != nil {
			return err
		}
		if err := addCounts(tx.Bucket(bucketCounts), store.CountDelta(p, nil)); err != nil {
			return err
		}
		return profiles.Delete([]byte(id))
	})
	if err != nil {
		return s.wrap(err, "delete profile %q", id)
	}
	s.notify(store.Change{ID: id, Deleted: true})
	return nil
}

// deleteIndexOf deletes the entries of id in the index b (lastseen or
// recheck) by walking the whole index.
func deleteIndexOf(b *bbolt.Bucket, id string) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) >= timeLen && string(k[timeLen:]) == id {
			keys = append(keys, bytes.Clone(k))
		}
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Range calls fn with every profile, in the order of their ids' bytes. It
// reads the file in short read transactions, so fn may call the store
// (bbolt deadlocks a goroutine that writes while it holds a read
// transaction) and writers are not held up; a profile changed or added
// during Range may be seen in either state, or not at all if added before
// the current position.
func (s *Store) Range(ctx context.Context, fn func(*store.Profile) bool) error {
	var after []byte
	for {
		if s.closed.Load() {
			return store.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var chunk []*store.Profile
		err := s.db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucketProfiles).Cursor()
			var k, v []byte
			if after == nil {
				k, v = c.First()
			} else if k, v = c.Seek(after); bytes.Equal(k, after) {
				k, v = c.Next()
			}
			for ; k != nil && len(chunk) < rangeChunk; k, v = c.Next() {
				p, err := store.Unmarshal(v)
				if err != nil {
					return fmt.Errorf("profile %q: %w", k, err)
				}
				chunk = append(chunk, p)
				after = append(after[:0], k...)
			}
			return nil
		})
		if err != nil {
			return s.wrap(err, "range over profiles")
		}
		for _, p := range chunk {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !fn(p) {
				return nil
			}
		}
		if len(chunk) < rangeChunk {
			return nil
		}
	}
}

// Expire deletes the profiles last seen before before and returns how many
// it deleted. It walks the lastseen index, decoding each profile it
// deletes to take it out of the counts and the recheck index, removes its
// purchases from the journal, and deletes in transactions of up to 1024
// profiles so that it does not hold up writers for long; when it returns an error, the count is of the
// profiles deleted until then. It first removes the tombstones whose TTL
// has passed, which it does not count.
func (s *Store) Expire(ctx context.Context, before time.Time) (int, error) {
	if err := s.sweepTombstones(ctx); err != nil {
		return 0, err
	}
	limit := timeKey(before, "")
	total := 0
	for {
		if s.closed.Load() {
			return total, store.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var ids []string
		err := s.db.Update(func(tx *bbolt.Tx) error {
			ids = ids[:0]
			seen, profiles := tx.Bucket(bucketLastSeen), tx.Bucket(bucketProfiles)
			type expired struct {
				key, id []byte // the lastseen key; the id, part of it
				old     []byte // the stored profile, valid in the transaction
				p       *store.Profile
				err     error
			}
			var es []expired
			c := seen.Cursor()
			for k, _ := c.First(); k != nil && len(es) < expireChunk; k, _ = c.Next() {
				if len(k) < timeLen {
					return fmt.Errorf("malformed index key %q", k)
				}
				if bytes.Compare(k[:timeLen], limit) >= 0 {
					break
				}
				k = bytes.Clone(k)
				es = append(es, expired{key: k, id: k[timeLen:], old: profiles.Get(k[timeLen:])})
			}
			// Nothing is written yet, so the stored values stay valid.
			parallel.For(len(es), func(i int) {
				if e := &es[i]; e.old != nil {
					e.p, e.err = store.Unmarshal(e.old)
					e.old = nil
				}
			})
			recheck := tx.Bucket(bucketRecheck)
			var ds []store.Delta
			for _, e := range es {
				if err := seen.Delete(e.key); err != nil {
					return err
				}
				switch {
				case e.p != nil:
					if err := reindex(recheck, recheckKey(e.p, string(e.id)), nil); err != nil {
						return err
					}
					ds = append(ds, store.CountDelta(e.p, nil)...)
				case e.err != nil: // undecodable: what it counted for cannot be known
					if err := deleteIndexOf(recheck, string(e.id)); err != nil {
						return err
					}
				}
				if err := profiles.Delete(e.id); err != nil {
					return err
				}
				if err := unjournal(tx, string(e.id)); err != nil {
					return err
				}
				ids = append(ids, string(e.id))
			}
			return addCounts(tx.Bucket(bucketCounts), ds)
		})
		if err != nil {
			return total, s.wrap(err, "expire profiles last seen before %s", before.Format(time.RFC3339))
		}
		total += len(ids)
		for _, id := range ids {
			s.notify(store.Change{ID: id})
		}
		if len(ids) < expireChunk {
			return total, nil
		}
	}
}

// sweepTombstones removes the expired tombstones, up to expireChunk per
// write transaction.
func (s *Store) sweepTombstones(ctx context.Context) error {
	for {
		if s.closed.Load() {
			return store.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		full := false
		err := s.db.Update(func(tx *bbolt.Tx) error {
			tombs := tx.Bucket(bucketTombs)
			now := time.Now()
			var keys [][]byte
			c := tombs.Cursor()
			for k, _ := c.First(); k != nil && len(keys) < expireChunk; k, _ = c.Next() {
				if !s.tombstoned(tombs, string(k), now) {
					keys = append(keys, bytes.Clone(k))
				}
			}
			full = len(keys) == expireChunk
			for _, k := range keys {
				if err := tombs.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return s.wrap(err, "remove expired tombstones")
		}
		if !full {
			return nil
		}
	}
}

// Subscribe calls fn with every change of a profile this store makes
// (applies, deletes, expires) and every document it puts, after the change
// is committed, until ctx is done. fn is called in the goroutine that made the change, so it must be
// quick; it may call the store. Only this process can have the file open,
// so these are all the changes.
func (s *Store) Subscribe(ctx context.Context, fn func(store.Change)) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	n := s.nextSub
	s.nextSub++
	s.subs[n] = subscriber{ctx, fn}
	s.mu.Unlock()
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		delete(s.subs, n)
		s.mu.Unlock()
	})
	return nil
}

func (s *Store) notify(c store.Change) {
	s.mu.Lock()
	if len(s.subs) == 0 {
		s.mu.Unlock()
		return
	}
	subs := make([]subscriber, 0, len(s.subs))
	for _, sub := range s.subs {
		subs = append(subs, sub)
	}
	s.mu.Unlock()
	for _, sub := range subs {
		if sub.ctx.Err() == nil {
			sub.fn(c)
		}
	}
}

// Close closes the file, waiting for transactions in progress; later calls
// return store.ErrClosed. Closing twice is not an error.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.Lock()
	clear(s.subs)
	s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("tailor/store/bolt: close %s: %w", s.path, err)
	}
	return nil
}

// wrap turns err from a transaction into the error a method returns:
// sentinel and context errors as they are, bbolt's "not open" as
// store.ErrClosed, anything else prefixed with the operation.
func (s *Store) wrap(err error, op string, args ...any) error {
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return store.ErrClosed
	}
	return fmt.Errorf("tailor/store/bolt: %s: %w", fmt.Sprintf(op, args...), err)
}

// timeLen is the length of the time prefix of a lastseen key.
const timeLen = 12

// seenKey returns the lastseen index key of a profile: t's seconds since
// the Unix epoch with the sign bit flipped and its nanoseconds, both
// big-endian so that keys sort in time order, then the id.
func timeKey(t time.Time, id string) []byte {
	k := make([]byte, timeLen+len(id))
	binary.BigEndian.PutUint64(k, uint64(t.Unix())^(1<<63))
	binary.BigEndian.PutUint32(k[8:], uint32(t.Nanosecond()))
	copy(k[timeLen:], id)
	return k
}

// Lease implements store.Leaser. Only one process can open the file, so
// the leases live in this Store, not in the file: every job runs here.
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	return s.leases.Lease(ctx, s.closed.Load(), name, holder, ttl)
}

// Release implements store.Leaser.
func (s *Store) Release(ctx context.Context, name, holder string) error {
	return s.leases.Release(ctx, s.closed.Load(), name, holder)
}

// Counts implements store.Counter: it reads the counts bucket in one read
// transaction, so the counts are those of one committed state.
func (s *Store) Counts(ctx context.Context) (map[string]int64, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m := make(map[string]int64)
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketCounts).ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("malformed count %q: %d bytes, want 8", k, len(v))
			}
			m[string(k)] = int64(binary.BigEndian.Uint64(v))
			return nil
		})
	})
	if err != nil {
		return nil, s.wrap(err, "read counts")
	}
	return m, nil
}

// Due implements store.Rechecker by walking the recheck index from its
// start, which is in order of Recheck and then of id.
func (s *Store) Due(ctx context.Context, t time.Time, max int) ([]string, error) {
	if err := store.CheckScan(ctx, s.closed.Load(), max); err != nil {
		return nil, err
	}
	limit := timeKey(t, "")
	var ids []string
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketRecheck).Cursor()
		for k, _ := c.First(); k != nil && len(ids) < max; k, _ = c.Next() {
			if len(k) < timeLen {
				return fmt.Errorf("malformed recheck key %q", k)
			}
			if bytes.Compare(k[:timeLen], limit) > 0 {
				break
			}
			ids = append(ids, string(k[timeLen:]))
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap(err, "find profiles due for a recheck at %s", t.Format(time.RFC3339Nano))
	}
	return ids, nil
}

// Scan implements store.Scanner: pages in order of the ids' bytes, the
// cursor being the last id of the page. Like Range, it reads at most
// rangeChunk profiles per read transaction, so that a large page does not
// hold up a writer that must grow the file.
func (s *Store) Scan(ctx context.Context, cursor string, max int) ([]*store.Profile, string, error) {
	if err := store.CheckScan(ctx, s.closed.Load(), max); err != nil {
		return nil, "", err
	}
	after := []byte(cursor)
	var out []*store.Profile
	more := true
	for more && len(out) < max {
		if s.closed.Load() {
			return nil, "", store.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		err := s.db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucketProfiles).Cursor()
			var k, v []byte
			if len(after) == 0 {
				k, v = c.First()
			} else if k, v = c.Seek(after); bytes.Equal(k, after) {
				k, v = c.Next()
			}
			for n := min(max-len(out), rangeChunk); k != nil && n > 0; k, v = c.Next() {
				p, err := store.Unmarshal(v)
				if err != nil {
					return fmt.Errorf("profile %q: %w", k, err)
				}
				out = append(out, p)
				after = append(after[:0], k...)
				n--
			}
			more = k != nil
			return nil
		})
		if err != nil {
			return nil, "", s.wrap(err, "scan profiles after %q", cursor)
		}
	}
	if !more {
		return out, "", nil
	}
	return out, string(after), nil
}

// Document implements store.Documents.
func (s *Store) Document(ctx context.Context, name string) ([]byte, error) {
	if err := store.CheckDocument(ctx, s.closed.Load(), name, 0); err != nil {
		return nil, err
	}
	var data []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		// A cursor, not Get, tells an empty document from none.
		k, v := tx.Bucket(bucketDocs).Cursor().Seek([]byte(name))
		if !bytes.Equal(k, []byte(name)) {
			return store.ErrNotFound
		}
		data = append([]byte{}, v...) // v is only valid in tx
		return nil
	})
	if err != nil {
		return nil, s.wrap(err, "read document %q", name)
	}
	return data, nil
}

// PutDocument implements store.Documents: the document is written, and
// durable, when it returns. It is announced to the subscribers (see
// Subscribe) once committed.
func (s *Store) PutDocument(ctx context.Context, name string, data []byte) error {
	if err := store.CheckDocument(ctx, s.closed.Load(), name, len(data)); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return tx.Bucket(bucketDocs).Put([]byte(name), data)
	})
	if err != nil {
		return s.wrap(err, "put document %q of %d bytes", name, len(data))
	}
	s.notify(store.Change{Document: name})
	return nil
}
