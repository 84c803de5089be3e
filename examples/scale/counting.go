package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/store"
)

// calls counts the calls made to a store, per method, and the profiles
// that the reading methods returned, so that a phase of the run can tell
// whether it read every profile.
type calls struct {
	Load, Apply, ApplyBatch, Delete       atomic.Int64
	Range, Scan, Expire, Subscribe        atomic.Int64
	Counts, Due, Document, PutDocument    atomic.Int64
	Lease, Release                        atomic.Int64
	Batches                               atomic.Int64 // profiles written by ApplyBatch
	Ranged, RangedFull, Scanned, Rechecks atomic.Int64 // profiles Range and Scan returned; Ranges run to the end; ids Due returned
}

// callCounts is a snapshot of calls.
type callCounts struct {
	Load, Apply, ApplyBatch, Delete       int64
	Range, Scan, Expire, Subscribe        int64
	Counts, Due, Document, PutDocument    int64
	Lease, Release                        int64
	Batches                               int64
	Ranged, RangedFull, Scanned, Rechecks int64
}

func (c *calls) snapshot() callCounts {
	return callCounts{
		Load: c.Load.Load(), Apply: c.Apply.Load(), ApplyBatch: c.ApplyBatch.Load(), Delete: c.Delete.Load(),
		Range: c.Range.Load(), Scan: c.Scan.Load(), Expire: c.Expire.Load(), Subscribe: c.Subscribe.Load(),
		Counts: c.Counts.Load(), Due: c.Due.Load(), Document: c.Document.Load(), PutDocument: c.PutDocument.Load(),
		Lease: c.Lease.Load(), Release: c.Release.Load(), Batches: c.Batches.Load(),
		Ranged: c.Ranged.Load(), RangedFull: c.RangedFull.Load(), Scanned: c.Scanned.Load(), Rechecks: c.Rechecks.Load(),
	}
}

// sub returns the calls made between snapshot b and a.
func (a callCounts) sub(b callCounts) callCounts {
	return callCounts{
		Load: a.Load - b.Load, Apply: a.Apply - b.Apply, ApplyBatch: a.ApplyBatch - b.ApplyBatch, Delete: a.Delete - b.Delete,
		Range: a.Range - b.Range, Scan: a.Scan - b.Scan, Expire: a.Expire - b.Expire, Subscribe: a.Subscribe - b.Subscribe,
		Counts: a.Counts - b.Counts, Due: a.Due - b.Due, Document: a.Document - b.Document, PutDocument: a.PutDocument - b.PutDocument,
		Lease: a.Lease - b.Lease, Release: a.Release - b.Release, Batches: a.Batches - b.Batches,
		Ranged: a.Ranged - b.Ranged, RangedFull: a.RangedFull - b.RangedFull, Scanned: a.Scanned - b.Scanned, Rechecks: a.Rechecks - b.Rechecks,
	}
}

// reads describes the reads of profiles: Range, Scan and Load.
func (a callCounts) reads() string {
	return fmt.Sprintf("Range %d (%d profiles, %d run to the end), Scan %d (%d profiles), Load %d",
		a.Range, a.Ranged, a.RangedFull, a.Scan, a.Scanned, a.Load)
}

// others describes the other calls that were made, or "none".
func (a callCounts) others() string {
	var parts []string
	for _, c := range []struct {
		name string
		n    int64
	}{
		{"Apply", a.Apply}, {"ApplyBatch", a.ApplyBatch}, {"Delete", a.Delete}, {"Expire", a.Expire},
		{"Counts", a.Counts}, {"Due", a.Due}, {"Document", a.Document}, {"PutDocument", a.PutDocument},
		{"Lease", a.Lease}, {"Release", a.Release}, {"Subscribe", a.Subscribe},
	} {
		if c.n != 0 {
			s := fmt.Sprintf("%s %d", c.name, c.n)
			switch c.name {
			case "ApplyBatch":
				s += fmt.Sprintf(" (%d profiles)", a.Batches)
			case "Due":
				s += fmt.Sprintf(" (%d ids)", a.Rechecks)
			}
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// basicStore is what every store of tailor implements.
type basicStore interface {
	store.Store
	store.BatchApplier
	store.Ranger
	store.Expirer
	store.Invalidator
}

// counting wraps a store and counts its calls. It implements the optional
// interfaces of basicStore, which the middleware and the shop look for
// with type assertions, and the store's limits (store.LimitsOf).
type counting struct {
	basicStore
	c *calls
}

// countingLease is counting for a store that also holds leases.
type countingLease struct {
	counting
	l store.Leaser
}

// countingAgg is countingLease for a store that also keeps aggregates, with
// the interfaces the middleware's segment jobs and Aggregates look for.
type countingAgg struct {
	countingLease
	agg aggStore
}

// aggStore is what a store that keeps aggregates implements besides
// basicStore and store.Leaser.
type aggStore interface {
	store.Counter
	store.Rechecker
	store.Scanner
	store.Documents
}

var (
	_ basicStore   = (*counting)(nil)
	_ store.Leaser = (*countingLease)(nil)
	_ aggStore     = (*countingAgg)(nil)
	_ store.Leaser = (*countingAgg)(nil)
)

// countCalls wraps s, counting its calls into c. The wrapper implements
// the same optional interfaces as s, which must be one of the three kinds
// tailor's stores are or were: basicStore; basicStore and store.Leaser; or
// those and aggStore. Another mix is refused, as the wrapper would hide
// part of it and change what the shop does.
func countCalls(s store.Store, c *calls) (store.Store, error) {
	b, ok := s.(basicStore)
	if !ok {
		return nil, fmt.Errorf("store %T lacks one of Store, BatchApplier, Ranger, Expirer, Invalidator", s)
	}
	w := counting{basicStore: b, c: c}
	l, leases := s.(store.Leaser)
	a, aggs := s.(aggStore)
	switch {
	case leases && aggs:
		return &countingAgg{countingLease{w, l}, a}, nil
	case leases && !is[store.Counter](s) && !is[store.Rechecker](s) && !is[store.Scanner](s) && !is[store.Documents](s):
		return &countingLease{w, l}, nil
	case !leases && !is[store.Counter](s) && !is[store.Rechecker](s) && !is[store.Scanner](s) && !is[store.Documents](s):
		return &w, nil
	}
	return nil, fmt.Errorf("store %T implements a part of Leaser, Counter, Rechecker, Scanner, Documents: the counting wrapper cannot forward a part", s)
}

func is[T any](s store.Store) bool { _, ok := s.(T); return ok }

// Limits returns the wrapped store's limits, so that the middleware bounds
// profiles as the store does.
func (w *counting) Limits() store.Limits { return store.LimitsOf(w.basicStore) }

func (w *counting) Load(ctx context.Context, id string) (*store.Profile, error) {
	w.c.Load.Add(1)
	return w.basicStore.Load(ctx, id)
}

func (w *counting) Apply(ctx context.Context, id string, events []store.Event) (*store.Profile, error) {
	w.c.Apply.Add(1)
	return w.basicStore.Apply(ctx, id, events)
}

func (w *counting) ApplyBatch(ctx context.Context, batches []store.Batch) ([]*store.Profile, error) {
	w.c.ApplyBatch.Add(1)
	w.c.Batches.Add(int64(len(batches)))
	return w.basicStore.ApplyBatch(ctx, batches)
}

func (w *counting) Delete(ctx context.Context, id string) error {
	w.c.Delete.Add(1)
	return w.basicStore.Delete(ctx, id)
}

func (w *counting) Range(ctx context.Context, fn func(*store.Profile) bool) error {
	w.c.Range.Add(1)
	stopped := false
	err := w.basicStore.Range(ctx, func(p *store.Profile) bool {
		w.c.Ranged.Add(1)
		if !fn(p) {
			stopped = true
			return false
		}
		return true
	})
	if err == nil && !stopped {
		w.c.RangedFull.Add(1)
	}
	return err
}

func (w *counting) Expire(ctx context.Context, before time.Time) (int, error) {
	w.c.Expire.Add(1)
	return w.basicStore.Expire(ctx, before)
}

func (w *counting) Subscribe(ctx context.Context, fn func(store.Change)) error {
	w.c.Subscribe.Add(1)
	return w.basicStore.Subscribe(ctx, fn)
}

func (w *countingAgg) Counts(ctx context.Context) (map[string]int64, error) {
	w.c.Counts.Add(1)
	return w.agg.Counts(ctx)
}

func (w *countingAgg) Due(ctx context.Context, t time.Time, max int) ([]string, error) {
	w.c.Due.Add(1)
	ids, err := w.agg.Due(ctx, t, max)
	w.c.Rechecks.Add(int64(len(ids)))
	return ids, err
}

func (w *countingAgg) Scan(ctx context.Context, cursor string, max int) ([]*store.Profile, string, error) {
	w.c.Scan.Add(1)
	profs, next, err := w.agg.Scan(ctx, cursor, max)
	w.c.Scanned.Add(int64(len(profs)))
	return profs, next, err
}

func (w *countingAgg) Document(ctx context.Context, name string) ([]byte, error) {
	w.c.Document.Add(1)
	return w.agg.Document(ctx, name)
}

func (w *countingAgg) PutDocument(ctx context.Context, name string, data []byte) error {
	w.c.PutDocument.Add(1)
	return w.agg.PutDocument(ctx, name, data)
}

func (w *countingLease) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	w.c.Lease.Add(1)
	return w.l.Lease(ctx, name, holder, ttl)
}

func (w *countingLease) Release(ctx context.Context, name, holder string) error {
	w.c.Release.Add(1)
	return w.l.Release(ctx, name, holder)
}
