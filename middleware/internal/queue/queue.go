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
type Queue struct {
	mu       sync.Mutex
	pending  map[string][]store.Event
	inflight map[string][]store.Event // taken, not yet settled
	order    []string                 // visitors in the order they got pending events; may hold stale entries
	head     int                      // order[:head] is consumed
	n        int                      // events pending
	max      int
	dropped  uint64 // events dropped at the bound since the last report
}

// New returns an empty Queue that holds at most max pending events.
func New(max int) *Queue {
	return &Queue{pending: make(map[string][]store.Event), inflight: make(map[string][]store.Event), max: max}
}

// Add appends events for id, dropping the oldest pending events past the
// bound. It returns how many were dropped.
func (q *Queue) Add(id string, evs ...store.Event) int {
	if len(evs) == 0 {
		return 0 // an empty entry would hide id from trim
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	l, ok := q.pending[id]
	if !ok {
		q.order = append(q.order, id)
	}
	q.pending[id] = append(l, evs...)
	q.n += len(evs)
	return q.trim()
}

// trim drops the oldest events until the bound holds. q.mu is held.
func (q *Queue) trim() int {
	dropped := 0
	for q.n > q.max && q.head < len(q.order) {
		id := q.order[q.head]
		l := q.pending[id]
		if len(l) == 0 {
			q.head++
			continue
		}
		l[0] = store.Event{}
		q.pending[id] = l[1:]
		q.n--
		dropped++
		if len(l) == 1 {
			delete(q.pending, id)
			q.head++
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
	f, l := q.inflight[id], q.pending[id]
	if len(f) == 0 && len(l) == 0 {
		return nil
	}
	return append(slices.Clip(slices.Clone(f)), l...)
}

// Take removes and returns every pending batch, oldest visitor first.
func (q *Queue) Take() []store.Batch {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return nil
	}
	out := make([]store.Batch, 0, len(q.pending))
	for _, id := range q.order[q.head:] {
		if evs, ok := q.pending[id]; ok && len(evs) > 0 {
			out = append(out, store.Batch{ID: id, Events: evs})
			delete(q.pending, id)
			q.fly(id, evs)
		}
	}
	q.pending = make(map[string][]store.Event, len(out))
	q.order, q.head, q.n = nil, 0, 0
	return out
}

// fly adds evs, taken from pending, to id's events in flight: the same
// slice when none are (pending no longer refers to it). q.mu is held.
func (q *Queue) fly(id string, evs []store.Event) {
	if f := q.inflight[id]; len(f) > 0 {
		q.inflight[id] = append(f, evs...)
		return
	}
	q.inflight[id] = evs
}

// Settle forgets the batches in flight that the store acknowledged.
func (q *Queue) Settle(bs []store.Batch) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, b := range bs {
		q.unflight(b)
	}
}

// unflight removes b's events from those in flight. q.mu is held.
func (q *Queue) unflight(b store.Batch) {
	f := q.inflight[b.ID]
	if len(f) <= len(b.Events) {
		delete(q.inflight, b.ID)
		return
	}
	q.inflight[b.ID] = f[len(b.Events):]
}

// PutBack returns batches in flight that failed to the front of the
// queue, before anything recorded since they were taken.
func (q *Queue) PutBack(bs []store.Batch) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	ids := make([]string, 0, len(bs))
	for _, b := range bs {
		q.unflight(b)
		if len(b.Events) == 0 {
			continue // an empty entry would hide b.ID from trim
		}
		l, ok := q.pending[b.ID]
		if !ok {
			ids = append(ids, b.ID)
		}
		q.pending[b.ID] = append(b.Events, l...)
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
	evs := append(q.pending[id], extra...)
	q.n -= len(q.pending[id])
	delete(q.pending, id)
	q.fly(id, evs)
	return evs
}

// Remove forgets id's pending events and those in flight.
func (q *Queue) Remove(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n -= len(q.pending[id])
	delete(q.pending, id)
	delete(q.inflight, id)
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
	for _, evs := range q.inflight {
		n += len(evs)
	}
	return n
}
