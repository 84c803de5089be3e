package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// TestClassificationCached: requests that change nothing reuse the last
// classification, and a time window is still re-evaluated when time moves
// past it.
func TestClassificationCached(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC))
	e, err := rules.NewEngine(rules.Segment{Name: "recent-buyer", Rule: rules.Recency(rules.Since{Of: "purchase", Within: time.Hour})})
	if err != nil {
		t.Fatal(err)
	}
	p := newP(t, nil, func(c *middleware.Config) { c.Now = clk.Now; c.Engine = e })
	var segs []string
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		segs = v.Segments()
		if r.URL.Path == "/buy" {
			v.Purchase(store.Item{ID: "moneyball", Price: 10})
		}
	}))
	var ck *http.Cookie
	do := func(method, path string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("User-Agent", browserUA)
		if ck != nil {
			req.AddCookie(ck)
		}
		h.ServeHTTP(rec, req)
		if cs := rec.Result().Cookies(); len(cs) > 0 {
			ck = cs[0]
		}
	}
	do("GET", "/")
	do("GET", "/")
	do("POST", "/buy")
	do("POST", "/x") // in the segment: classified afresh after the purchase
	if !slices.Equal(segs, []string{"recent-buyer"}) {
		t.Fatalf("after buying: %v", segs)
	}
	before := p.Stats().ClassifyCached
	for range 3 {
		do("POST", "/x") // POSTs record nothing: the profile is unchanged
	}
	if got := p.Stats().ClassifyCached - before; got != 3 {
		t.Errorf("%d cached classifications of an unchanged profile, want 3", got)
	}
	clk.Add(2 * time.Hour)
	do("POST", "/x")
	if len(segs) != 0 {
		t.Fatalf("two hours after the purchase: %v, want none", segs)
	}
}
