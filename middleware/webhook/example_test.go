package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/webhook"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// A receiver verifies the signature on the raw body before decoding it.
func ExampleVerify() {
	const secret = "the secret shared with tailor"
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read error", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev webhook.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		// Deduplicate on ev.ID: a retried delivery may arrive twice.
		fmt.Println(ev.Type, ev.Segment, ev.UserID)
	})

	// What tailor sends:
	body := []byte(`{"id":"4f0c2b1e9d8a7c6b5a4f3e2d1c0b9a8f","type":"segment.entered","segment":"customer","visitorId":"9a1e","userId":"u-42","time":"2026-03-01T10:00:00Z"}`)
	req := httptest.NewRequest("POST", "/hooks/tailor", strings.NewReader(string(body)))
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(secret, time.Now(), body))
	handler.ServeHTTP(httptest.NewRecorder(), req)

	// A forgery:
	req = httptest.NewRequest("POST", "/hooks/tailor", strings.NewReader(string(body)))
	req.Header.Set(webhook.SignatureHeader, webhook.Sign("a guess", time.Now(), body))
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// segment.entered customer u-42
	// 401 tailor/webhook: signature does not match
}

// The dispatcher hears every segment change of the Personalizer it is
// given; the application closes it after the Personalizer on shutdown.
func ExampleNew() {
	p, err := middleware.New(middleware.Config{
		Keys:  []middleware.KeyPair{middleware.GenerateKeyPair()},
		Store: memory.New(store.Limits{}),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := webhook.New(webhook.Config{
		Personalizer: p,
		URL:          "https://crm.example.com/hooks/tailor",
		Secret:       "the secret shared with the CRM",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close(context.Background())
	defer p.Close(context.Background()) // first
	fmt.Println(d.Target())
	// Output: https://crm.example.com
}
