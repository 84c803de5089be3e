package assoc_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tailorhq/tailor/rules/assoc"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

func snapshotOf(t *testing.T, m *assoc.Model) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := m.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// buy applies an order of items to profile id.
func buy(t *testing.T, st store.Store, id string, seq int, items ...string) {
	t.Helper()
	e := store.Event{ID: store.EventID("t", uint64(seq)), Type: store.TypeTrack, Name: store.EventPurchase, Time: time.Now()}
	for _, it := range items {
		e.Items = append(e.Items, store.Item{ID: it, Category: "cat-" + it})
	}
	if _, err := st.Apply(context.Background(), id, []store.Event{e}); err != nil {
		t.Fatal(err)
	}
}

// TestFollow: models following one store learn every purchase, the same
// counts as a model taught every basket whole; a new one starts from the
// snapshot; the journal is trimmed of what snapshots hold.
func TestFollow(t *testing.T) {
	ctx := context.Background()
	st := memory.New(store.Limits{})
	ref := assoc.New(assoc.Config{})
	baskets := map[string][]string{}
	r := rand.New(rand.NewPCG(3, 4))
	seq := 0
	order := func(id string, items ...string) {
		seq++
		buy(t, st, id, seq, items...)
		for _, it := range items {
			ref.SetCategory(it, "cat-"+it)
		}
		ref.Learn(assoc.Basket{Bought: baskets[id]}, assoc.Basket{Bought: items})
		baskets[id] = append(baskets[id], items...)
	}
	for i := range 200 {
		id := fmt.Sprint("v", i)
		if i%5 < 2 {
			order(id, "moneyball", "red-sox-banner")
			if r.Float64() < 0.8 {
				order(id, "red-sox-potato-head")
			}
		} else {
			order(id, fmt.Sprint("item-", r.IntN(30)), fmt.Sprint("item-", r.IntN(30)))
		}
	}
	cfg := assoc.FollowConfig{Store: st, Interval: time.Hour, SnapshotEvery: time.Hour}
	a, b := assoc.New(assoc.Config{}), assoc.New(assoc.Config{})
	fa, err := assoc.Follow(ctx, a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := assoc.Follow(ctx, b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	want := snapshotOf(t, ref)
	if !bytes.Equal(snapshotOf(t, a), want) || !bytes.Equal(snapshotOf(t, b), want) {
		t.Fatal("a follower's counts differ from those of the baskets learnt whole")
	}
	rules := a.Rules("moneyball", "red-sox-banner")
	if len(rules) == 0 || rules[0].Then != "red-sox-potato-head" {
		t.Fatalf("rules of the seed story: %+v", rules)
	}

	// A snapshot, then purchases: a new follower loads the snapshot and
	// learns only what came after it.
	if err := fa.WriteSnapshot(ctx); err != nil {
		t.Fatal(err)
	}
	order("late", "moneyball", "red-sox-banner", "red-sox-potato-head")
	seeded := false
	c := assoc.New(assoc.Config{})
	fc, err := assoc.Follow(ctx, c, assoc.FollowConfig{Store: st, Interval: time.Hour, Seed: func(*assoc.Model) { seeded = true }})
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	if s := fc.Stats(); s.Learnt != 1 || seeded {
		t.Fatalf("a follower started from the snapshot learnt %d purchases (want 1), seeded %v", s.Learnt, seeded)
	}
	for _, f := range []*assoc.Follower{fa, fb} {
		if err := f.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want = snapshotOf(t, ref)
	for name, m := range map[string]*assoc.Model{"a": a, "b": b, "c": c} {
		if !bytes.Equal(snapshotOf(t, m), want) {
			t.Fatalf("model %s differs after the late purchase", name)
		}
	}

	// A follower's second snapshot trims what was journaled before its
	// first, less SnapshotEvery.
	fd, err := assoc.Follow(ctx, assoc.New(assoc.Config{}), assoc.FollowConfig{Store: st, Interval: time.Hour, SnapshotEvery: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if err := fd.WriteSnapshot(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	order("later", "snowshoes", "thermal-gloves")
	if err := fd.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fd.WriteSnapshot(ctx); err != nil {
		t.Fatal(err)
	}
	ps, _, err := st.Purchases(ctx, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].ID != "later" {
		t.Fatalf("the journal after the second snapshot: %d purchases, want the one made after the first", len(ps))
	}
	// And a new follower starts from that snapshot, with everything.
	e := assoc.New(assoc.Config{})
	fe, err := assoc.Follow(ctx, e, assoc.FollowConfig{Store: st, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer fe.Close()
	if !bytes.Equal(snapshotOf(t, e), snapshotOf(t, ref)) {
		t.Fatal("a follower started after the trim misses purchases")
	}
}

func TestFollowNeedsAJournal(t *testing.T) {
	type plain struct{ store.Store }
	_, err := assoc.Follow(context.Background(), assoc.New(assoc.Config{}), assoc.FollowConfig{Store: plain{memory.New(store.Limits{})}})
	if err == nil {
		t.Fatal("Follow over a store without a journal: no error")
	}
}

// TestFollowWritesAFirstSnapshot: over a store with no snapshot, the
// follower that holds the lease writes one as soon as it learnt the
// journal, so that the next start is warm.
func TestFollowWritesAFirstSnapshot(t *testing.T) {
	ctx := context.Background()
	st := memory.New(store.Limits{})
	buy(t, st, "v", 1, "moneyball", "red-sox-banner")
	m := assoc.New(assoc.Config{})
	f, err := assoc.Follow(ctx, m, assoc.FollowConfig{Store: st, Interval: 10 * time.Millisecond, SnapshotEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := st.Document(ctx, assoc.DefaultFollowDocument); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no snapshot written")
		}
	}
	if f.Stats().Snapshot.IsZero() {
		t.Fatal("Stats does not say a snapshot was written")
	}
	// A second follower starts from it, learning nothing from the journal.
	g, err := assoc.Follow(ctx, assoc.New(assoc.Config{}), assoc.FollowConfig{Store: st, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if n := g.Stats().Learnt; n != 0 {
		t.Fatalf("the second follower learnt %d purchases from the journal, want 0", n)
	}
}

// TestFollowOldSnapshot: a snapshot of an earlier format is not an error:
// the follower learns the journal again, seeds the model, and replaces the
// snapshot with one of its own.
func TestFollowOldSnapshot(t *testing.T) {
	ctx := context.Background()
	st := memory.New(store.Limits{})
	buy(t, st, "v1", 1, "a", "b")
	// A follower's document holding a format 1 model snapshot.
	old := append([]byte("tailor-assoc-follow\x01\x00"), "tailor-assoc\x01 and the rest of an old snapshot"...)
	if err := st.PutDocument(ctx, "tailor/assoc", old); err != nil {
		t.Fatal(err)
	}
	seeded := false
	m := assoc.New(assoc.Config{MinSupport: 1, MinLift: -1})
	f, err := assoc.Follow(ctx, m, assoc.FollowConfig{Store: st, Interval: 10 * time.Millisecond, SnapshotEvery: time.Hour,
		Seed: func(*assoc.Model) { seeded = true }})
	if err != nil {
		t.Fatalf("Follow over an old snapshot: %v", err)
	}
	defer f.Close()
	if !seeded {
		t.Error("the model was not seeded")
	}
	if rs := m.Rules("a"); len(rs) != 1 || rs[0].Then != "b" {
		t.Errorf("Rules(a) = %v, want a => b from the journal", rs)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		doc, err := st.Document(ctx, "tailor/assoc")
		if err == nil && !bytes.Equal(doc, old) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the old snapshot was not replaced")
		}
	}
}

// TestFollowHeavyBuyer: a visitor past store.Limits.Items stays one
// visitor in the model, whose basket is the profile's.
func TestFollowHeavyBuyer(t *testing.T) {
	ctx := context.Background()
	st := memory.New(store.Limits{Items: 3})
	buy(t, st, "heavy", 1, "a", "b")
	buy(t, st, "heavy", 2, "c", "d")
	buy(t, st, "heavy", 3, "e")
	buy(t, st, "heavy", 4, "a", "f")
	m := assoc.New(assoc.Config{MinSupport: -1, MinConfidence: -1, MinLift: -1})
	f, err := assoc.Follow(ctx, m, assoc.FollowConfig{Store: st, Interval: time.Hour, SnapshotEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if st := m.Stats(); st.Baskets != 1 || st.Items != 3 {
		t.Errorf("stats %+v, want 1 basket of 3 items (the profile's a, b, c)", st)
	}
	if err := assoc.CheckInvariants(m); err != nil {
		t.Fatal(err)
	}
}

// TestFollowLearnt: FollowConfig.Learnt hears of every purchase learnt,
// at the catch-up and at each Sync, and of nothing when nothing was.
func TestFollowLearnt(t *testing.T) {
	ctx := context.Background()
	st := memory.New(store.Limits{})
	for i := range 7 {
		buy(t, st, fmt.Sprint("v", i), i+1, "moneyball", "red-sox-banner")
	}
	var calls, total int
	f, err := assoc.Follow(ctx, assoc.New(assoc.Config{}), assoc.FollowConfig{Store: st, Interval: time.Hour,
		Learnt: func(n int) { calls++; total += n }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if total != 7 || calls == 0 {
		t.Fatalf("after the catch-up: Learnt called %d times with %d purchases in all, want 7", calls, total)
	}
	calls, total = 0, 0
	if err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if calls != 0 {
		t.Fatalf("a Sync that learnt nothing called Learnt %d times", calls)
	}
	buy(t, st, "late", 8, "snowshoes")
	if err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if calls != 1 || total != 1 {
		t.Fatalf("after one more purchase: Learnt called %d times with %d, want once with 1", calls, total)
	}
}
