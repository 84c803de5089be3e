package queue

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

var seedFlag = flag.Uint64("queue.seed", 0, "seed of TestModel's random operations (0: a new one each run)")

// evs returns events with the given ids.
func evs(ids ...string) []store.Event {
	out := make([]store.Event, len(ids))
	for i, id := range ids {
		out[i] = store.Event{ID: id, Type: store.TypeTrack}
	}
	return out
}

// ids returns the ids of events.
func ids(es []store.Event) []string {
	if len(es) == 0 {
		return nil
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// batches renders batches as "id:e1,e2 id2:e3" for comparisons.
func batches(bs []store.Batch) string {
	var parts []string
	for _, b := range bs {
		parts = append(parts, b.ID+":"+strings.Join(ids(b.Events), ","))
	}
	return strings.Join(parts, " ")
}

func TestQueue(t *testing.T) {
	t.Parallel()
	type check struct {
		get          map[string][]string // Get per id
		len, unacked int
		dropped      uint64 // TakeDropped
	}
	tests := []struct {
		name string
		max  int
		run  func(t *testing.T, q *Queue)
		want check
	}{
		{"add keeps order per id", 10, func(t *testing.T, q *Queue) {
			q.Add("a", evs("a1", "a2")...)
			q.Add("b", evs("b1")...)
			q.Add("a", evs("a3")...)
		}, check{get: map[string][]string{"a": {"a1", "a2", "a3"}, "b": {"b1"}, "c": nil}, len: 4, unacked: 4}},
		{"take returns oldest visitor first and keeps them in flight", 10, func(t *testing.T, q *Queue) {
			q.Add("b", evs("b1")...)
			q.Add("a", evs("a1")...)
			q.Add("b", evs("b2")...)
			if got := batches(q.Take()); got != "b:b1,b2 a:a1" {
				t.Errorf("Take = %q, want b:b1,b2 a:a1", got)
			}
			q.Add("a", evs("a2")...)
		}, check{get: map[string][]string{"a": {"a1", "a2"}, "b": {"b1", "b2"}}, len: 1, unacked: 4}},
		{"settle forgets what was in flight", 10, func(t *testing.T, q *Queue) {
			q.Add("a", evs("a1")...)
			q.Add("b", evs("b1")...)
			bs := q.Take()
			q.Add("a", evs("a2")...)
			q.Settle(bs)
		}, check{get: map[string][]string{"a": {"a2"}, "b": nil}, len: 1, unacked: 1}},
		{"put back goes before newer events", 10, func(t *testing.T, q *Queue) {
			q.Add("a", evs("a1", "a2")...)
			bs := q.Take()
			q.Add("a", evs("a3")...)
			q.Add("b", evs("b1")...)
			if d := q.PutBack(bs); d != 0 {
				t.Errorf("PutBack dropped %d", d)
			}
			if got := batches(q.Take()); got != "a:a1,a2,a3 b:b1" {
				t.Errorf("Take after PutBack = %q, want a:a1,a2,a3 b:b1", got)
			}
		}, check{get: map[string][]string{"a": {"a1", "a2", "a3"}, "b": {"b1"}}, len: 0, unacked: 4}},
		{"take of an empty queue", 10, func(t *testing.T, q *Queue) {
			if bs := q.Take(); bs != nil {
				t.Errorf("Take = %v, want nil", bs)
			}
		}, check{}},
		{"take1 takes one id with extra events", 10, func(t *testing.T, q *Queue) {
			q.Add("a", evs("a1")...)
			q.Add("b", evs("b1")...)
			if got := ids(q.Take1("a", evs("x")...)); !slices.Equal(got, []string{"a1", "x"}) {
				t.Errorf("Take1 = %v, want [a1 x]", got)
			}
			q.Add("a", evs("a2")...)
		}, check{get: map[string][]string{"a": {"a1", "x", "a2"}, "b": {"b1"}}, len: 2, unacked: 4}},
		{"take1 then put back", 10, func(t *testing.T, q *Queue) {
			q.Add("a", evs("a1")...)
			t1 := q.Take1("a", evs("x")...)
			q.Add("a", evs("a2")...)
			q.PutBack([]store.Batch{{ID: "a", Events: t1}})
		}, check{get: map[string][]string{"a": {"a1", "x", "a2"}}, len: 3, unacked: 3}},
		{"take1 of an id without events", 10, func(t *testing.T, q *Queue) {
			if got := q.Take1("a"); len(got) != 0 {
				t.Errorf("Take1 = %v, want none", got)
			}
		}, check{get: map[string][]string{"a": nil}}},
		{"remove forgets pending and in flight", 10, func(t *testing.T, q *Queue) {
			q.Add("a", evs("a1")...)
			q.Add("b", evs("b1")...)
			bs := q.Take()
			q.Add("a", evs("a2")...)
			q.Remove("a")
			q.Settle(bs)
		}, check{get: map[string][]string{"a": nil, "b": nil}}},
		{"bound drops the oldest visitor's events first and counts them", 3, func(t *testing.T, q *Queue) {
			q.Add("a", evs("a1", "a2")...)
			q.Add("b", evs("b1")...)
			if d := q.Add("c", evs("c1")...); d != 1 {
				t.Errorf("Add dropped %d, want 1", d)
			}
			if d := q.Add("c", evs("c2", "c3")...); d != 2 {
				t.Errorf("Add dropped %d, want 2", d)
			}
		}, check{get: map[string][]string{"a": nil, "b": nil, "c": {"c1", "c2", "c3"}}, len: 3, unacked: 3, dropped: 3}},
		{"bound never drops events in flight", 2, func(t *testing.T, q *Queue) {
			q.Add("a", evs("a1", "a2")...)
			q.Take()
			q.Add("a", evs("a3", "a4", "a5")...)
		}, check{get: map[string][]string{"a": {"a1", "a2", "a4", "a5"}}, len: 2, unacked: 4, dropped: 1}},
		{"put back past the bound drops the oldest", 2, func(t *testing.T, q *Queue) {
			q.Add("a", evs("a1", "a2")...)
			bs := q.Take()
			q.Add("b", evs("b1")...)
			if d := q.PutBack(bs); d != 1 {
				t.Errorf("PutBack dropped %d, want 1", d)
			}
		}, check{get: map[string][]string{"a": {"a2"}, "b": {"b1"}}, len: 2, unacked: 2, dropped: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := New(tt.max)
			tt.run(t, q)
			for id, want := range tt.want.get {
				if got := ids(q.Get(id)); !slices.Equal(got, want) {
					t.Errorf("Get(%q) = %v, want %v", id, got, want)
				}
			}
			if got := q.Len(); got != tt.want.len {
				t.Errorf("Len = %d, want %d", got, tt.want.len)
			}
			if got := q.Unacked(); got != tt.want.unacked {
				t.Errorf("Unacked = %d, want %d", got, tt.want.unacked)
			}
			if got := q.TakeDropped(); got != tt.want.dropped {
				t.Errorf("TakeDropped = %d, want %d", got, tt.want.dropped)
			}
			if got := q.TakeDropped(); got != 0 {
				t.Errorf("second TakeDropped = %d, want 0", got)
			}
		})
	}
}

// TestGetCopies checks that Get's result is the caller's: appending to it
// or changing it does not reach the queue.
func TestGetCopies(t *testing.T) {
	t.Parallel()
	q := New(10)
	q.Add("a", evs("a1", "a2")...)
	q.Take()
	q.Add("a", evs("a3")...)
	g := q.Get("a")
	g[0].ID = "changed"
	_ = append(g[:1], store.Event{ID: "appended"})
	if got := ids(q.Get("a")); !slices.Equal(got, []string{"a1", "a2", "a3"}) {
		t.Errorf("Get after changing a copy = %v, want [a1 a2 a3]", got)
	}
}

// model is the reference TestModel checks a Queue against: per id, the
// events in flight (taken, not settled) and pending, in order.
type model struct {
	pending, inflight map[string][]string
	dropped           uint64
}

func (m *model) total(of map[string][]string) int {
	n := 0
	for _, l := range of {
		n += len(l)
	}
	return n
}

// unflight removes the n oldest events in flight of id, as a settled or
// put back write of n events does.
func (m *model) unflight(id string, n int) {
	if f := m.inflight[id]; len(f) > n {
		m.inflight[id] = f[n:]
	} else {
		delete(m.inflight, id)
	}
}

// TestModel runs random operations on a Queue and on a model, following
// the protocol of package core: one write in flight at a time, made of a
// Take or of Take1 calls for distinct ids, each with at least one extra
// event, then ended by settling a prefix of its batches and putting the
// rest back. Every Add has events. Run with -queue.seed=N to
// repeat a failure.
func TestModel(t *testing.T) {
	t.Parallel()
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("-queue.seed=%d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	for run := range 200 {
		bound := 1 + rng.IntN(12)
		testModelRun(t, rng, bound, 300)
		if t.Failed() {
			t.Fatalf("run %d (bound %d) failed; repeat with -queue.seed=%d", run, bound, seed)
		}
	}
}

func testModelRun(t *testing.T, rng *rand.Rand, bound, steps int) {
	q := New(bound)
	m := &model{pending: map[string][]string{}, inflight: map[string][]string{}}
	idset := []string{"a", "b", "c", "d"}
	seq := 0
	var write []store.Batch // the write in flight, if any
	var log []string        // the operations so far, for failure messages

	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("after %s: %s", strings.Join(log, "; "), fmt.Sprintf(format, args...))
	}
	// resync learns from Get which pending events the bound dropped: per
	// id, the oldest pending ones, never those in flight, as many in all
	// as the queue reported.
	resync := func(dropped int) {
		t.Helper()
		want := max(0, m.total(m.pending)-bound)
		if dropped != want {
			fail("dropped %d events, want %d (%d pending, bound %d)", dropped, want, m.total(m.pending), bound)
		}
		gone := 0
		for _, id := range idset {
			got := ids(q.Get(id))
			f, p := m.inflight[id], m.pending[id]
			if len(got) < len(f) || !slices.Equal(got[:len(f)], f) {
				fail("Get(%q) = %v, want the events in flight %v first", id, got, f)
				return
			}
			rest := got[len(f):]
			if len(rest) > len(p) || !slices.Equal(p[len(p)-len(rest):], rest) {
				fail("Get(%q) = %v: pending part not a suffix of %v", id, got, p)
				return
			}
			gone += len(p) - len(rest)
			if len(rest) == 0 {
				delete(m.pending, id)
			} else {
				m.pending[id] = slices.Clone(rest)
			}
		}
		m.dropped += uint64(gone)
		if gone != dropped {
			fail("%d events gone from Get, the queue reported %d dropped", gone, dropped)
		}
	}

	for range steps {
		id := idset[rng.IntN(len(idset))]
		switch op := rng.IntN(10); {
		case op < 4:
			n := 1 + rng.IntN(3)
			var add []string
			for range n {
				seq++
				add = append(add, id+strconv.Itoa(seq))
			}
			log = append(log, fmt.Sprintf("Add(%s,%v)", id, add))
			m.pending[id] = append(m.pending[id], add...)
			resync(q.Add(id, evs(add...)...))
		case op == 4:
			log = append(log, "Remove("+id+")")
			q.Remove(id)
			delete(m.pending, id)
			delete(m.inflight, id)
		case op == 5:
			log = append(log, "TakeDropped")
			if got := q.TakeDropped(); got != m.dropped {
				fail("TakeDropped = %d, want %d", got, m.dropped)
			}
			m.dropped = 0
		case op < 8 && write == nil:
			if rng.IntN(2) == 0 {
				log = append(log, "Take")
				write = q.Take()
				for _, b := range write {
					if !slices.Equal(ids(b.Events), m.pending[b.ID]) {
						fail("Take: batch %s = %v, want %v", b.ID, ids(b.Events), m.pending[b.ID])
					}
					m.inflight[b.ID] = append(m.inflight[b.ID], ids(b.Events)...)
					delete(m.pending, b.ID)
				}
				if len(m.pending) != 0 {
					fail("Take left %v pending", m.pending)
				}
				m.pending = map[string][]string{}
			} else {
				for _, id := range rng.Perm(len(idset))[:1+rng.IntN(len(idset))] {
					id := idset[id]
					// At least one extra event, as a link always takes
					// the alias with the pending events.
					var extra []string
					for range 1 + rng.IntN(2) {
						seq++
						extra = append(extra, id+"x"+strconv.Itoa(seq))
					}
					log = append(log, fmt.Sprintf("Take1(%s,%v)", id, extra))
					got := ids(q.Take1(id, evs(extra...)...))
					want := append(slices.Clone(m.pending[id]), extra...)
					if !slices.Equal(got, want) {
						fail("Take1(%s) = %v, want %v", id, got, want)
					}
					delete(m.pending, id)
					if len(want) > 0 {
						m.inflight[id] = append(m.inflight[id], want...)
					}
					write = append(write, store.Batch{ID: id, Events: evs(want...)})
				}
			}
		case op < 8 && write != nil:
			k := rng.IntN(len(write) + 1)
			log = append(log, fmt.Sprintf("Settle(%s) PutBack(%s)", batches(write[:k]), batches(write[k:])))
			q.Settle(write[:k])
			for _, b := range write[:k] {
				m.unflight(b.ID, len(b.Events))
			}
			back := write[k:]
			for _, b := range back {
				m.unflight(b.ID, len(b.Events))
				if len(b.Events) > 0 {
					m.pending[b.ID] = append(ids(b.Events), m.pending[b.ID]...)
				}
			}
			write = nil
			resync(q.PutBack(back))
		default:
			log = append(log, "Get("+id+")")
			want := append(slices.Clone(m.inflight[id]), m.pending[id]...)
			if got := ids(q.Get(id)); !slices.Equal(got, want) {
				fail("Get(%s) = %v, want %v", id, got, want)
			}
		}
		if got, want := q.Len(), m.total(m.pending); got != want {
			fail("Len = %d, want %d", got, want)
		}
		if got, want := q.Unacked(), m.total(m.pending)+m.total(m.inflight); got != want {
			fail("Unacked = %d, want %d", got, want)
		}
		if t.Failed() {
			return
		}
	}
}

// TestConcurrent adds events from several goroutines while a writer takes
// them and settles or puts back each write, as the flusher does when the
// store fails now and then: every event reaches the "store" once, in order
// per id, and readers never see an id's events out of order.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	const producers, perProducer = 4, 2000
	q := New(producers * perProducer) // no drops
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := 1; i <= perProducer; i++ {
				id := "p" + strconv.Itoa(p%2) // two producers per id
				q.Add(id, store.Event{ID: fmt.Sprintf("%d:%d", p, i)})
			}
		})
	}
	// inOrder reports whether, per producer, the events carry increasing
	// sequence numbers, from after the last one stored.
	inOrder := func(es []store.Event, last map[int]int) error {
		for _, e := range es {
			var p, i int
			if _, err := fmt.Sscanf(e.ID, "%d:%d", &p, &i); err != nil {
				return err
			}
			if i != last[p]+1 {
				return fmt.Errorf("event %s after %d:%d", e.ID, p, last[p])
			}
			last[p] = i
		}
		return nil
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	defer func() {
		close(stop)
		readers.Wait()
	}()
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, id := range []string{"p0", "p1"} {
					// Events taken and settled in between are gone; what
					// remains is still in order.
					es := q.Get(id)
					last := map[int]int{}
					for _, e := range es {
						var p, i int
						fmt.Sscanf(e.ID, "%d:%d", &p, &i)
						if last[p] != 0 && i != last[p]+1 {
							t.Errorf("Get(%s): event %s after %d:%d", id, e.ID, p, last[p])
							return
						}
						last[p] = i
					}
				}
			}
		})
	}
	stored := map[string]map[int]int{"p0": {}, "p1": {}}
	rng := rand.New(rand.NewPCG(1, 2))
	write := func() {
		bs := q.Take()
		k := rng.IntN(len(bs) + 1) // the first k are acknowledged
		for _, b := range bs[:k] {
			if err := inOrder(b.Events, stored[b.ID]); err != nil {
				t.Fatalf("written to %s: %v", b.ID, err)
			}
		}
		q.Settle(bs[:k])
		if d := q.PutBack(bs[k:]); d != 0 {
			t.Fatalf("PutBack dropped %d", d)
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	deadline := time.After(30 * time.Second)
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		case <-deadline:
			t.Fatal("producers did not finish within 30s")
		default:
			write()
		}
	}
	for i := 0; q.Unacked() > 0; i++ {
		if i > 10_000 {
			t.Fatalf("%d events still unacknowledged", q.Unacked())
		}
		write()
	}
	for p := range producers {
		id := "p" + strconv.Itoa(p%2)
		if got := stored[id][p]; got != perProducer {
			t.Errorf("producer %d: %d events stored, want %d", p, got, perProducer)
		}
	}
	if d := q.TakeDropped(); d != 0 {
		t.Errorf("TakeDropped = %d, want 0", d)
	}
}

// TestEmptyAddKeepsTheBound: adding no events, or putting back a batch of
// none, leaves no empty entry that would hide the id from the bound.
func TestEmptyAddKeepsTheBound(t *testing.T) {
	t.Parallel()
	for name, empty := range map[string]func(q *Queue){
		"Add":     func(q *Queue) { q.Add("a") },
		"PutBack": func(q *Queue) { q.PutBack([]store.Batch{{ID: "a"}}) },
	} {
		q := New(2)
		empty(q)
		q.Add("b", evs("b1", "b2")...)
		q.Add("b", evs("b3")...)
		q.Add("a", evs("a1", "a2", "a3")...)
		if n := q.Len(); n > 2 {
			t.Errorf("%s of nothing, then 6 events: Len %d, past the bound of 2", name, n)
		}
	}
}
