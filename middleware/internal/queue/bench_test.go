package queue

import (
	"fmt"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

// BenchmarkQueueAdd measures Add in a server's steady state: 2,000
// visitors take turns recording a page view each, and after every 4,000
// events the flusher takes what is pending and the store acknowledges it,
// so that a visitor records about two events per flush. The flusher's
// Take, Settle and Release are part of what is measured. parallel adds from every
// CPU at once, each taking and settling in its turn.
func BenchmarkQueueAdd(b *testing.B) {
	const visitors, flushEvery = 2000, 4000
	ids := make([]string, visitors)
	for i := range ids {
		ids[i] = fmt.Sprintf("v-%020d", i)
	}
	ev := store.Event{ID: "producer-1", Type: store.TypePage, Time: time.Now(),
		Path: "/products/moneyball", Category: "books", Item: "moneyball", Device: "desktop"}
	b.Run("serial", func(b *testing.B) {
		q := New(100_000)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			q.Add(ids[i%visitors], ev)
			if i++; i%flushEvery == 0 {
				write(q)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		q := New(100_000)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				q.Add(ids[i%visitors], ev)
				if i++; i%flushEvery == 0 {
					write(q)
				}
			}
		})
	})
}

// BenchmarkQueueTake measures a write's Take, Settle and Release of
// 20,000 events: of 1,000 visitors, as a second of requests on a busy
// server, and of 10,000. The Adds before are not measured: the write's
// share of the work (clearing the arrays for reuse, outside the lock)
// is.
func BenchmarkQueueTake(b *testing.B) {
	ev := store.Event{ID: "producer-1", Type: store.TypePage, Time: time.Now(),
		Path: "/products/moneyball", Category: "books", Item: "moneyball", Device: "desktop"}
	for _, visitors := range []int{1000, 10_000} {
		b.Run(fmt.Sprintf("visitors-%d", visitors), func(b *testing.B) {
			const events = 20_000
			ids := make([]string, visitors)
			for i := range ids {
				ids[i] = fmt.Sprintf("v-%020d", i)
			}
			q := New(100_000)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for i := range events {
					q.Add(ids[i%visitors], ev)
				}
				b.StartTimer()
				write(q)
			}
		})
	}
}

// write takes what is pending, settles it and gives it back, as a
// successful flush does.
func write(q *Queue) {
	bs := q.Take()
	q.Settle(bs)
	q.Release(bs)
}
