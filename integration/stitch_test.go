package integration_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

func TestStitchAcrossInstancesRedis(t *testing.T)    { stitchAcross(t, redisStores(t)) }
func TestStitchAcrossInstancesPostgres(t *testing.T) { stitchAcross(t, pgStores(t)) }

// stitchInstance is an app instance with a sign-in (/login?user=) and a
// page that answers with the visitor's id and segments.
type stitchInstance struct {
	p *middleware.Personalizer
	h http.Handler
}

func newStitchInstance(t *testing.T, st store.Store) *stitchInstance {
	e, err := rules.NewEngine(
		rules.Segment{Name: "crm-opportunity", Priority: 3, Rule: rules.Trait("crm_stage", "opportunity")},
		rules.Segment{Name: "customer", Priority: 2, Rule: rules.Purchased(1)},
		rules.Segment{Name: "red-sox-fan", Priority: 1, Rule: rules.CategoryViews("red-sox", 2)},
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := middleware.New(middleware.Config{Keys: keys, Store: st, Engine: e, Logger: quietLogger(), WriteBehind: middleware.WriteBehindConfig{FlushInterval: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		switch r.URL.Path {
		case "/login":
			if err := p.Identify(w, r, r.URL.Query().Get("user"), nil); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		case "/buy":
			v.Purchase(store.Item{ID: "cap", Category: "red-sox", Price: 20})
		}
		if cat := r.URL.Query().Get("cat"); cat != "" {
			v.Describe(cat, "")
		}
		w.Write([]byte(strings.Join(append([]string{v.ID()}, v.Segments()...), " ")))
	}))
	return &stitchInstance{p: p, h: h}
}

// stitchBrowser keeps its cookie, and goes to whichever instance it is
// told.
type stitchBrowser struct {
	t      *testing.T
	cookie *http.Cookie
}

func (b *stitchBrowser) get(in *stitchInstance, path string) (id string, segments []string) {
	b.t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("User-Agent", ua)
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	rec := httptest.NewRecorder()
	in.h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	if c := rec.Result().Cookies(); len(c) > 0 {
		b.cookie = c[0]
	}
	f := strings.Fields(rec.Body.String())
	return f[0], f[1:]
}

// until polls the segments of b's page on in until they hold want.
func (b *stitchBrowser) until(in *stitchInstance, want ...string) []string {
	b.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, segs := b.get(in, "/")
		ok := true
		for _, w := range want {
			ok = ok && slices.Contains(segs, w)
		}
		if ok {
			return segs
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("segments %v, want %v", segs, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stitchAcross: a user signs in on two browsers through two instances
// sharing a store; each browser gets the other's history, and a CRM stage
// set through one instance reaches the browser on the other. After Close,
// the user's stored profile holds everything once.
func stitchAcross(t *testing.T, newStore func(t *testing.T) store.Store) {
	st := newStore(t)
	a, b := newStitchInstance(t, st), newStitchInstance(t, newStore(t))
	laptop, phone := &stitchBrowser{t: t}, &stitchBrowser{t: t}

	idLaptop, _ := laptop.get(a, "/?cat=red-sox")
	laptop.get(b, "/?cat=red-sox") // the return, on the other instance
	laptop.until(a, "red-sox-fan")
	laptop.get(a, "/login?user=ana@example.com")

	idPhone, _ := phone.get(b, "/")
	phone.get(b, "/buy")
	phone.get(b, "/login?user=ana@example.com")
	// The phone gets the laptop's history, the laptop the phone's order.
	phone.until(b, "red-sox-fan", "customer")
	laptop.until(a, "red-sox-fan", "customer")
	laptop.until(b, "red-sox-fan", "customer")

	// A CRM marks the user an opportunity through instance b; the laptop
	// sees it on instance a.
	if err := b.p.IdentifyUser(context.Background(), "ana@example.com", map[string]any{"crm_stage": "opportunity"}); err != nil {
		t.Fatal(err)
	}
	laptop.until(a, "crm-opportunity", "red-sox-fan", "customer")

	for _, in := range []*stitchInstance{a, b} {
		if err := in.p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	prof, err := st.Load(context.Background(), "user:ana@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if prof.Categories["red-sox"] != 2 || prof.Purchases.Count != 1 || string(prof.Trait("crm_stage")) != `"opportunity"` {
		t.Errorf("categories %v, purchases %+v, traits %s", prof.Categories, prof.Purchases, prof.Traits)
	}
	if !slices.Contains(prof.Aliases, idLaptop) || !slices.Contains(prof.Aliases, idPhone) {
		t.Errorf("aliases %v, want %s and %s", prof.Aliases, idLaptop, idPhone)
	}
	for _, id := range []string{idLaptop, idPhone} {
		if v, err := st.Load(context.Background(), id); err != nil || v.MergedInto != "user:ana@example.com" {
			t.Errorf("visitor %s: %+v %v", id, v, err)
		}
	}
}
