package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// A preview link shows the site as a stored visitor sees it: the page reads
// that visitor's profile, and nothing the previewing browser does is
// recorded. The banner's exit link ends the preview.
func ExamplePersonalizer_PreviewLinkAs() {
	st := memory.New(store.Limits{})
	// A customer of the shop, as the dashboard's segment page lists them.
	const customer = "8f14e45fceea167a5a36dedd4bea2543"
	st.Apply(context.Background(), customer, []store.Event{{ID: "o1", Type: store.TypeTrack,
		Name: store.EventPurchase, Time: time.Now(), Items: []store.Item{{ID: "moneyball", Price: 12}}}})

	p, err := middleware.New(middleware.Config{Keys: []middleware.KeyPair{middleware.GenerateKeyPair()}, Store: st})
	if err != nil {
		panic(err)
	}
	defer p.Close(context.Background())
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		v.Purchase(store.Item{ID: "snowshoes"}) // recorded nowhere in a preview
		if pv := v.Preview(); pv != nil {
			fmt.Printf("preview in %v: %d order(s), tracked %v; exit at %s\n",
				v.Segments(), v.Profile().Purchases.Count, v.Tracked(), pv.ExitURL())
		}
	}))

	link, err := p.PreviewLinkAs("/products", customer, []string{"customer"}, nil, time.Hour)
	if err != nil {
		panic(err)
	}
	req := httptest.NewRequest("GET", link, nil)
	req.Header.Set("User-Agent", "Mozilla/5.0")
	h.ServeHTTP(httptest.NewRecorder(), req)

	exit := httptest.NewRequest("GET", "/products?tailor_preview=exit", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, exit)
	fmt.Println(rec.Code, rec.Header().Get("Location"))
	// Output:
	// preview in [customer]: 1 order(s), tracked false; exit at /products?tailor_preview=exit
	// 303 /products
}
