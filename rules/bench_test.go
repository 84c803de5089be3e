package rules

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

// benchProfile returns a profile with 20 traits and events recent events, a
// page view or an action every 6 hours until now: the profile of
// condTestProfile.
func benchProfile(tb testing.TB, now time.Time, events int) *store.Profile {
	tb.Helper()
	p := store.New("v-1")
	traits := map[string]any{"plan": "pro", "email": "ann@example.com", "stage": "customer", "company": "Acme", "seats": 12, "country": "FR"}
	for i := len(traits); i < 20; i++ {
		traits[fmt.Sprintf("trait%02d", i)] = fmt.Sprintf("value %d", i)
	}
	tr, err := json.Marshal(traits)
	if err != nil {
		tb.Fatal(err)
	}
	evs := []store.Event{{ID: "app:1", Type: store.TypeIdentify, UserID: "u-1", Traits: tr, Time: now.Add(-300 * 24 * time.Hour)}}
	for i := range events {
		e := store.Event{
			ID:       store.EventID("app", uint64(i+2)),
			Type:     store.TypePage,
			Time:     now.Add(-time.Duration(events-i) * 6 * time.Hour),
			Path:     fmt.Sprintf("/products/%d", i%17),
			Category: []string{"shoes", "hats", "bags"}[i%3],
			Item:     fmt.Sprintf("sku-%d", i%17),
			Device:   "mobile",
			NewVisit: i%5 == 0,
		}
		switch i % 10 {
		case 3:
			e.Type, e.Name = store.TypeTrack, "add_to_cart"
		case 5:
			e.Type, e.Name = store.TypeTrack, "email_opened"
			e.Props = json.RawMessage(fmt.Sprintf(`{"campaign":"c%d"}`, i/10))
		case 7:
			e.Type, e.Name = store.TypeTrack, store.EventPurchase
			e.Items = []store.Item{{ID: e.Item, Category: e.Category, Price: 49.5, Quantity: 2}}
			e.Props = json.RawMessage(`{"channel":"online"}`)
		}
		evs = append(evs, e)
	}
	p.Apply(store.Limits{}, evs...)
	return p
}

// benchSegments returns a segments file of n segments: a realistic mix of
// conditions (half of them, one in ten of those over the recent events) and
// built-in rules, with varied arguments.
func benchSegments(n int) []byte {
	templates := []string{
		`"condition": {"traits.plan": {"$in": ["pro", "business"]}, "visits": {"$gte": {a}}}`,
		`"rule": {"pageVisited": {"path": "/products/{p}", "min": 2, "within": "7d"}}`,
		`"condition": {"pages./products/{p}": {"$gte": {a}}}`,
		`"rule": {"eventCount": {"name": "add_to_cart", "min": {a}, "within": "30d"}}`,
		`"condition": {"purchases.count": {"$gte": {a}}, "purchases.revenue": {"$gt": 100}}`,
		`"rule": {"recency": {"of": "purchase", "within": "{a}d"}}`,
		`"condition": {"traits.email": {"$regex": "@example\\.com$"}, "traits.seats": {"$gte": {a}}}`,
		`"rule": {"interest": {"category": "{c}", "top": 1}}`,
		`"condition": {"categories.{c}": {"$gte": {a}}, "request.device": "mobile"}`,
		`"rule": {"trait": {"path": "stage", "is": {"$in": ["customer", "opportunity"]}}}`,
		`"condition": {"lastSeen": {"$within": "1d"}, "firstSeen": {"$olderThan": "{a}d"}}`,
		`"rule": {"rfm": {"r": [3, 5], "f": [{f}, 5]}}`,
		`"condition": {"$or": [{"counts.purchase": {"$gte": 5}}, {"purchases.categories.{c}": {"$gte": {a}}}]}`,
		`"rule": {"context": {"utmSource": ["newsletter", "google"], "device": "mobile"}}`,
		`"condition": {"recent": {"$count": {"where": {"name": "add_to_cart"}, "within": "{a}d", "is": {"$gte": 1}}}}`,
		`"rule": {"email": {"of": "any", "last": {f}}}`,
		`"condition": {"traits.country": {"$ini": ["fr", "be", "ch"]}, "userId": {"$exists": true}}`,
		`"rule": {"and": [{"lifecycle": {"stage": "repeat"}}, {"not": {"channel": {"is": "in-store"}}}]}`,
		`"condition": {"views.sku-{p}": {"$gte": 1}, "traits.company": "Acme"}`,
		`"rule": {"seasonal": {"months": ["dec", "apr"]}}`,
	}
	cats := []string{"shoes", "hats", "bags"}
	var b strings.Builder
	b.WriteString(`{"segments": [`)
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		k := i / len(templates)
		body := strings.NewReplacer("{a}", fmt.Sprint(1+k), "{p}", fmt.Sprint(i%17), "{c}", cats[i%3], "{f}", fmt.Sprint(1+k%5)).
			Replace(templates[i%len(templates)])
		fmt.Fprintf(&b, `{"name": "s%d", "priority": %d, %s}`, i, n-i, body)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

func BenchmarkClassify(b *testing.B) {
	now := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	p := benchProfile(b, now, 200)
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("%d-segments", n), func(b *testing.B) {
			s, err := Parse(benchSegments(n))
			if err != nil {
				b.Fatal(err)
			}
			e := &Engine{}
			e.Load(s)
			facts := Facts{Path: "/products/3", Device: "mobile", Source: "newsletter"}
			in := &Input{Profile: p, Request: facts, Now: now}
			if got := e.Classify(in); len(got) == 0 {
				b.Fatal("no segment")
			}
			b.ReportAllocs()
			for b.Loop() {
				in := &Input{Profile: p, Request: facts, Now: now}
				e.Classify(in)
			}
		})
	}
}
