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
// Each visitor with events pending or in flight has an entry. Pending
// events are in arrays of the queue's own. Take hands them out as they
// are, in flight, and gives the visitor its spare (the array of a write
// released before) for its next events; Release gives the arrays back
// once the write is settled, cleared, as spares or for any visitor once
// its entry is released. A returning visitor's Add then allocates
// nothing, Take copies nothing, and the lock every Add takes is held by
// Take for work in proportion to the visitors, not to the events. Get
// and Take1 return copies.
type Queue struct {
	mu      sync.Mutex
	ids     map[string]*entry // visitors with events pending or in flight
	order   []string          // visitors in the order they got pending events; may hold stale entries
	head    int               // order[:head] is consumed
	n       int               // events pending
	max     int
	dropped uint64 // events dropped at the bound since the last report

	entries []*entry        // released entries, for reuse; at most maxFree
	arrays  [][]store.Event // empty arrays for pending events, room for at most reuseCap; at most maxFree
}

// An entry holds one visitor's events. Past the length of pending and
// spare, their arrays hold only zero Events, so that they keep nothing
// alive.
type entry struct {
	pending []store.Event // recorded, not taken
	spare   []store.Event // empty: pending's array after the next Take
	flight  []store.Event // taken, not yet settled or put back; never written
}

const (
	// maxFree bounds the released entries and the empty arrays kept
	// for reuse.
	maxFree = 2048
	// reuseCap is the most events an empty array kept for any visitor
	// has room for: a visitor rarely records more between two flushes.
	// The memory kept for reuse is then at most maxFree*reuseCap
	// Events, besides the spares of visitors with events in flight.
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
		if cap(e.pending) == 0 {
			e.pending = q.array()
		}
	}
	e.pending = append(e.pending, evs...)
	q.n += len(evs)
	if q.n <= q.max {
		return 0
	}
	return q.trim()
}

// entry returns id's entry, a new one if it has none. q.mu is held.
func (q *Queue) entry(id string) *entry {
	if e := q.ids[id]; e != nil {
		return e
	}
	var e *entry
	if k := len(q.entries); k > 0 {
		e = q.entries[k-1]
		q.entries[k-1] = nil
		q.entries = q.entries[:k-1]
	} else {
		e = new(entry)
	}
	q.ids[id] = e
	return e
}

// array returns an empty array kept for reuse, or nil. q.mu is held.
func (q *Queue) array() []store.Event {
	k := len(q.arrays)
	if k == 0 {
		return nil
	}
	a := q.arrays[k-1]
	q.arrays[k-1] = nil
	q.arrays = q.arrays[:k-1]
	return a
}

// keep keeps a, empty and cleared, for reuse if it is small and there
// is room. q.mu is held.
func (q *Queue) keep(a []store.Event) {
	if c := cap(a); c > 0 && c <= reuseCap && len(q.arrays) < maxFree {
		q.arrays = append(q.arrays, a[:0])
	}
}

// release forgets id's entry, which has nothing pending (and its array
// cleared) nor in flight, and keeps it and its arrays for reuse. q.mu is
// held.
func (q *Queue) release(id string, e *entry) {
	delete(q.ids, id)
	q.keep(e.pending)
	q.keep(e.spare)
	*e = entry{}
	if len(q.entries) < maxFree {
		q.entries = append(q.entries, e)
	}
}

// releaseIfEmpty releases id's entry if it has nothing pending nor in
// flight. q.mu is held.
func (q *Queue) releaseIfEmpty(id string, e *entry) {
	if len(e.pending) == 0 && len(e.flight) == 0 {
		q.release(id, e)
	}
}

// roomFor is the most room an array emptied of n events is kept with for
// the same visitor: a visitor recording that many between two flushes
// keeps doing so (growing the array again costs copying it), and the room
// kept is then at most twice the events pending at the last Take.
func roomFor(n int) int { return max(reuseCap, 2*n) }

// emptyPending forgets e's pending events, taken or removed, keeping
// their array's room (roomFor). q.mu is held.
func emptyPending(e *entry) {
	keep := roomFor(len(e.pending))
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
// The batches' events are the queue's own arrays, not copies: the
// caller reads them (and no one writes them) until it gives them back
// with Release, after Settle or PutBack. It holds the lock for work in
// proportion to the visitors, not to the events.
func (q *Queue) Take() []store.Batch {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return nil
	}
	out := make([]store.Batch, 0, len(q.order)-q.head)
	for _, id := range q.order[q.head:] {
		e := q.ids[id]
		if e == nil || len(e.pending) == 0 {
			continue
		}
		evs := e.pending
		q.fly(e, evs)
		// The next events go to the spare, the array of a write released
		// before, if any.
		e.pending, e.spare = e.spare, nil
		out = append(out, store.Batch{ID: id, Events: evs})
	}
	clear(q.order)
	if cap(q.order) > maxOrderCap {
		q.order = nil
	}
	q.order, q.head, q.n = q.order[:0], 0, 0
	return out
}

// Release gives back the arrays of batches that Take returned, once
// settled or put back, for the queue to reuse: the caller does not read
// them any more, nor does anyone it gave them to. A visitor's array
// becomes its spare, the array its next events go to after the next
// Take; else it is kept for any visitor, or let go. Releasing is not
// required: an array not released is left to the garbage collector.
func (q *Queue) Release(bs []store.Batch) {
	// Cleared outside the lock, so that the arrays keep nothing alive.
	for _, b := range bs {
		clear(b.Events)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, b := range bs {
		a := b.Events[:0]
		if cap(a) == 0 {
			continue
		}
		// An entry in use gets it as its spare if it has none, and a
		// released entry is empty; an entry of the same id may be a
		// new one since, which an empty array serves as well.
		if e := q.ids[b.ID]; e != nil && e.spare == nil && cap(a) <= roomFor(len(b.Events)) {
			e.spare = a
		} else {
			q.keep(a)
		}
	}
}

// fly adds evs, which no one writes to any more, to e's events in
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
