package core

import (
	"context"
	"slices"
	"testing"

	"github.com/tailorhq/tailor/middleware/internal/cookie"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// TestNewVisitorPageViewAfterKeptAside checks that the page view of a new
// visitor who identified as a user, folded into the user's state at once,
// does not hide a page view that another browser of the user kept aside
// there: both are in the cached profile, and in the classification.
func TestNewVisitorPageViewAfterKeptAside(t *testing.T) {
	t.Parallel()
	mem := newFlaky(0, false) // a memory store without segment jobs, whose writes would make the state stale
	c := newCore(t, mem)
	set, _ := rules.NewSet(rules.Segment{Name: "w", Rule: rules.PageVisited(rules.PageVisits{Path: "/w"})})
	c.cfg.Engine.Load(set)
	ctx := context.Background()
	vA, ckA := newVisitor(t, c)
	c.Record(vA, track("hello"))
	flushAll(t, c)
	wA := returning(t, c, ckA)
	if err := c.IdentifyVisitor(ctx, wA, "u1", "user:u1", c.Now()); err != nil {
		t.Fatal(err)
	}
	flushAll(t, c)
	ckA2, err := c.cfg.Cookies.Cookie(cookie.ID{Visitor: wA.ID(), User: "u1"}, nil, request("/", nil), c.Now())
	if err != nil {
		t.Fatal(err)
	}
	wA2 := returning(t, c, ckA2)
	id := wA2.bind().pid
	if id != "user:u1" {
		t.Fatalf("pid %s", id)
	}
	vB, _ := newVisitor(t, c)
	if err := c.IdentifyVisitor(ctx, vB, "u1", "user:u1", c.Now()); err != nil {
		t.Fatal(err)
	}
	// No flush from now on: its refresh would take the stored profile,
	// which has not the new visitor's page view (it travels in the
	// cookie until the visitor comes back).
	c.lockFlush()
	defer c.unlockFlush()
	c.RecordPageView(wA2, store.Event{Type: store.TypePage, Path: "/w"}) // kept aside
	if len(wA2.bind().st.later) != 1 {
		t.Fatalf("later %d", len(wA2.bind().st.later))
	}
	if vB.bind().st != wA2.bind().st {
		t.Fatal("the two browsers of the user have different states")
	}
	c.Record(vB, store.Event{Type: store.TypePage, Path: "/v"}) // v.New: applied directly (Visitor.Page)
	x := new(Visit)
	c.Begin(request("/again", ckA2), x)
	want, _ := mem.Load(ctx, id)
	if want == nil {
		want = store.New(id)
	}
	want.Apply(store.Limits{}, c.queue.Get(id)...)
	exp := c.cfg.Engine.Classify(&rules.Input{Profile: want, Request: x.Facts, Now: x.Now})
	p := c.Profile(wA2)
	if p.Pages["/w"] != 1 || p.Pages["/v"] != 1 || !slices.Equal(x.Segments, exp) {
		t.Errorf("cached pages %v, store and queue %v; Begin classified %v, a fresh classification %v", p.Pages, want.Pages, x.Segments, exp)
	}
}
