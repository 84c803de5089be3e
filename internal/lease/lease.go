// Package lease is the lease table of the stores whose leases live in one
// process: store/memory, and store/bolt, whose file only one process can
// open. It implements store.Leaser's contract.
package lease

import (
	"context"
	"sync"
	"time"

	"github.com/tailorhq/tailor/store"
)

// A Table holds leases by name. Its zero value is empty; it is safe for
// concurrent use.
type Table struct {
	mu     sync.Mutex
	leases map[string]held
	now    func() time.Time // time.Now; tests set it
}

type held struct {
	holder string
	until  time.Time
}

func (t *Table) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

// Lease is store.Leaser.Lease of a store that is closed or not.
func (t *Table) Lease(ctx context.Context, closed bool, name, holder string, ttl time.Duration) (bool, error) {
	if err := store.CheckLease(ctx, closed, name, holder); err != nil {
		return false, err
	}
	if err := store.CheckLeaseTTL(ttl); err != nil {
		return false, err
	}
	now := t.clock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if h, ok := t.leases[name]; ok && h.holder != holder && now.Before(h.until) {
		return false, nil
	}
	if t.leases == nil {
		t.leases = make(map[string]held)
	}
	t.leases[name] = held{holder, now.Add(ttl)}
	return true, nil
}

// Release is store.Leaser.Release of a store that is closed or not.
func (t *Table) Release(ctx context.Context, closed bool, name, holder string) error {
	if err := store.CheckLease(ctx, closed, name, holder); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if h, ok := t.leases[name]; ok && h.holder == holder {
		delete(t.leases, name)
	}
	return nil
}
