package middleware

import (
	"sync"
	"sync/atomic"
	"time"
)

// An Observer hears what a Personalizer decides, for metrics, webhooks and
// logs. Register it with Personalizer.Observe; any number may listen. Its
// funcs are called with no lock of the Personalizer held and must return
// quickly (queue the work, as webhooks do). A nil func is not called.
type Observer struct {
	// SegmentChange hears a kept visitor entering or leaving segments:
	// every entry and exit once, across all the instances that share the
	// store. The segments a visitor was last classified into are kept with
	// their profile (store.Profile.Segments); a classification that differs
	// is written as a segments event, the store's fold decides whether it
	// is a change, and the instance whose write made it reports it once the
	// store acknowledged the write: within about one FlushInterval of the
	// request, from the flusher's goroutine. The first classification of a
	// kept visitor reports the segments they are in as entries. Membership
	// is per profile: once a visitor signs in, their segments are the
	// user's profile's, and its first classification reports them as the
	// user's entries (UserID set), even those the visitor had entered
	// anonymously. One write reports at most store.MaxSegmentChanges
	// changes of one profile (after a long store outage, a visitor whose
	// segments flipped more often than that has only the latest reported).
	// Changes without a request (a window of time passing, new
	// definitions) are made and reported by the instance that holds the
	// segments lease (see Config.RecheckInterval), with the profile's id as
	// VisitorID.
	//
	// Segments are written whenever the store keeps aggregates
	// (store.Counter: every tailor store), and otherwise only while some
	// Observer has SegmentChange.
	SegmentChange func(SegmentChange)
	// Classified hears the time each classification of a tracked visitor
	// took (not when a cached one was reused).
	Classified func(time.Duration)
}

// A SegmentChange is a visitor entering or leaving segments.
type SegmentChange struct {
	VisitorID string
	UserID    string // the user whose profile it is, if signed in
	Entered   []string
	Exited    []string
	Time      time.Time
}

// Observe registers o: from now on it hears every segment change and
// classification (see Observer). It is safe to call at any time, also
// while requests are served; register before serving to hear everything.
func (p *Personalizer) Observe(o Observer) { p.obs.add(o) }

// observers is the list of registered Observers, copied on write so that
// the request path reads it without a lock.
type observers struct {
	mu   sync.Mutex // serialises add
	list atomic.Pointer[[]Observer]
	seg  atomic.Bool // some observer hears segment changes
	cls  atomic.Bool // some observer hears classifications
}

func (o *observers) add(x Observer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var l []Observer
	if old := o.list.Load(); old != nil {
		l = append(l, *old...)
	}
	l = append(l, x)
	o.list.Store(&l)
	if x.SegmentChange != nil {
		o.seg.Store(true)
	}
	if x.Classified != nil {
		o.cls.Store(true)
	}
}

func (o *observers) segments() bool { return o.seg.Load() }
func (o *observers) classify() bool { return o.cls.Load() }

func (o *observers) each(f func(*Observer)) {
	if l := o.list.Load(); l != nil {
		for i := range *l {
			f(&(*l)[i])
		}
	}
}

func (o *observers) segmentChanged(c SegmentChange) {
	o.each(func(x *Observer) {
		if x.SegmentChange != nil {
			x.SegmentChange(c)
		}
	})
}

func (o *observers) classified(d time.Duration) {
	o.each(func(x *Observer) {
		if x.Classified != nil {
			x.Classified(d)
		}
	})
}
