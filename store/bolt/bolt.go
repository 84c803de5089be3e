// Package bolt is a store.Store that keeps profiles in one file on the local
// disk, with go.etcd.io/bbolt. It is tailor's default store for a site that
// runs as one process.
//
// # Layout
//
// The file holds four buckets:
//
//   - "profiles": profile id → the profile encoded with store.Marshal.
//   - "lastseen": the index that Expire walks: a key of the profile's
//     LastSeen (12 bytes that sort in time order) followed by its id, with an
//     empty value. It is updated in the same transaction as the profile.
//   - "tombstones": the id of a profile erased by Delete → when its
//     tombstone expires, in Unix nanoseconds (8 bytes, big-endian).
//   - "meta": the layout's version, checked by Open.
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
// opened, so a profile and its lastseen index entry never disagree.
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

// layoutVersion is stored in the meta bucket; Open refuses other versions.
const layoutVersion = "1"

var (
	bucketProfiles = []byte("profiles")
	bucketLastSeen = []byte("lastseen")
	bucketTombs    = []byte("tombstones")
	bucketMeta     = []byte("meta")
	keyLayout      = []byte("layout")
)

// rangeChunk is how many profiles Range reads per read transaction, and
// expireChunk how many Expire deletes per write transaction.
const (
	rangeChunk  = 128
	expireChunk = 1024
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
		case string(v) != layoutVersion:
			return fmt.Errorf("layout version %q, this version of tailor reads %q", v, layoutVersion)
		}
		for _, b := range [][]byte{bucketProfiles, bucketLastSeen, bucketTombs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("tailor/store/bolt: open %s: %w", path, err)
	}
	return &Store{db: db, path: path, lim: opts.Limits.WithDefaults(), tombTTL: tombTTL, subs: make(map[int]subscriber)}, nil
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
	oldSeen []byte // the stored index key; nil if new
	final   *store.Profile
	buf     *[]byte // holds enc; back to the pool once the transaction ends
	enc     []byte
	err     error
}

// apply applies batches (ids already valid) in one write transaction and
// fills out, leaving nil the profiles of ids with a live tombstone. Reads
// happen first, then the folds in parallel (the transaction is not touched
// meanwhile, so the read values stay valid), then the writes.
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
		for _, u := range live {
			if err := profiles.Put([]byte(u.id), u.enc); err != nil {
				return fmt.Errorf("put profile %q: %w", u.id, err)
			}
			newSeen := seenKey(u.final.LastSeen, u.id)
			if bytes.Equal(newSeen, u.oldSeen) {
				continue
			}
			if u.oldSeen != nil {
				if err := seen.Delete(u.oldSeen); err != nil {
					return fmt.Errorf("index profile %q: %w", u.id, err)
				}
			}
			if err := seen.Put(newSeen, nil); err != nil {
				return fmt.Errorf("index profile %q: %w", u.id, err)
			}
		}
		return nil
	})
}

// fold decodes u's profile, applies its batches and encodes the result.
func (s *Store) fold(u *update, batches []store.Batch, out []*store.Profile) {
	p := store.New(u.id)
	if u.old != nil {
		var err error
		if p, err = store.Unmarshal(u.old); err != nil { // copies u.old
			u.err = fmt.Errorf("profile %q: %w", u.id, err)
			return
		}
		u.oldSeen = seenKey(p.LastSeen, u.id)
		u.old = nil
	}
	u.final = fold.Batches(s.lim, p, batches, u.idx, out)
	u.buf = bufpool.Get()
	u.enc, u.err = fold.Encode(u.buf, u.final)
}

// tombstoned reports whether id has a tombstone that lives at now.
func (s *Store) tombstoned(tombs *bbolt.Bucket, id string, now time.Time) bool {
	v := tombs.Get([]byte(id))
	return len(v) == 8 && now.UnixNano() < int64(binary.BigEndian.Uint64(v))
}

// Delete removes the profile and leaves (or renews) its tombstone, in one
// transaction; a missing id is not an error.
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
		profiles := tx.Bucket(bucketProfiles)
		b := profiles.Get([]byte(id))
		if b == nil {
			return nil
		}
		seen := tx.Bucket(bucketLastSeen)
		if p, err := store.Unmarshal(b); err == nil {
			if err := seen.Delete(seenKey(p.LastSeen, id)); err != nil {
				return err
			}
		} else if err := deleteIndexOf(seen, id); err != nil {
			// An undecodable profile is still erased: find its index
			// entry the slow way.
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

// deleteIndexOf deletes the index entries of id by walking the whole index.
func deleteIndexOf(seen *bbolt.Bucket, id string) error {
	var keys [][]byte
	c := seen.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) >= seenLen && string(k[seenLen:]) == id {
			keys = append(keys, bytes.Clone(k))
		}
	}
	for _, k := range keys {
		if err := seen.Delete(k); err != nil {
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
// it deleted. It walks the lastseen index, never decoding a profile, and
// deletes in transactions of up to 1024 profiles so that it does not hold
// up writers for long; when it returns an error, the count is of the
// profiles deleted until then. It first removes the tombstones whose TTL
// has passed, which it does not count.
func (s *Store) Expire(ctx context.Context, before time.Time) (int, error) {
	if err := s.sweepTombstones(ctx); err != nil {
		return 0, err
	}
	limit := seenKey(before, "")
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
			seen := tx.Bucket(bucketLastSeen)
			var keys [][]byte
			c := seen.Cursor()
			for k, _ := c.First(); k != nil && len(keys) < expireChunk; k, _ = c.Next() {
				if len(k) < seenLen {
					return fmt.Errorf("malformed index key %q", k)
				}
				if bytes.Compare(k[:seenLen], limit) >= 0 {
					break
				}
				keys = append(keys, bytes.Clone(k))
			}
			profiles := tx.Bucket(bucketProfiles)
			for _, k := range keys {
				id := k[seenLen:]
				if err := seen.Delete(k); err != nil {
					return err
				}
				if err := profiles.Delete(id); err != nil {
					return err
				}
				ids = append(ids, string(id))
			}
			return nil
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
// (applies, deletes, expires), after the change is committed, until ctx is
// done. fn is called in the goroutine that made the change, so it must be
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

// seenLen is the length of the time prefix of a lastseen key.
const seenLen = 12

// seenKey returns the lastseen index key of a profile: t's seconds since
// the Unix epoch with the sign bit flipped and its nanoseconds, both
// big-endian so that keys sort in time order, then the id.
func seenKey(t time.Time, id string) []byte {
	k := make([]byte, seenLen+len(id))
	binary.BigEndian.PutUint64(k, uint64(t.Unix())^(1<<63))
	binary.BigEndian.PutUint32(k[8:], uint32(t.Nanosecond()))
	copy(k[seenLen:], id)
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
