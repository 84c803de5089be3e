package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

func TestStoredVisitor(t *testing.T) {
	st := memory.New(store.Limits{})
	p := newP(t, st, nil)
	var id string
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { id = middleware.FromContext(r.Context()).ID() })
	mux.HandleFunc("/signin", func(w http.ResponseWriter, r *http.Request) {
		if err := p.Identify(w, r, "u-1", nil); err != nil {
			t.Error(err)
		}
	})
	srv := httptest.NewServer(p.Handler(mux))
	defer srv.Close()
	c := newClient(t, srv)
	c.get("/")
	c.get("/") // back with the cookie: kept, and returning
	ctx := context.Background()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// Another instance over the same store reads the profile.
	other := newP(t, st, nil)
	v, err := other.StoredVisitor(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if v.ID() != id || !v.Tracked() || v.Consent() != middleware.ConsentFull || len(v.Segments()) != 0 {
		t.Errorf("stored visitor: id %q, tracked %v, consent %v, segments %v; want %s, tracked, full, no segments",
			v.ID(), v.Tracked(), v.Consent(), v.Segments(), id)
	}
	if err := v.Purchase(store.Item{ID: "cap", Price: 20, Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	if err := other.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if prof, err := st.Load(ctx, id); err != nil || prof.Purchases.Count != 1 {
		t.Fatalf("after a purchase through the stored visitor: %+v, %v", prof, err)
	}
	// Classified from the profile: now a customer.
	if v, err := newP(t, st, nil).StoredVisitor(ctx, id); err != nil || !slices.Equal(v.Segments(), []string{"customer"}) {
		t.Errorf("after a purchase: %v, %v; want [customer]", v.Segments(), err)
	}

	// Signed in, the visitor's id leads to the user's profile, as does
	// "user:u-1".
	c.get("/signin")
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	third := newP(t, st, nil)
	for _, key := range []string{id, "user:u-1"} {
		v, err := third.StoredVisitor(ctx, key)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if v.UserID() != "u-1" || !v.In("customer") {
			t.Errorf("%s: user %q, segments %v; want u-1 in customer", key, v.UserID(), v.Segments())
		}
	}

	for key, want := range map[string]error{
		"0123456789abcdef0123456789abcdef": store.ErrNotFound,
		"user:nobody":                      store.ErrNotFound,
		"":                                 store.ErrInvalidID,
	} {
		if _, err := p.StoredVisitor(ctx, key); !errors.Is(err, want) {
			t.Errorf("StoredVisitor(%q): %v, want %v", key, err, want)
		}
	}
	// An erased visitor is not found.
	if err := p.Forget(ctx, "u-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.StoredVisitor(ctx, "user:u-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after Forget: %v, want ErrNotFound", err)
	}
}
