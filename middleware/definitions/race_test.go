package definitions_test

import (
	"context"
	"strings"
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
