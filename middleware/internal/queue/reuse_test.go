package queue

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

// check reports how q's state breaks the invariants the reuse of its
// memory relies on: n counts the pending events, every visitor with
// pending events is in order after head, an entry in ids has events
// pending or in flight, the room past an entry's pending events and its
// spare (empty) hold only zero Events (they keep nothing alive), and
// what is kept for reuse is empty, bounded by maxFree, and has room for
// at most reuseCap events.
func (q *Queue) check() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	ordered := make(map[string]bool, len(q.order)-q.head)
	for _, id := range q.order[q.head:] {
		ordered[id] = true
	}
	for id, e := range q.ids {
		n += len(e.pending)
		if len(e.pending)+len(e.flight) == 0 {
			return fmt.Errorf("entry of %s has nothing pending nor in flight", id)
		}
		if len(e.pending) > 0 && !ordered[id] {
			return fmt.Errorf("%s has events pending but is not in order[head:]", id)
		}
		if len(e.spare) > 0 {
			return fmt.Errorf("entry of %s has a spare of %d events", id, len(e.spare))
		}
		for _, a := range [][]store.Event{e.pending, e.spare} {
			if err := zeroPast(a); err != nil {
				return fmt.Errorf("entry of %s: %v", id, err)
			}
		}
	}
	if n != q.n {
		return fmt.Errorf("%d events pending in the entries, n = %d", n, q.n)
	}
	if len(q.entries) > maxFree || len(q.arrays) > maxFree {
		return fmt.Errorf("%d free entries and %d free arrays, more than %d", len(q.entries), len(q.arrays), maxFree)
	}
	for i, e := range q.entries {
		if e.pending != nil || e.spare != nil || e.flight != nil {
			return fmt.Errorf("free entry %d holds arrays", i)
		}
	}
	for i, a := range q.arrays {
		if len(a) > 0 || cap(a) > reuseCap {
			return fmt.Errorf("free array %d: %d events, room for %d", i, len(a), cap(a))
		}
		if err := zeroPast(a); err != nil {
			return fmt.Errorf("free array %d: %v", i, err)
		}
	}
	return nil
}

// zeroPast reports an error unless s's capacity past its length holds
// only zero Events.
func zeroPast(s []store.Event) error {
	for i, e := range s[len(s):cap(s)] {
		if e.ID != "" || e.Type != "" {
			return fmt.Errorf("room past the pending events holds %q at %d", e.ID, len(s)+i)
		}
	}
	return nil
}

// TestReuseModel runs random operations, as TestModel does but with more
// visitors than the queue keeps free entries for and visitors recording
// many events between writes, so that entries and their memory are
// reused, kept and let go. It checks the queue against a reference kept
// as plain maps of event ids (without a bound, which TestModel covers),
// that batches taken (also while others are in flight) are not changed
// by the queue until released (core reads them after Settle), nor are
// the events Get and Take1 returned ever, and the invariants of check
// after every operation (every 50th with many visitors).
func TestReuseModel(t *testing.T) {
	t.Parallel()
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("-queue.seed=%d", seed)
	rng := rand.New(rand.NewPCG(seed, seed+1))
	runs := 20
	if testing.Short() {
		runs = 5
	}
	for run := range runs {
		testReuseRun(t, rng)
		if t.Failed() {
			t.Fatalf("run %d failed; repeat with -queue.seed=%d", run, seed)
		}
	}
}

func testReuseRun(t *testing.T, rng *rand.Rand) {
	q := New(1 << 30)
	visitors := []int{4, 50, 3 * maxFree}[rng.IntN(3)]
	pending, inflight := map[string][]string{}, map[string][]string{}
	type held struct {
		evs   []store.Event
		want  []string
		taken bool // by Take: unchanged until released
	}
	var kept []held // results handed out, to check they stay as they were
	var write, taken []store.Batch
	seq := 0
	total := func(m map[string][]string) int {
		n := 0
		for _, l := range m {
			n += len(l)
		}
		return n
	}
	for step := range 3000 {
		id := "v" + strconv.Itoa(rng.IntN(visitors))
		var op string
		switch r := rng.IntN(100); {
		case r < 60:
			k := 1 + rng.IntN(3)
			if rng.IntN(10) == 0 {
				k = 10 + rng.IntN(40) // a visitor past reuseCap
			}
			add := make([]string, k)
			for i := range add {
				seq++
				add[i] = strconv.Itoa(seq)
			}
			op = fmt.Sprintf("Add(%s, %d events)", id, k)
			q.Add(id, evs(add...)...)
			pending[id] = append(pending[id], add...)
		case r < 63:
			op = "Remove(" + id + ")"
			q.Remove(id)
			delete(pending, id)
			delete(inflight, id)
		case r < 75:
			// Also while a write is in flight, which core does not do.
			op = "Take"
			bs := q.Take()
			write = append(write, bs...)
			taken = append(taken, bs...)
			for _, b := range bs {
				if !slices.Equal(ids(b.Events), pending[b.ID]) {
					t.Errorf("step %d: Take: %s = %v, want %v", step, b.ID, ids(b.Events), pending[b.ID])
				}
				kept = append(kept, held{b.Events, ids(b.Events), true})
				inflight[b.ID] = append(inflight[b.ID], pending[b.ID]...)
				delete(pending, b.ID)
			}
			if len(pending) != 0 {
				t.Errorf("step %d: Take left %d visitors pending", step, len(pending))
			}
		case r < 80:
			seq++
			x := "x" + strconv.Itoa(seq)
			op = "Take1(" + id + ")"
			got := q.Take1(id, evs(x)...)
			want := append(slices.Clone(pending[id]), x)
			if !slices.Equal(ids(got), want) {
				t.Errorf("step %d: Take1(%s) = %v, want %v", step, id, ids(got), want)
			}
			kept = append(kept, held{got, want, false})
			delete(pending, id)
			inflight[id] = append(inflight[id], want...)
			write = append(write, store.Batch{ID: id, Events: got})
		case r < 90 && write != nil:
			k := rng.IntN(len(write) + 1)
			op = fmt.Sprintf("Settle(%d) PutBack(%d)", k, len(write)-k)
			q.Settle(write[:k])
			for _, b := range write {
				if f := inflight[b.ID]; len(f) > len(b.Events) {
					inflight[b.ID] = f[len(b.Events):]
				} else {
					delete(inflight, b.ID)
				}
			}
			for _, b := range write[k:] {
				pending[b.ID] = append(ids(b.Events), pending[b.ID]...)
			}
			q.PutBack(write[k:])
			write = nil
			// Given back, as core does after a write: what Take handed
			// out may change from now on.
			q.Release(taken)
			taken = nil
			kept = slices.DeleteFunc(kept, func(h held) bool { return h.taken })
		default:
			op = "Get(" + id + ")"
			got := q.Get(id)
			want := append(slices.Clone(inflight[id]), pending[id]...)
			if !slices.Equal(ids(got), want) {
				t.Errorf("step %d: Get(%s) = %v, want %v", step, id, ids(got), want)
			}
			if len(got) > 0 {
				kept = append(kept, held{got, want, false})
			}
		}
		if got, want := q.Len(), total(pending); got != want {
			t.Errorf("step %d, after %s: Len = %d, want %d", step, op, got, want)
		}
		if got, want := q.Unacked(), total(pending)+total(inflight); got != want {
			t.Errorf("step %d, after %s: Unacked = %d, want %d", step, op, got, want)
		}
		if visitors <= 50 || step%50 == 0 { // check is O(visitors)
			if err := q.check(); err != nil {
				t.Errorf("step %d, after %s: %v", step, op, err)
			}
		}
		for i, h := range kept {
			if !slices.EqualFunc(h.evs, h.want, func(e store.Event, id string) bool { return e.ID == id }) {
				t.Errorf("step %d, after %s: result %d handed out as %v is now %v", step, op, i, h.want, ids(h.evs))
			}
		}
		if len(kept) > 200 {
			kept = slices.Delete(kept, 0, 100)
		}
		if t.Failed() {
			return
		}
	}
}

// TestReuseBounded: after many visitors, some with many events, were
// written, the queue keeps no entry, and the memory it keeps for reuse is
// bounded by maxFree entries of reuseCap events.
func TestReuseBounded(t *testing.T) {
	t.Parallel()
	q := New(1 << 20)
	for round := range 3 {
		for v := range 3 * maxFree {
			k := 1 + v%3
			if v%100 == 0 {
				k = 500
			}
			for range k {
				q.Add("v"+strconv.Itoa(v), store.Event{ID: "e", Type: store.TypePage})
			}
		}
		bs := q.Take()
		q.Settle(bs)
		q.Release(bs)
		if err := q.check(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if len(q.ids) != 0 || q.Unacked() != 0 {
			t.Fatalf("round %d: %d entries, %d events unacknowledged after all were settled", round, len(q.ids), q.Unacked())
		}
		if len(q.entries) != maxFree || len(q.arrays) != maxFree {
			t.Errorf("round %d: %d free entries and %d free arrays, want %d", round, len(q.entries), len(q.arrays), maxFree)
		}
	}
}

// TestAddAllocatesNothing: once the queue has had as many visitors
// recording as many events, a returning visitor's Add allocates nothing,
// whether its events were written meanwhile or are in flight; a write
// allocates once, in Take: the list of batches. Its events are the
// queue's arrays, given back with Release.
func TestAddAllocatesNothing(t *testing.T) {
	q := New(100_000)
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = "v" + strconv.Itoa(i)
	}
	ev := store.Event{ID: "e", Type: store.TypePage, Path: "/"}
	round := func() {
		for _, id := range ids {
			q.Add(id, ev)
			q.Add(id, ev)
		}
	}
	cycle := func() {
		round()
		bs := q.Take()
		round() // in flight
		q.Settle(bs)
		q.Release(bs)
		bs = q.Take()
		q.Settle(bs)
		q.Release(bs)
	}
	cycle()
	if a := testing.AllocsPerRun(10, cycle); a != 2 {
		t.Errorf("%.2f allocations per cycle of two writes, want 2 (those of Take)", a)
	}
}

// TestConcurrentReuse runs Take, Settle, PutBack and Take1 (one write at
// a time, as core does) while other goroutines add events, read them
// with Get and remove visitors, so that entries and arrays are reused
// while a write reads the arrays Take handed out. Under the race
// detector this shows that nothing writes an array before it is
// released. It checks that every event of the visitors never removed is
// written once and in order, and that no batch handed out changes until
// it is released.
func TestConcurrentReuse(t *testing.T) {
	t.Parallel()
	const producers, perProducer = 2, 3000
	q := New(1 << 30)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := 1; i <= perProducer; i++ {
				// kept ids: k<p>-<j>; removed ones: r<j>.
				q.Add(fmt.Sprintf("k%d-%d", p, i%7), store.Event{ID: fmt.Sprintf("%d:%d", p, i)})
				q.Add("r"+strconv.Itoa(i%5), store.Event{ID: "r"}, store.Event{ID: "r"})
			}
		})
	}
	stop := make(chan struct{})
	var others sync.WaitGroup
	others.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			q.Remove("r" + strconv.Itoa(i%5))
			for _, e := range q.Get(fmt.Sprintf("k%d-%d", i%producers, i%7)) {
				if e.ID == "" {
					t.Errorf("Get returned a zero event")
					return
				}
			}
		}
	})
	type held struct {
		evs  []store.Event
		want []string
	}
	var kept []held
	last := map[string]int{} // per producer and id, the last sequence number written
	rng := rand.New(rand.NewPCG(3, 4))
	write := func() {
		var bs []store.Batch
		if rng.IntN(4) == 0 {
			id := fmt.Sprintf("k%d-%d", rng.IntN(producers), rng.IntN(7))
			bs = []store.Batch{{ID: id, Events: q.Take1(id, store.Event{ID: "x"})}}
		} else {
			bs = q.Take()
		}
		for _, b := range bs {
			kept = append(kept, held{b.Events, ids(b.Events)})
		}
		k := rng.IntN(len(bs) + 1)
		for _, b := range bs[:k] {
			for _, e := range b.Events {
				var p, i int
				if e.ID == "x" || e.ID == "r" {
					continue
				}
				if _, err := fmt.Sscanf(e.ID, "%d:%d", &p, &i); err != nil {
					t.Fatalf("event %q: %v", e.ID, err)
				}
				key := b.ID + "/" + strconv.Itoa(p)
				if prev := last[key]; i <= prev {
					t.Fatalf("%s: event %s written after %d:%d", b.ID, e.ID, p, prev)
				}
				last[key] = i
			}
		}
		q.Settle(bs[:k])
		q.PutBack(bs[k:])
		// Checked before they are given back: until then, nothing may
		// change them.
		for i, h := range kept {
			if !slices.EqualFunc(h.evs, h.want, func(e store.Event, id string) bool { return e.ID == id }) {
				t.Fatalf("batch %d handed out as %v is now %v", i, h.want, ids(h.evs))
			}
		}
		kept = kept[:0]
		q.Release(bs)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
			write()
		}
	}
	close(stop)
	others.Wait()
	for i := 0; q.Len() > 0 || q.Unacked() > 0; i++ {
		if i > 10_000 {
			t.Fatalf("%d events still unacknowledged", q.Unacked())
		}
		write()
	}
	// Every event of a kept id was written: the last of each producer's
	// sequence numbers that fall on an id.
	for p := range producers {
		for j := range 7 {
			want := perProducer - (perProducer-j)%7
			if got := last[fmt.Sprintf("k%d-%d/%d", p, j, p)]; got != want {
				t.Errorf("k%d-%d: last event written %d, want %d", p, j, got, want)
			}
		}
	}
	if err := q.check(); err != nil {
		t.Error(err)
	}
}
