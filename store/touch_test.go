package store_test

import (
	"fmt"
	"testing"

	"github.com/tailorhq/tailor/store"
)

// TestTouchRanges: every key's part of a counter is within the counter's
// range, the ranges and the named parts do not overlap, and together
// they are every part.
func TestTouchRanges(t *testing.T) {
	named := store.TouchVisits | store.TouchSeen | store.TouchRecent | store.TouchPurchases | store.TouchTraits | store.TouchOther
	ranges := map[string]store.Touch{"counts": store.TouchCounts, "pages": store.TouchPages,
		"categories": store.TouchCategories, "views": store.TouchViews}
	for i := range 2000 {
		k := fmt.Sprint("key-", i)
		for name, got := range map[string]store.Touch{"counts": store.TouchCount(k), "pages": store.TouchPage(k),
			"categories": store.TouchCategory(k), "views": store.TouchView(k)} {
			if got&^ranges[name] != 0 {
				t.Fatalf("the %s part of %q, %b, is outside the range %b", name, k, got, ranges[name])
			}
		}
	}
	if store.TouchCount(store.TypePage)&^store.TouchCounts != 0 {
		t.Fatal("the part of the page count is outside TouchCounts")
	}
	union := named
	for name, r := range ranges {
		if r&union != 0 {
			t.Fatalf("the range of %s overlaps another part: %b & %b", name, r, union)
		}
		union |= r
	}
	if union != store.TouchAll {
		t.Fatalf("the parts together are %b, not every part", union)
	}
}
