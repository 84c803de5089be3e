package slots_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/slots"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// In a preview, conditions over the profile read the previewed visitor's
// profile (or an empty one), never the previewing browser's own.
func TestPreviewConditionsReadPreviewedProfile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := memory.New(store.Limits{})
	const member = "00112233445566778899aabbccddeeff"
	now := time.Now()
	if _, err := st.Apply(ctx, member, []store.Event{
		{ID: "m1", Type: store.TypePage, Time: now.Add(-time.Hour), Path: "/products/moneyball", Category: "baseball-books"},
	}); err != nil {
		t.Fatal(err)
	}
	set := mustSet(t, slots.Slot{
		Name: "hero",
		Variants: []slots.Variant{
			{Key: "buyer", Priority: 9, Condition: mustCondition(t, `{"counts.purchase": {"$gte": 1}}`)},
			{Key: "reader", Priority: 5, Condition: mustCondition(t, `{"categories.baseball-books": {"$gte": 1}}`)},
		},
	})
	s := newSite(t, st, []middleware.KeyPair{middleware.GenerateKeyPair()})
	editor := &browser{}
	s.visit(editor, "/", func(http.ResponseWriter, *http.Request) {})
	s.visit(editor, "/", func(w http.ResponseWriter, r *http.Request) {
		middleware.FromContext(r.Context()).Purchase(store.Item{ID: "snowshoes"})
	})
	pick := func(path string) string {
		var got string
		s.with(editor, path, func(v *middleware.Visitor) { got = set.Pick(v, "hero").Variant })
		return got
	}
	if got := pick("/"); got != "buyer" {
		t.Fatalf("the editor's own hero: %q", got)
	}
	as, err := s.p.PreviewLinkAs("/", member, []string{"red-sox-fan"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := pick(as); got != "reader" {
		t.Errorf("preview as %s: hero %q, want reader", member, got)
	}
	empty, err := s.p.PreviewLink("/", []string{"customer"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := pick(empty); got != slots.DefaultKey {
		t.Errorf("preview with an empty profile: hero %q, want %q", got, slots.DefaultKey)
	}
}
