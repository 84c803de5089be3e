// Package queue is tailor's write-behind queue: events recorded but not
// yet acknowledged by the store, in order per profile.
package queue

import (
	"slices"
	"sync"

	"github.com/tailorhq/tailor/store"
)

// A Queue holds events recorded but not yet acknowledged
// by the store, in order per visitor. It is the only place such events are
// guaranteed to be; the cache may drop a visitor at any time. Events taken
// for a write stay visible to get (in flight) until the write is settled or
// put back, so that a state built from the store during a write still
// holds them.
//
// Each visitor with events pending or in flight has an entry. Its pending
// events are in memory of the queue's own, never handed out (Take and
// Take1 return copies), so that an entry's slice is reused: by the
// visitor's next events after a Take, and by another visitor's once the
// entry is released. A returning visitor's Add then allocates nothing.
type Queue struct {
	mu      sync.Mutex
	ids     map[string]*entry // visitors with events pending or in flight
	order   []string          // visitors in the order they got pending events; may hold stale entries
	head    int               // order[:head] is consumed
	n       int               // events pending
	max     int
	dropped uint64   // events dropped at the bound since the last report
	free    []*entry // released entries, for reuse; at most maxFree
}

// An entry holds one visitor's events. Past len(pending), its capacity
// holds only zero Events, so that it keeps nothing alive.
type entry struct {
	pending []store.Event // recorded, not taken: the queue's own memory
	flight  []store.Event // taken, not yet settled or put back; shared with the taker, never written
}

const (
	// maxFree bounds the released entries kept for reuse.
	maxFree = 2048
	// reuseCap is the most events an entry's slice keeps room for once
	// emptied: a visitor rarely records more between two flushes, and
	// the memory kept is at most maxFree*reuseCap Events besides that of
	// the visitors with events in flight.
	reuseCap = 8
	// maxOrderCap is the most visitors order keeps room for once emptied.
	maxOrderCap = 1 << 16
)

// New returns an empty Queue that holds at most max pending events.
func New(max int) *Queue {
	return &Queue{ids: make(map[string]*entry), max: max}
}

// Add appends events for id, dropping the oldest pending events past the
// bound. It returns how many were dropped.
func (q *Queue) Add(id string, evs ...store.Event) int {
	if len(evs) == 0 {
		return 0 // an empty entry would hide id from trim
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.entry(id)
	if len(e.pending) == 0 {
		q.order = append(q.order, id)
	}
	e.pending = append(e.pending, evs...)
	q.n += len(evs)
	return q.trim()
}

// entry returns id's entry, a new one if it has none. q.mu is held.
func (q *Queue) entry(id string) *entry {
	if e := q.ids[id]; e != nil {
		return e
	}
	var e *entry
	if k := len(q.free); k > 0 {
		e = q.free[k-1]
		q.free[k-1] = nil
		q.free = q.free[:k-1]
	} else {
		e = new(entry)
	}
	q.ids[id] = e
	return e
}

// release forgets id's entry, which has nothing pending (and its
// capacity cleared) nor in flight, and keeps it for reuse with room for
// at most reuseCap events. q.mu is held.
func (q *Queue) release(id string, e *entry) {
	delete(q.ids, id)
	e.flight = nil
	if cap(e.pending) > reuseCap {
		e.pending = nil
	}
	if len(q.free) < maxFree {
		q.free = append(q.free, e)
	}
}

// releaseIfEmpty releases id's entry if it has nothing pending nor in
// flight. q.mu is held.
func (q *Queue) releaseIfEmpty(id string, e *entry) {
	if len(e.pending) == 0 && len(e.flight) == 0 {
		q.release(id, e)
	}
}

// emptyPending forgets e's pending events, taken or removed. It keeps
// the slice's room for the visitor's next events when that is at most
// reuseCap, or at most twice the events it held: a visitor recording
// that many between two flushes keeps doing so (the cost of growing the
// slice again is that of copying it), and the room kept is then at most
// twice the events pending at the last Take. q.mu is held.
func emptyPending(e *entry) {
	keep := max(reuseCap, 2*len(e.pending))
	clear(e.pending)
	if cap(e.pending) > keep {
		e.pending = nil
		return
	}
	e.pending = e.pending[:0]
}

// trim drops the oldest events until the bound holds. q.mu is held.
func (q *Queue) trim() int {
	dropped := 0
	for q.n > q.max && q.head < len(q.order) {
		id := q.order[q.head]
		e := q.ids[id]
		if e == nil || len(e.pending) == 0 {
			q.head++
			continue
		}
		e.pending[0] = store.Event{}
		e.pending = e.pending[1:]
		q.n--
		dropped++
		if len(e.pending) == 0 {
			q.head++
			q.releaseIfEmpty(id, e)
		}
	}
	if q.head > 1024 && q.head > len(q.order)/2 {
		q.order = slices.Delete(q.order, 0, q.head)
		q.head = 0
	}
	q.dropped += uint64(dropped)
	return dropped
}

// Get returns a copy of id's events in flight and pending, in order.
func (q *Queue) Get(id string) []store.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.ids[id]
	if e == nil || len(e.flight)+len(e.pending) == 0 {
		return nil
	}
	out := make([]store.Event, 0, len(e.flight)+len(e.pending))
	return append(append(out, e.flight...), e.pending...)
}

// Take removes and returns every pending batch, oldest visitor first.
// The batches' events are copies, in one array allocated before the lock
// is taken, so that the lock is held for copying only.
func (q *Queue) Take() []store.Batch {
	q.mu.Lock()
	n, visitors := q.n, len(q.order)-q.head
	q.mu.Unlock()
	if n == 0 {
		return nil
	}
	// Room for what comes meanwhile, too.
	buf := make([]store.Event, 0, n+n/64+16)
	out := make([]store.Batch, 0, visitors+visitors/64+16)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return nil
	}
	if q.n > cap(buf) {
		buf = make([]store.Event, 0, q.n)
	}
	for _, id := range q.order[q.head:] {
		e := q.ids[id]
		if e == nil || len(e.pending) == 0 {
			continue
		}
		start := len(buf)
		buf = append(buf, e.pending...)
		evs := buf[start:len(buf):len(buf)] // appending to it must not reach the next batch
		out = append(out, store.Batch{ID: id, Events: evs})
		emptyPending(e)
		q.fly(e, evs)
	}
	clear(q.order)
	if cap(q.order) > maxOrderCap {
		q.order = nil
	}
	q.order, q.head, q.n = q.order[:0], 0, 0
	return out
}

// fly adds evs, which the queue no longer writes to, to e's events in
// flight: the same slice when none are. q.mu is held.
func (q *Queue) fly(e *entry, evs []store.Event) {
	if len(e.flight) > 0 {
		e.flight = append(slices.Clip(e.flight), evs...)
		return
	}
	e.flight = evs
}

// Settle forgets the batches in flight that the store acknowledged.
func (q *Queue) Settle(bs []store.Batch) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, b := range bs {
		if e := q.ids[b.ID]; e != nil {
			unflight(e, b)
			q.releaseIfEmpty(b.ID, e)
		}
	}
}

// unflight removes b's events from those in flight of e, b.ID's entry.
// q.mu is held.
func unflight(e *entry, b store.Batch) {
	if len(e.flight) <= len(b.Events) {
		e.flight = nil
		return
	}
	e.flight = e.flight[len(b.Events):]
}

// PutBack returns batches in flight that failed to the front of the
// queue, before anything recorded since they were taken.
func (q *Queue) PutBack(bs []store.Batch) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	ids := make([]string, 0, len(bs))
	for _, b := range bs {
		e := q.ids[b.ID]
		if e != nil {
			unflight(e, b)
		}
		if len(b.Events) == 0 {
			if e != nil {
				q.releaseIfEmpty(b.ID, e)
			}
			continue // an empty entry would hide b.ID from trim
		}
		if e == nil {
			e = q.entry(b.ID)
		}
		if len(e.pending) == 0 {
			ids = append(ids, b.ID)
		}
		e.pending = slices.Insert(e.pending, 0, b.Events...)
		q.n += len(b.Events)
	}
	q.order = append(ids, q.order[q.head:]...)
	q.head = 0
	return q.trim()
}

// Take1 removes and returns id's pending events, which are in flight from
// then on, with extra appended (in flight too).
func (q *Queue) Take1(id string, extra ...store.Event) []store.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.ids[id]
	var pending []store.Event
	if e != nil {
		pending = e.pending
	}
	if len(pending)+len(extra) == 0 {
		return nil
	}
	evs := make([]store.Event, 0, len(pending)+len(extra))
	evs = append(append(evs, pending...), extra...)
	q.n -= len(pending)
	if e == nil {
		e = q.entry(id)
	}
	emptyPending(e)
	q.fly(e, evs)
	return evs
}

// Remove forgets id's pending events and those in flight.
func (q *Queue) Remove(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.ids[id]
	if e == nil {
		return
	}
	q.n -= len(e.pending)
	emptyPending(e)
	q.release(id, e)
}

// Len returns the number of pending events.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// TakeDropped returns the events dropped since the last call.
func (q *Queue) TakeDropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	d := q.dropped
	q.dropped = 0
	return d
}

// Unacked returns the number of events the store has not acknowledged:
// pending, and taken by a write still under way.
func (q *Queue) Unacked() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.n
	for _, e := range q.ids {
		n += len(e.flight)
	}
	return n
}
