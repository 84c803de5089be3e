package store_test

import (
	"slices"
	"testing"

	"github.com/tailorhq/tailor/store"
)

// The purchases a profile journals are those it keeps: past Limits.Items,
// the new items of an order are left out of the profile and of the
// journal alike, so that a journal's baskets are the profiles' own.
func TestJournalKeepsTheProfilesItems(t *testing.T) {
	lim := store.Limits{Items: 3}
	p := store.New("v")
	buy := func(seq uint64, ids ...string) []store.Purchase {
		e := store.Event{ID: store.EventID("t", seq), Type: store.TypeTrack, Name: store.EventPurchase}
		for _, id := range ids {
			e.Items = append(e.Items, store.Item{ID: id})
		}
		p.Apply(lim, e)
		return p.TakePurchases()
	}
	items := func(ps []store.Purchase) (out []string) {
		for _, pu := range ps {
			for _, it := range pu.Items {
				out = append(out, it.ID)
			}
		}
		return out
	}
	if got := items(buy(1, "b", "a")); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("first order journaled %v, want [a b]", got)
	}
	// c fits, d and e do not; a is held already.
	ps := buy(2, "c", "d", "a", "e")
	if got := items(ps); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("second order journaled %v, want [a c]", got)
	}
	if len(ps) != 1 || !slices.Equal(ps[0].Prior, []string{"a", "b"}) {
		t.Errorf("second order's prior %+v, want [a b]", ps)
	}
	held := make([]string, 0, len(p.Purchases.Items))
	for id := range p.Purchases.Items {
		held = append(held, id)
	}
	slices.Sort(held)
	if !slices.Equal(held, []string{"a", "b", "c"}) {
		t.Errorf("profile holds %v, want [a b c]", held)
	}
	// An order of items past the limit only journals nothing.
	if ps := buy(3, "d", "e"); len(ps) != 0 {
		t.Errorf("an order of items the profile does not keep journaled %+v", ps)
	}
}
