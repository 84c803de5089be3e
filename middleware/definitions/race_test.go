package definitions_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware/definitions"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// hookedStore is a memory store whose Subscribe runs beforeSubscribe first:
// it forces what happens while an instance is opening.
type hookedStore struct {
	*memory.Store
	beforeSubscribe func()
}

func (s *hookedStore) Subscribe(ctx context.Context, fn func(store.Change)) error {
	if f := s.beforeSubscribe; f != nil {
		s.beforeSubscribe = nil
		f()
	}
	return s.Store.Subscribe(ctx, fn)
}

// TestPublishedWhileOpening: a version published while an instance opens,
// after it read the store's version and before it listens to the
// announcements, still reaches it at once, not at the next poll (an hour
// here).
func TestPublishedWhileOpening(t *testing.T) {
	ctx := context.Background()
	mem := memory.New(store.Limits{})
	a := open(t, mem)
	st := &hookedStore{Store: mem}
	st.beforeSubscribe = func() {
		if _, err := a.defs.Publish(ctx, definitions.Content{Segments: segsPricing}, 0, "ann", "while b opens"); err != nil {
			t.Error(err)
		}
	}
	b := open(t, st)
	waitVersion(t, b, 1, 10*time.Second)
	if got := names(b.segs); !strings.Contains(got, "pricing-curious") {
		t.Fatalf("the instance opened during the publication serves %q", got)
	}
}

// clockLeases is a store whose leases expire by a clock the test moves, and
// whose PutDocument runs afterPut (once) after the document of that name
// is written.
type clockLeases struct {
	*memory.Store
	mu       sync.Mutex
	now      time.Time
	leases   map[string]lease
	afterPut map[string]func()
}

type lease struct {
	holder string
	until  time.Time
}

func (s *clockLeases) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.leases[name]; ok && l.holder != holder && s.now.Before(l.until) {
		return false, nil
	}
	s.leases[name] = lease{holder, s.now.Add(ttl)}
	return true, nil
}

func (s *clockLeases) Release(ctx context.Context, name, holder string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leases[name].holder == holder {
		delete(s.leases, name)
	}
	return nil
}

func (s *clockLeases) advance(d time.Duration) {
	s.mu.Lock()
	s.now = s.now.Add(d)
	s.mu.Unlock()
}

func (s *clockLeases) PutDocument(ctx context.Context, name string, data []byte) error {
	if err := s.Store.PutDocument(ctx, name, data); err != nil {
		return err
	}
	s.mu.Lock()
	f := s.afterPut[name]
	delete(s.afterPut, name)
	s.mu.Unlock()
	if f != nil {
		f()
	}
	return nil
}

// TestLeaseExpiresDuringPublish: a publisher so slow that its lease
// expires between writing its version and writing the head, while another
// instance publishes the same version number, must not then write its head
// over the other's: the head would credit it with the other's content, and
// it would serve its own content as that version while every other
// instance serves the other's.
func TestLeaseExpiresDuringPublish(t *testing.T) {
	ctx := context.Background()
	st := &clockLeases{Store: memory.New(store.Limits{}), now: time.Unix(1e9, 0), leases: map[string]lease{}, afterPut: map[string]func(){}}
	a, b := open(t, st), open(t, st)
	const segsB = `{"segments": [{"name": "from-b", "rule": {"visits": {"min": 3}}}]}`
	st.afterPut["tailor/definitions/v/1"] = func() {
		// a has written version 1 and stalls for longer than its lease;
		// meanwhile b publishes.
		st.advance(time.Hour)
		if _, err := b.defs.Publish(ctx, definitions.Content{Segments: segsB}, 0, "bob", "b's"); err != nil {
			t.Errorf("b publishes while a stalls: %v", err)
		}
	}
	_, errA := a.defs.Publish(ctx, definitions.Content{Segments: segsPricing}, 0, "ann", "a's")
	if errA == nil {
		t.Errorf("a published after its lease expired and b published the same version")
	}
	h, err := a.defs.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || h[0].By != "bob" {
		t.Fatalf("history %+v, want b's version 1 alone", h)
	}
	c, err := a.defs.Content(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Segments != segsB {
		t.Fatalf("version 1 by %s holds %s", h[0].By, c.Segments)
	}
	waitVersion(t, a, 1, 10*time.Second)
	for _, in := range []*instance{a, b} {
		if got := names(in.segs); got != "from-b" {
			t.Errorf("an instance serves %q as version 1, want b's from-b", got)
		}
	}
}

// TestDraftLostUpdate: two editors read the draft, and each saves it with
// a change of their own; the second save is refused (ErrDraftChanged) instead
// of silently undoing the first one's change. Saving again from the draft
// read anew keeps both changes.
func TestDraftLostUpdate(t *testing.T) {
	ctx := context.Background()
	a := open(t, memory.New(store.Limits{}))
	first, err := a.defs.Draft(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second := first
	first.Content.Segments = segsPricing
	first.By = "ann"
	if err := a.defs.SaveDraft(ctx, first); err != nil {
		t.Fatal(err)
	}
	second.Content.Slots = ""
	second.By = "bob"
	if err := a.defs.SaveDraft(ctx, second); !errors.Is(err, definitions.ErrDraftChanged) {
		t.Fatalf("a save over a draft changed since it was read: %v, want ErrDraftChanged", err)
	}
	got, err := a.defs.Draft(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Content.Segments != segsPricing || got.By != "ann" {
		t.Fatalf("the draft after the refused save: %+v", got)
	}
	got.Content.Slots = ""
	got.By = "bob"
	if err := a.defs.SaveDraft(ctx, got); err != nil {
		t.Fatalf("saving from the draft read anew: %v", err)
	}
	if got, _ := a.defs.Draft(ctx); got.Content.Segments != segsPricing || got.Content.Slots != "" {
		t.Fatalf("the draft has %+v, want both changes", got.Content)
	}

	// A discard, or a publication of the draft, changes the draft too: a
	// save read before it is refused.
	before, _ := a.defs.Draft(ctx)
	if err := a.defs.DiscardDraft(ctx); err != nil {
		t.Fatal(err)
	}
	before.Content.Segments = segsV0
	if err := a.defs.SaveDraft(ctx, before); !errors.Is(err, definitions.ErrDraftChanged) {
		t.Fatalf("a save read before a discard: %v, want ErrDraftChanged", err)
	}
	dr, _ := a.defs.Draft(ctx)
	dr.Content = definitions.Content{Segments: segsPricing}
	if err := a.defs.SaveDraft(ctx, dr); err != nil {
		t.Fatal(err)
	}
	before, _ = a.defs.Draft(ctx)
	if _, err := a.defs.Publish(ctx, dr.Content, dr.Base, "ann", "go"); err != nil {
		t.Fatal(err)
	}
	before.Content.Segments = segsV0
	if err := a.defs.SaveDraft(ctx, before); !errors.Is(err, definitions.ErrDraftChanged) {
		t.Fatalf("a save read before the draft was published: %v, want ErrDraftChanged", err)
	}
}

// TestConcurrentOnOneInstance: editors of a site with one instance publish,
// or save the draft they all read, at the same time: one wins, the others
// are refused, as when they are on different instances. The instance's
// publication lease is one holder for all of its requests, so it alone
// does not keep them apart.
func TestConcurrentOnOneInstance(t *testing.T) {
	ctx := context.Background()
	a := open(t, memory.New(store.Limits{}))
	const n = 8
	for round := range 10 {
		base := a.defs.Status().Version
		read, err := a.defs.Draft(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var published, saved atomic.Int32
		start := make(chan struct{})
		for i := range n {
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				c := definitions.Content{Segments: segsV0}
				if i%2 == 0 {
					c = definitions.Content{Segments: segsPricing}
				}
				_, err := a.defs.Publish(ctx, c, base, fmt.Sprint("editor-", i), "race")
				switch {
				case err == nil:
					published.Add(1)
				case !errors.Is(err, definitions.ErrConflict):
					t.Errorf("publish: %v", err)
				}
			}()
			go func() {
				defer wg.Done()
				<-start
				dr := read
				dr.By = fmt.Sprint("editor-", i)
				err := a.defs.SaveDraft(ctx, dr)
				switch {
				case err == nil:
					saved.Add(1)
				case !errors.Is(err, definitions.ErrDraftChanged):
					t.Errorf("save: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if published.Load() != 1 || saved.Load() > 1 {
			t.Fatalf("round %d: %d publications from one base and %d saves of one draft read succeeded; want 1 and at most 1",
				round, published.Load(), saved.Load())
		}
		h, err := a.defs.History(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != round+1 {
			t.Fatalf("round %d: history of %d versions", round, len(h))
		}
	}
}

// readHook is a memory store whose Document runs onRead (once) before
// reading the document of that name.
type readHook struct {
	*memory.Store
	mu     sync.Mutex
	onRead map[string]func()
}

func (s *readHook) Document(ctx context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	f := s.onRead[name]
	delete(s.onRead, name)
	s.mu.Unlock()
	if f != nil {
		f()
	}
	return s.Store.Document(ctx, name)
}

// TestSaveDraftOrderedOnOneInstance: while one save of the draft has read
// the draft and not yet written it, another save on the same instance
// waits, and is then refused: it read the draft before the first save.
func TestSaveDraftOrderedOnOneInstance(t *testing.T) {
	ctx := context.Background()
	st := &readHook{Store: memory.New(store.Limits{}), onRead: map[string]func(){}}
	a := open(t, st)
	read, err := a.defs.Draft(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	st.onRead["tailor/definitions/draft"] = func() {
		// The first save is between reading and writing the draft.
		go func() {
			dr := read
			dr.By = "bob"
			second <- a.defs.SaveDraft(ctx, dr)
		}()
		select {
		case err := <-second:
			second <- err
		case <-time.After(200 * time.Millisecond):
		}
	}
	first := read
	first.Content.Segments, first.By = segsPricing, "ann"
	if err := a.defs.SaveDraft(ctx, first); err != nil {
		t.Fatalf("first save: %v", err)
	}
	if err := <-second; !errors.Is(err, definitions.ErrDraftChanged) {
		t.Fatalf("a second save of the same draft read, made during the first: %v, want ErrDraftChanged", err)
	}
	if got, _ := a.defs.Draft(ctx); got.By != "ann" || got.Content.Segments != segsPricing {
		t.Fatalf("the draft is %+v, want ann's", got)
	}
}
