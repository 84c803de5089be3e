package openfeature_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/tailorhq/tailor/middleware"
	tailorof "github.com/tailorhq/tailor/middleware/openfeature"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// A site's handler asks a flag of the visitor of its request; a worker asks
// the same of a visitor named by the targeting key.
func Example() {
	engine := new(rules.Engine)
	err := engine.Reload([]byte(`{"segments": [{"name": "pricing-curious",
	  "rule": {"pageVisited": {"path": "/pricing", "min": 2, "within": "7d"}}}]}`))
	if err != nil {
		log.Fatal(err)
	}
	p, err := middleware.New(middleware.Config{
		Keys:   []middleware.KeyPair{middleware.GenerateKeyPair()},
		Store:  memory.New(store.Limits{}),
		Engine: engine,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(context.Background())

	flags, err := tailorof.ParseFlags([]byte(`{"flags": {"sales-offer": {"type": "string", "default": "none",
	  "rules": [{"segment": "pricing-curious", "value": "talk-to-sales"}]}}}`))
	if err != nil {
		log.Fatal(err)
	}
	provider, err := tailorof.NewProvider(tailorof.Config{Personalizer: p, Flags: flags})
	if err != nil {
		log.Fatal(err)
	}
	if err := openfeature.SetProviderAndWait(provider); err != nil {
		log.Fatal(err)
	}
	defer openfeature.Shutdown()
	client := openfeature.NewDefaultClient()

	var visitorID string
	site := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// In a handler: the visitor comes from the request's context.
		offer, _ := client.StringValue(r.Context(), "sales-offer", "none", openfeature.EvaluationContext{})
		fmt.Fprint(w, offer)
		visitorID = middleware.FromContext(r.Context()).ID()
	}))
	var cookie *http.Cookie
	for _, path := range []string{"/pricing", "/pricing", "/"} {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("User-Agent", "Mozilla/5.0")
		if cookie != nil {
			req.AddCookie(cookie)
		}
		rec := httptest.NewRecorder()
		site.ServeHTTP(rec, req)
		if cs := rec.Result().Cookies(); len(cs) > 0 {
			cookie = cs[0]
		}
		fmt.Println(path, rec.Body.String())
	}

	// In a worker: the targeting key names the visitor.
	p.Flush(context.Background())
	details, _ := client.BooleanValueDetails(context.Background(), "segment.pricing-curious", false,
		openfeature.NewEvaluationContext(visitorID, nil))
	fmt.Println(details.Value, details.Reason)
	// Output:
	// /pricing none
	// /pricing none
	// / talk-to-sales
	// true TARGETING_MATCH
}
