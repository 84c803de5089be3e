package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/store"
)

// What calls counts: the calls of each method of a store, and what the
// reading methods returned.
const (
	cLoad = iota
	cApply
	cApplyBatch
	cDelete
	cRange
	cScan
	cExpire
	cSubscribe
	cCounts
	cDue
	cDocument
	cPutDocument
	cLease
	cRelease
	cPurchases
	cTrimPurchases
	nMethods // the counts above are of calls, by method; those below are not

	cBatches    = iota - 1 // profiles written by ApplyBatch
	cRanged                // profiles Range visited
	cRangedFull            // Ranges that ran to the end
	cScanned               // profiles Scan returned
	cRechecks              // ids Due returned
	cJournaled             // purchases Purchases returned
	nCounts
)

var methodNames = [nMethods]string{"Load", "Apply", "ApplyBatch", "Delete", "Range", "Scan", "Expire", "Subscribe",
	"Counts", "Due", "Document", "PutDocument", "Lease", "Release", "Purchases", "TrimPurchases"}

// calls counts the calls made to a store, per method, and the profiles
// that the reading methods returned, so that a phase of the run can tell
// whether it read every profile. A call counts when it returns, but a
// Range when it begins, and its profiles as they are visited, so that a
// long Range shows while it runs.
type calls struct{ n [nCounts]atomic.Int64 }

func (c *calls) add(i int, n int64) { c.n[i].Add(n) }

// callCounts is a snapshot of calls.
type callCounts [nCounts]int64

func (c *calls) snapshot() callCounts {
	var out callCounts
	for i := range c.n {
		out[i] = c.n[i].Load()
	}
	return out
}

// sub returns the calls made between snapshot b and a.
func (a callCounts) sub(b callCounts) callCounts {
	for i := range a {
		a[i] -= b[i]
	}
	return a
}

// reads describes the reads of profiles: Range, Scan and Load.
func (a callCounts) reads() string {
	return fmt.Sprintf("Range %d (%d profiles, %d run to the end), Scan %d (%d profiles), Load %d",
		a[cRange], a[cRanged], a[cRangedFull], a[cScan], a[cScanned], a[cLoad])
}

// others describes the other calls that were made, or "none".
func (a callCounts) others() string {
	var parts []string
	for i, name := range methodNames {
		if a[i] == 0 || i == cRange || i == cScan || i == cLoad {
			continue
		}
		s := fmt.Sprintf("%s %d", name, a[i])
		switch i {
		case cApplyBatch:
			s += fmt.Sprintf(" (%d profiles)", a[cBatches])
		case cDue:
			s += fmt.Sprintf(" (%d ids)", a[cRechecks])
		case cPurchases:
			s += fmt.Sprintf(" (%d purchases)", a[cJournaled])
		}
		parts = append(parts, s)
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

// countingJournal is countingAgg for a store that also keeps a journal of
// purchases, which recommendation models follow (rules/assoc).
type countingJournal struct {
	countingAgg
	j store.Journal
}

var (
	_ basicStore    = (*counting)(nil)
	_ store.Leaser  = (*countingLease)(nil)
	_ aggStore      = (*countingAgg)(nil)
	_ store.Leaser  = (*countingAgg)(nil)
	_ store.Journal = (*countingJournal)(nil)
	_ aggStore      = (*countingJournal)(nil)
)

// countCalls wraps s, counting its calls into c. The wrapper implements
// the same optional interfaces as s, which must be one of the kinds
// tailor's stores are or were, each adding to the one before: basicStore;
// and store.Leaser; and aggStore; and store.Journal. Another mix is
// refused, as the wrapper would hide a part of it and change what the shop
// does.
func countCalls(s store.Store, c *calls) (store.Store, error) {
	b, ok := s.(basicStore)
	if !ok {
		return nil, fmt.Errorf("store %T lacks one of Store, BatchApplier, Ranger, Expirer, Invalidator", s)
	}
	w := counting{basicStore: b, c: c}
	l, leases := s.(store.Leaser)
	a, aggs := s.(aggStore)
	j, journal := s.(store.Journal)
	someAgg := is[store.Counter](s) || is[store.Rechecker](s) || is[store.Scanner](s) || is[store.Documents](s)
	switch {
	case leases && aggs && journal:
		return &countingJournal{countingAgg{countingLease{w, l}, a}, j}, nil
	case leases && aggs && !journal:
		return &countingAgg{countingLease{w, l}, a}, nil
	case leases && !someAgg && !journal:
		return &countingLease{w, l}, nil
	case !leases && !someAgg && !journal:
		return &w, nil
	}
	return nil, fmt.Errorf("store %T implements a part of Leaser, Counter, Rechecker, Scanner, Documents, Journal that the counting wrapper cannot forward alone", s)
}

func is[T any](s store.Store) bool { _, ok := s.(T); return ok }

// Limits returns the wrapped store's limits, so that the middleware bounds
// profiles as the store does.
func (w *counting) Limits() store.Limits { return store.LimitsOf(w.basicStore) }

func (w *counting) Load(ctx context.Context, id string) (*store.Profile, error) {
	defer w.c.add(cLoad, 1)
	return w.basicStore.Load(ctx, id)
}

func (w *counting) Apply(ctx context.Context, id string, events []store.Event) (*store.Profile, error) {
	defer w.c.add(cApply, 1)
	return w.basicStore.Apply(ctx, id, events)
}

func (w *counting) ApplyBatch(ctx context.Context, batches []store.Batch) ([]*store.Profile, error) {
	defer w.c.add(cApplyBatch, 1)
	defer w.c.add(cBatches, int64(len(batches)))
	return w.basicStore.ApplyBatch(ctx, batches)
}

func (w *counting) Delete(ctx context.Context, id string) error {
	defer w.c.add(cDelete, 1)
	return w.basicStore.Delete(ctx, id)
}

func (w *counting) Range(ctx context.Context, fn func(*store.Profile) bool) error {
	w.c.add(cRange, 1)
	stopped := false
	err := w.basicStore.Range(ctx, func(p *store.Profile) bool {
		w.c.add(cRanged, 1)
		if !fn(p) {
			stopped = true
			return false
		}
		return true
	})
	if err == nil && !stopped {
		w.c.add(cRangedFull, 1)
	}
	return err
}

func (w *counting) Expire(ctx context.Context, before time.Time) (int, error) {
	defer w.c.add(cExpire, 1)
	return w.basicStore.Expire(ctx, before)
}

func (w *counting) Subscribe(ctx context.Context, fn func(store.Change)) error {
	defer w.c.add(cSubscribe, 1)
	return w.basicStore.Subscribe(ctx, fn)
}

func (w *countingAgg) Counts(ctx context.Context) (map[string]int64, error) {
	defer w.c.add(cCounts, 1)
	return w.agg.Counts(ctx)
}

func (w *countingAgg) Due(ctx context.Context, t time.Time, max int) ([]string, error) {
	defer w.c.add(cDue, 1)
	ids, err := w.agg.Due(ctx, t, max)
	w.c.add(cRechecks, int64(len(ids)))
	return ids, err
}

func (w *countingAgg) Scan(ctx context.Context, cursor string, max int) ([]*store.Profile, string, error) {
	defer w.c.add(cScan, 1)
	profs, next, err := w.agg.Scan(ctx, cursor, max)
	w.c.add(cScanned, int64(len(profs)))
	return profs, next, err
}

func (w *countingAgg) Document(ctx context.Context, name string) ([]byte, error) {
	defer w.c.add(cDocument, 1)
	return w.agg.Document(ctx, name)
}

func (w *countingAgg) PutDocument(ctx context.Context, name string, data []byte) error {
	defer w.c.add(cPutDocument, 1)
	return w.agg.PutDocument(ctx, name, data)
}

func (w *countingLease) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	defer w.c.add(cLease, 1)
	return w.l.Lease(ctx, name, holder, ttl)
}

func (w *countingLease) Release(ctx context.Context, name, holder string) error {
	defer w.c.add(cRelease, 1)
	return w.l.Release(ctx, name, holder)
}

func (w *countingJournal) Purchases(ctx context.Context, cursor string, max int) ([]store.Purchase, string, error) {
	defer w.c.add(cPurchases, 1)
	ps, next, err := w.j.Purchases(ctx, cursor, max)
	w.c.add(cJournaled, int64(len(ps)))
	return ps, next, err
}

func (w *countingJournal) TrimPurchases(ctx context.Context, before time.Time) error {
	defer w.c.add(cTrimPurchases, 1)
	return w.j.TrimPurchases(ctx, before)
}
