package assoc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/tailorhq/tailor/store"
)

// FollowConfig configures Follow. Store is required; every other field
// documents its zero value.
type FollowConfig struct {
	// Store keeps the journal of purchases the model learns from
	// (store.Journal: required), and the model's snapshots
	// (store.Documents: without it every start learns the whole journal
	// kept, and the follower never trims the journal). Every tailor store
	// has both.
	Store store.Store
	// Document names the store document that keeps the snapshot, and the
	// lease of the instance that writes it. Default "tailor/assoc".
	Document string
	// Interval is how often the journal is read. Default 1 second.
	Interval time.Duration
	// SnapshotEvery is how often the holder of the lease writes a
	// snapshot and trims the journal of what the snapshot before it
	// holds. Default 5 minutes.
	SnapshotEvery time.Duration
	// CatchUp bounds how long Follow learns the journal after the
	// snapshot before it returns; the rest is learnt in the background.
	// Default 2 seconds.
	CatchUp time.Duration
	// Seed, if set, teaches a model that the store has no snapshot for
	// yet (made-up baskets of a demo, a model imported from elsewhere),
	// before the journal; what it learns goes into the snapshots.
	Seed func(*Model)
	// Logger receives the errors of the background work, at most once a
	// minute. Default slog.Default().
	Logger *slog.Logger
	// Learnt, if set, is called after each reading of the journal that
	// taught the model purchases, with how many: a site whose segment
	// rules consult the model tells its engine there
	// (rules.Engine.Invalidate), so that classifications remembered
	// before are made again. It is called with no lock held, from
	// Follow, Sync or the follower's goroutine.
	Learnt func(n int)
}

// DefaultFollowDocument is FollowConfig.Document when it is empty.
const DefaultFollowDocument = "tailor/assoc"

// A Follower keeps a Model learnt from the purchases of every instance
// sharing a store, without reading profiles: each purchase that a store
// applies to a profile is journaled with the profile's earlier purchases
// (store.Journal), in the same write; the follower learns the journal from
// a cursor, as Learn(Basket{Bought: prior}, Basket{Bought: items}), and
// one instance (the holder of the store's lease named Document) writes
// snapshots of the model with their cursor to a store document, from
// which a new instance starts warm: the snapshot, then the journal after
// its cursor.
//
// All instances learn the same purchases in the same order, so their
// models converge within Interval of a purchase being written. The model
// learns purchases only: views and carts are not shared, and a site that
// also calls Learn or LearnEvent on the model puts what those teach into
// the snapshots that its instance writes. Purchases journaled before the
// store kept a journal are not learnt.
//
// A profile erased (store.Store.Delete) or expired takes its purchases
// out of the journal, so a follower that has not learnt them yet never
// will; one that has keeps what they taught, in its model and its
// snapshots: counts of items bought together, which name no profile.
type Follower struct {
	m      *Model
	cfg    FollowConfig
	j      store.Journal
	docs   store.Documents // nil if the store keeps none
	holder string

	// noSnap: the store had no snapshot at start; one is written as soon
	// as the journal is learnt to its end (loop's goroutine only).
	noSnap bool

	mu      sync.Mutex // one reading of the journal at a time; guards below
	cursor  string
	learnt  int64
	snapped time.Time // when this instance last wrote a snapshot

	logMu   sync.Mutex
	logged  time.Time
	stop    chan struct{}
	done    chan struct{}
	closing sync.Once
}

// FollowStats describe a follower's progress.
type FollowStats struct {
	// Learnt counts the purchases learnt from the journal since Follow.
	Learnt int64
	// Cursor is where the next reading of the journal starts.
	Cursor string
	// Snapshot is when this instance last wrote a snapshot; zero if it
	// did not.
	Snapshot time.Time
}

// Follow loads the store's snapshot into m (or seeds m, if the store has
// none), learns the journal after it for up to CatchUp, and keeps
// learning it every Interval until Close. m is shared: query it as usual.
func Follow(ctx context.Context, m *Model, cfg FollowConfig) (*Follower, error) {
	if m == nil {
		return nil, errors.New("assoc: Follow needs a Model")
	}
	j, ok := cfg.Store.(store.Journal)
	if !ok {
		return nil, fmt.Errorf("assoc: FollowConfig.Store (%T) keeps no journal of purchases (store.Journal)", cfg.Store)
	}
	if cfg.Document == "" {
		cfg.Document = DefaultFollowDocument
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.SnapshotEvery <= 0 {
		cfg.SnapshotEvery = 5 * time.Minute
	}
	if cfg.CatchUp <= 0 {
		cfg.CatchUp = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var b [8]byte
	rand.Read(b[:])
	f := &Follower{m: m, cfg: cfg, j: j, holder: "assoc-" + hex.EncodeToString(b[:]),
		stop: make(chan struct{}), done: make(chan struct{})}
	f.docs, _ = cfg.Store.(store.Documents)
	seeded := false
	if f.docs != nil {
		data, err := f.docs.Document(ctx, cfg.Document)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("assoc: reading the snapshot %q: %w", cfg.Document, err)
		default:
			cursor, snap, err := splitSnapshot(data)
			if err == nil {
				_, err = m.ReadFrom(bytes.NewReader(snap))
			}
			switch {
			case errors.Is(err, errOldSnapshot):
				// Written by an earlier version: learn again from the
				// oldest purchase the journal keeps, and replace it.
				cfg.Logger.Warn("tailor: assoc: the model's snapshot has an earlier format; learning again from the journal",
					"document", cfg.Document, "err", err)
			case err != nil:
				return nil, fmt.Errorf("assoc: snapshot %q: %w", cfg.Document, err)
			default:
				f.cursor, seeded = cursor, true
			}
		}
	}
	f.noSnap = !seeded
	if !seeded && cfg.Seed != nil {
		cfg.Seed(m)
	}
	deadline := time.Now().Add(cfg.CatchUp)
	for time.Now().Before(deadline) {
		n, err := f.sync(ctx, 5000)
		f.learntSome(n)
		if err != nil {
			return nil, fmt.Errorf("assoc: reading the journal of purchases: %w", err)
		}
		if n == 0 {
			break
		}
	}
	go f.loop()
	return f, nil
}

// Sync learns the purchases journaled since the last reading, now.
func (f *Follower) Sync(ctx context.Context) error {
	for {
		n, err := f.sync(ctx, 5000)
		f.learntSome(n)
		if err != nil || n == 0 {
			return err
		}
	}
}

// sync learns one page of the journal, of at most max purchases, and
// returns how many it learnt.
func (f *Follower) sync(ctx context.Context, max int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ps, next, err := f.j.Purchases(ctx, f.cursor, max)
	if err != nil {
		return 0, err
	}
	for _, p := range ps {
		bought := make([]string, len(p.Items))
		for i, it := range p.Items {
			bought[i] = it.ID
			if it.Category != "" {
				f.m.SetCategory(it.ID, it.Category)
			}
		}
		f.m.Learn(Basket{Bought: p.Prior}, Basket{Bought: bought})
	}
	f.cursor = next
	f.learnt += int64(len(ps))
	return len(ps), nil
}

// learntSome calls FollowConfig.Learnt after a reading that learnt n.
func (f *Follower) learntSome(n int) {
	if n > 0 && f.cfg.Learnt != nil {
		f.cfg.Learnt(n)
	}
}

// Stats returns the follower's progress.
func (f *Follower) Stats() FollowStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return FollowStats{Learnt: f.learnt, Cursor: f.cursor, Snapshot: f.snapped}
}

// Close stops the follower and gives up its lease; the model keeps what
// it learnt.
func (f *Follower) Close() error {
	f.closing.Do(func() { close(f.stop) })
	<-f.done
	if l, ok := f.cfg.Store.(store.Leaser); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.Release(ctx, f.cfg.Document, f.holder); err != nil && !errors.Is(err, store.ErrClosed) {
			return fmt.Errorf("assoc: releasing the lease %q: %w", f.cfg.Document, err)
		}
	}
	return nil
}

func (f *Follower) loop() {
	defer close(f.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-f.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(f.cfg.Interval)
	defer t.Stop()
	last := time.Now() // the first snapshot waits SnapshotEvery, as the next ones
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		if err := f.Sync(ctx); err != nil {
			f.failed("reading the journal of purchases", err)
			continue
		}
		if f.docs != nil && (f.noSnap || time.Since(last) >= f.cfg.SnapshotEvery) {
			// The first snapshot of a store that had none is written
			// once the journal is learnt, so that the next start is warm.
			f.noSnap = false
			last = time.Now()
			if err := f.snapshot(ctx); err != nil {
				f.failed("writing a snapshot", err)
			}
		}
	}
}

// snapshot writes the model and its cursor to the store, if this instance
// holds the lease, then trims the journal of what the previous snapshot
// held.
func (f *Follower) snapshot(ctx context.Context) error {
	if l, ok := f.cfg.Store.(store.Leaser); ok {
		held, err := l.Lease(ctx, f.cfg.Document, f.holder, 3*f.cfg.SnapshotEvery)
		if err != nil || !held {
			return err
		}
	}
	return f.WriteSnapshot(ctx)
}

// WriteSnapshot writes the model and its cursor to the store document now,
// whoever holds the lease, and trims the journal of the purchases
// journaled SnapshotEvery before the previous snapshot this instance
// wrote.
func (f *Follower) WriteSnapshot(ctx context.Context) error {
	if f.docs == nil {
		return fmt.Errorf("assoc: the store (%T) keeps no documents (store.Documents)", f.cfg.Store)
	}
	// The cursor and the counts must agree: no learning from the journal
	// meanwhile.
	f.mu.Lock()
	var buf bytes.Buffer
	buf.WriteString(followMagic)
	var n [binary.MaxVarintLen64]byte
	buf.Write(n[:binary.PutUvarint(n[:], uint64(len(f.cursor)))])
	buf.WriteString(f.cursor)
	_, err := f.m.WriteTo(&buf)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	now := time.Now()
	if err := f.docs.PutDocument(ctx, f.cfg.Document, buf.Bytes()); err != nil {
		return err
	}
	f.mu.Lock()
	prev := f.snapped
	f.snapped = now
	f.mu.Unlock()
	if prev.IsZero() {
		return nil
	}
	// What was journaled well before the previous snapshot is in this
	// one (a write's transaction lasts seconds, not SnapshotEvery).
	return f.j.TrimPurchases(ctx, prev.Add(-f.cfg.SnapshotEvery))
}

// followMagic starts a follower's snapshot document: then the cursor (a
// uvarint length and its bytes), then the model's snapshot (WriteTo).
const followMagic = "tailor-assoc-follow\x01"

func splitSnapshot(data []byte) (cursor string, snap []byte, err error) {
	rest, ok := bytes.CutPrefix(data, []byte(followMagic))
	if !ok {
		return "", nil, fmt.Errorf("%w: not a follower's snapshot", ErrSnapshot)
	}
	l, k := binary.Uvarint(rest)
	if k <= 0 || uint64(len(rest)-k) < l {
		return "", nil, fmt.Errorf("%w: cursor", ErrSnapshot)
	}
	return string(rest[k : k+int(l)]), rest[k+int(l):], nil
}

func (f *Follower) failed(what string, err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, store.ErrClosed) || errors.Is(err, io.EOF) {
		return
	}
	f.logMu.Lock()
	defer f.logMu.Unlock()
	if time.Since(f.logged) < time.Minute {
		return
	}
	f.logged = time.Now()
	f.cfg.Logger.Warn("tailor/assoc: "+what+" failed; retrying", "err", err)
}
