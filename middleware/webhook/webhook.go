package webhook

import (
	"bytes"
	"container/heap"
	"container/list"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tailorhq/tailor/middleware"
)

// Event types.
const (
	TypeEntered = "segment.entered"
	TypeExited  = "segment.exited"
)

// An Event is the body of a delivery. Receivers decode it with
// encoding/json after Verify.
type Event struct {
	// ID is unique per delivery and the same on every attempt.
	ID        string    `json:"id"`
	Type      string    `json:"type"` // TypeEntered or TypeExited
	Segment   string    `json:"segment"`
	VisitorID string    `json:"visitorId"`
	UserID    string    `json:"userId,omitempty"`
	Time      time.Time `json:"time"` // when the change was seen
}

// Config configures a Dispatcher. URL and Secret are required; every other
// field documents its zero value.
type Config struct {
	// Personalizer is the one whose segment changes are delivered: New
	// registers the Dispatcher as its Observer. Required.
	Personalizer Source
	// URL receives the POSTs: an absolute http or https URL. Required.
	URL string
	// Secret keys the HMAC-SHA256 signature of every delivery (see the
	// package documentation). Required; use at least 32 random bytes,
	// shared with the receiver only.
	Secret string

	// QueueSize bounds the deliveries waiting to be sent or retried; past
	// it the oldest is dropped. Default 10,000.
	QueueSize int
	// Workers is how many deliveries are attempted at once. Default 4.
	Workers int
	// MaxAttempts is the most attempts per delivery, the first included.
	// Default 6.
	MaxAttempts int
	// BackoffBase is the wait before the first retry; it doubles with each
	// further retry, up to BackoffMax. Default 1 second.
	BackoffBase time.Duration
	// BackoffMax bounds the wait between two attempts, including one asked
	// for by Retry-After. Default 1 minute.
	BackoffMax time.Duration
	// Timeout bounds each attempt, from connecting to reading the answer's
	// status. Default 10 seconds.
	Timeout time.Duration
	// Client sends the requests. Default: a client that does not follow
	// redirects.
	Client *http.Client

	// LogSize is how many deliveries Log keeps. Default 200.
	LogSize int
	// Logger receives failed deliveries (visitor ids at debug level only).
	// Default slog.Default().
	Logger *slog.Logger
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	var errs []error
	if c.Personalizer == nil {
		errs = append(errs, errors.New("Config.Personalizer: required (its segment changes are what is delivered)"))
	}
	if c.URL == "" {
		errs = append(errs, errors.New("Config.URL: required"))
	} else if u, err := url.Parse(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("Config.URL: %w", err))
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("Config.URL: %q is not an absolute http or https URL", u.Redacted()))
	}
	if c.Secret == "" {
		errs = append(errs, errors.New("Config.Secret: required (receivers verify deliveries with it)"))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"QueueSize", int64(c.QueueSize)}, {"Workers", int64(c.Workers)}, {"MaxAttempts", int64(c.MaxAttempts)},
		{"BackoffBase", int64(c.BackoffBase)}, {"BackoffMax", int64(c.BackoffMax)}, {"Timeout", int64(c.Timeout)},
		{"LogSize", int64(c.LogSize)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("Config.%s: %d is negative", f.name, f.v))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("tailor/webhook: invalid config: %w", errors.Join(errs...))
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defInt(&c.QueueSize, 10_000)
	defInt(&c.Workers, 4)
	defInt(&c.MaxAttempts, 6)
	defInt(&c.LogSize, 200)
	defDur(&c.BackoffBase, time.Second)
	defDur(&c.BackoffMax, time.Minute)
	defDur(&c.Timeout, 10*time.Second)
	c.BackoffMax = max(c.BackoffMax, c.BackoffBase)
	if c.Client == nil {
		c.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// A Status is the state of a delivery in the log.
type Status string

// Delivery states.
const (
	StatusRetrying  Status = "retrying"  // an attempt failed; another is scheduled
	StatusDelivered Status = "delivered" // the receiver answered 2xx
	StatusFailed    Status = "failed"    // a final answer (3xx, 4xx) or MaxAttempts failures
	StatusDropped   Status = "dropped"   // dropped from a full queue, or sent after Close
	StatusAbandoned Status = "abandoned" // still queued when Close's context ended
)

// A Delivery is an entry of the delivery log.
type Delivery struct {
	Event    Event
	Status   Status
	Attempts int
	// Code is the HTTP status of the last answer; 0 when there was none.
	Code int
	// Err describes why the last attempt failed, if it did.
	Err string
	// Queued is when the change was queued, Updated when the entry last
	// changed, Next when the next attempt is due (StatusRetrying only).
	Queued, Updated, Next time.Time
}

// Stats are counters of a Dispatcher since New.
type Stats struct {
	Queued    int    // deliveries waiting to be sent or retried now
	InFlight  int    // attempts under way now
	Enqueued  uint64 // deliveries queued
	Attempts  uint64 // attempts made (retries included)
	Delivered uint64
	Failed    uint64 // gave up: final answer, or MaxAttempts failures
	Dropped   uint64 // dropped at QueueSize, or reported after Close
	Abandoned uint64 // still queued when Close's context ended
}

// A Dispatcher posts segment changes to a webhook endpoint. Make one with
// New and Close it on shutdown. It is safe for concurrent use.
type Dispatcher struct {
	cfg    Config
	target string
	ctx    context.Context // cancelled when Close gives up
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	ready    list.List     // of *job to attempt now, oldest first
	retries  retryHeap     // of *job waiting for a retry
	all      list.List     // of every *job not finished, in the order queued
	changed  chan struct{} // closed and replaced when the queue changes
	closing  bool
	inFlight int
	log      []*Delivery // ring
	logNext  int
	stats    Stats
}

type job struct {
	ev      Event
	body    []byte
	entry   *Delivery // in the log once an attempt ended
	queued  time.Time
	due     time.Time
	tries   int
	element *list.Element // in ready
	index   int           // in retries, or -1
	inAll   *list.Element // in all
	flying  bool          // an attempt is under way
}

// A Source reports segment changes: a *middleware.Personalizer.
type Source interface {
	// Observe registers the Observer that queues the deliveries.
	Observe(middleware.Observer)
}

// New returns a Dispatcher for cfg, or an error naming each invalid field.
// It starts the workers and registers the Dispatcher as an Observer of
// cfg.Personalizer, so that every segment change reported from then on is
// queued; call Close to stop them.
func New(cfg Config) (*Dispatcher, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.URL)
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{
		cfg:     cfg,
		target:  u.Scheme + "://" + u.Host,
		ctx:     ctx,
		cancel:  cancel,
		changed: make(chan struct{}),
		log:     make([]*Delivery, 0, cfg.LogSize),
	}
	d.wg.Add(cfg.Workers)
	for range cfg.Workers {
		go d.work()
	}
	cfg.Personalizer.Observe(middleware.Observer{SegmentChange: d.segmentChange})
	return d, nil
}

// Target returns the scheme and host deliveries go to, for display: the
// path and query of Config.URL, which may hold a token, are left out.
func (d *Dispatcher) Target() string { return d.target }

// segmentChange queues a delivery for every segment the visitor entered or
// exited. It never blocks, as an Observer must.
func (d *Dispatcher) segmentChange(c middleware.SegmentChange) {
	now := d.cfg.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	add := func(typ, seg string) {
		ev := Event{ID: newID(), Type: typ, Segment: seg, VisitorID: c.VisitorID, UserID: c.UserID, Time: c.Time.UTC()}
		j := &job{ev: ev, queued: now, index: -1}
		if d.closing {
			d.stats.Dropped++
			d.record(j, StatusDropped, 0, "reported after Close", now)
			return
		}
		if d.ready.Len()+d.retries.Len() >= d.cfg.QueueSize {
			d.dropOldest(now)
		}
		j.element = d.ready.PushBack(j)
		j.inAll = d.all.PushBack(j)
		d.stats.Enqueued++
	}
	for _, s := range c.Entered {
		add(TypeEntered, s)
	}
	for _, s := range c.Exited {
		add(TypeExited, s)
	}
	d.broadcast()
}

// dropOldest drops the queued delivery that was queued first. Only the
// attempts in flight (at most Workers) are passed over to find it.
func (d *Dispatcher) dropOldest(now time.Time) {
	var oldest *job
	for e := d.all.Front(); e != nil; e = e.Next() {
		if j := e.Value.(*job); !j.flying {
			oldest = j
			break
		}
	}
	if oldest == nil {
		return
	}
	if oldest.element != nil {
		d.ready.Remove(oldest.element)
		oldest.element = nil
	} else {
		heap.Remove(&d.retries, oldest.index)
	}
	d.finish(oldest)
	d.stats.Dropped++
	d.record(oldest, StatusDropped, 0, "queue full (Config.QueueSize)", now)
	if d.stats.Dropped&(d.stats.Dropped-1) == 0 { // log at powers of two
		d.cfg.Logger.Warn("tailor/webhook: queue full; dropping the oldest deliveries",
			"dropped", d.stats.Dropped, "queue_size", d.cfg.QueueSize, "target", d.target)
	}
}

// finish removes j from the deliveries not finished. d.mu is held.
func (d *Dispatcher) finish(j *job) {
	if j.inAll != nil {
		d.all.Remove(j.inAll)
		j.inAll = nil
	}
}

// broadcast wakes the workers waiting for a change. d.mu is held.
func (d *Dispatcher) broadcast() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// next returns a delivery to attempt now; otherwise how long until a retry
// is due (0: none is scheduled) and a channel closed at the next change;
// stop is true when the workers should exit.
func (d *Dispatcher) next() (j *job, wait time.Duration, changed <-chan struct{}, stop bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if f := d.ready.Front(); f != nil {
		j = d.ready.Remove(f).(*job)
		j.element = nil
		j.flying = true
		d.inFlight++
		return j, 0, nil, false
	}
	if d.retries.Len() > 0 {
		wait = d.retries[0].due.Sub(d.cfg.Now())
		if wait <= 0 {
			j = heap.Pop(&d.retries).(*job)
			j.flying = true
			d.inFlight++
			return j, 0, nil, false
		}
		return nil, wait, d.changed, false
	}
	if d.closing {
		return nil, 0, nil, true
	}
	return nil, 0, d.changed, false
}

func (d *Dispatcher) work() {
	defer d.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		if d.ctx.Err() != nil {
			return
		}
		j, wait, changed, stop := d.next()
		if stop {
			return
		}
		if j != nil {
			d.attempt(j)
			continue
		}
		var tc <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			tc = timer.C
		}
		select {
		case <-changed:
		case <-tc:
		case <-d.ctx.Done():
		}
		timer.Stop()
	}
}

// attempt makes one attempt at j and files the outcome.
func (d *Dispatcher) attempt(j *job) {
	if j.body == nil {
		j.body, _ = json.Marshal(j.ev) // an Event always encodes
	}
	code, retryAfter, err := d.post(j)
	now := d.cfg.Now()

	d.mu.Lock()
	defer d.mu.Unlock()
	d.inFlight--
	j.flying = false
	j.tries++
	d.stats.Attempts++
	switch {
	case err == nil && code >= 200 && code < 300:
		d.finish(j)
		d.stats.Delivered++
		d.record(j, StatusDelivered, code, "", now)
		return
	case d.ctx.Err() != nil:
		d.finish(j)
		d.stats.Abandoned++
		d.record(j, StatusAbandoned, code, "Close's context ended during the attempt", now)
		return
	}
	msg := ""
	retry := true
	if err != nil {
		msg = err.Error()
	} else {
		msg = "HTTP " + strconv.Itoa(code)
		retry = code == http.StatusTooManyRequests || code >= 500
		if code >= 300 && code < 400 {
			msg += " (redirects are not followed)"
		}
	}
	if !retry || j.tries >= d.cfg.MaxAttempts {
		if retry {
			msg = fmt.Sprintf("gave up after %d attempts: %s", j.tries, msg)
		}
		d.finish(j)
		d.stats.Failed++
		d.record(j, StatusFailed, code, msg, now)
		d.cfg.Logger.Warn("tailor/webhook: delivery failed", "delivery", j.ev.ID, "type", j.ev.Type,
			"segment", j.ev.Segment, "attempts", j.tries, "err", msg, "target", d.target)
		d.cfg.Logger.Debug("tailor/webhook: failed delivery", "delivery", j.ev.ID, "visitor", j.ev.VisitorID)
		return
	}
	wait := d.backoff(j.tries)
	if retryAfter >= 0 {
		wait = min(retryAfter, d.cfg.BackoffMax)
	}
	j.due = now.Add(wait)
	d.record(j, StatusRetrying, code, msg, now)
	j.entry.Next = j.due
	heap.Push(&d.retries, j)
	d.broadcast()
}

// backoff returns the wait after the given number of failed attempts:
// BackoffBase doubled for each attempt after the first, at most BackoffMax,
// drawn uniformly in its upper half.
func (d *Dispatcher) backoff(tries int) time.Duration {
	w := d.cfg.BackoffBase
	for i := 1; i < tries && w < d.cfg.BackoffMax; i++ {
		w *= 2
	}
	w = min(w, d.cfg.BackoffMax)
	half := w / 2
	return half + time.Duration(mrand.Int64N(int64(w-half)+1))
}

// post sends j once. It returns the answer's status, the wait asked for by
// a Retry-After header (-1 without one), or the error that kept the
// request from getting an answer.
func (d *Dispatcher) post(j *job) (code int, retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.cfg.URL, bytes.NewReader(j.body))
	if err != nil {
		return 0, -1, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tailor-webhook/1")
	req.Header.Set(DeliveryHeader, j.ev.ID)
	req.Header.Set(SignatureHeader, Sign(d.cfg.Secret, d.cfg.Now(), j.body))
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a token
		}
		if errors.Is(err, context.DeadlineExceeded) && d.ctx.Err() == nil {
			err = fmt.Errorf("no answer within %v (Config.Timeout)", d.cfg.Timeout)
		}
		return 0, -1, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), d.cfg.Now()), nil
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP
// date. It returns -1 for none or an unreadable one.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return -1
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return -1
		}
		return time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return -1
}

// record files the outcome of j in the log. d.mu is held.
func (d *Dispatcher) record(j *job, st Status, code int, msg string, now time.Time) {
	e := j.entry
	if e == nil {
		e = &Delivery{Event: j.ev, Queued: j.queued}
		j.entry = e
		if len(d.log) < cap(d.log) {
			d.log = append(d.log, e)
		} else {
			d.log[d.logNext] = e
			d.logNext = (d.logNext + 1) % len(d.log)
		}
	}
	e.Status, e.Attempts, e.Code, e.Err, e.Updated, e.Next = st, j.tries, code, msg, now, time.Time{}
}

// Log returns the last Config.LogSize deliveries, most recently queued
// first. A delivery enters the log when its first attempt ends (or it is
// dropped), and its entry follows its retries.
func (d *Dispatcher) Log() []Delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Delivery, 0, len(d.log))
	for _, e := range d.log {
		out = append(out, *e)
	}
	slices.SortStableFunc(out, func(a, b Delivery) int { return b.Queued.Compare(a.Queued) })
	return out
}

// Stats returns the current counters.
func (d *Dispatcher) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Queued = d.ready.Len() + d.retries.Len()
	s.InFlight = d.inFlight
	return s
}

// Close stops taking changes and delivers what is queued, retries
// included, until ctx is done; then it abandons the rest, counted in
// Stats.Abandoned, and returns an error saying how many. Changes reported
// after Close are dropped.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		d.wg.Wait()
		return nil
	}
	d.closing = true
	d.broadcast()
	d.mu.Unlock()

	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		d.cancel()
		<-done
		err = ctx.Err()
	}
	d.cancel()
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.cfg.Now()
	n := 0
	for f := d.ready.Front(); f != nil; f = d.ready.Front() {
		j := d.ready.Remove(f).(*job)
		j.element = nil
		d.finish(j)
		d.record(j, StatusAbandoned, 0, "still queued when Close's context ended", now)
		n++
	}
	for d.retries.Len() > 0 {
		j := heap.Pop(&d.retries).(*job)
		d.finish(j)
		d.record(j, StatusAbandoned, j.entry.Code, "still waiting for a retry when Close's context ended", now)
		n++
	}
	d.stats.Abandoned += uint64(n)
	if err != nil {
		return fmt.Errorf("tailor/webhook: close: %d deliveries abandoned: %w", d.stats.Abandoned, err)
	}
	return nil
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// retryHeap orders jobs by due time.
type retryHeap []*job

func (h retryHeap) Len() int { return len(h) }
func (h retryHeap) Less(i, k int) bool {
	return h[i].due.Before(h[k].due)
}
func (h retryHeap) Swap(i, k int) {
	h[i], h[k] = h[k], h[i]
	h[i].index, h[k].index = i, k
}
func (h *retryHeap) Push(x any) {
	j := x.(*job)
	j.index = len(*h)
	*h = append(*h, j)
}
func (h *retryHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	j.index = -1
	return j
}
