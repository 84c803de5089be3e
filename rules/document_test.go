package rules

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

// docTestProfiles are profiles with the shapes that the engine reads
// without rendering: their documents must be read as the rendered JSON is.
func docTestProfiles(t testing.TB, now time.Time) map[string]*store.Profile {
	t.Helper()
	profs := map[string]*store.Profile{
		"bench": benchProfile(t, now, 200),
		"empty": store.New("e"),
		"small": benchProfile(t, now, 12),
	}
	odd := store.New("o\xffdd\u2028")
	odd.Apply(store.Limits{Recent: 8},
		store.Event{ID: "x:1", Type: store.TypePage, Path: "/a.b", Category: "c\xfe", Item: "i\u2028", Time: now.Add(-time.Hour), NewVisit: true},
		store.Event{ID: "x:2", Type: store.TypeTrack, Name: "purchase", Time: now.Add(-2 * time.Hour), Revenue: math.Inf(1),
			Items: []store.Item{{ID: "k.1", Category: "dots.cat", Price: 1e-7, Quantity: 3}}, Props: json.RawMessage(`{"campaign": 7, "x": {"y": [1, 2]}}`)},
		store.Event{ID: "x:3", Type: store.TypeIdentify, UserID: "u\xff", Time: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC),
			Traits: json.RawMessage(`{"plan": "pro", "crm": {"stage": "opportunity"}, "tags": ["a", "b"], "pl\u0061n2": 1, "": "empty", "a.b": 2}`)},
		store.Event{ID: "x:4", Type: store.TypePage, Path: "/\ufffd", Time: now.Add(-3 * time.Hour)}, // out of time order
		store.Event{ID: "x:5", Type: store.TypeTrack, Name: "email_opened", Props: json.RawMessage(`not json`), Time: now.Add(-time.Minute)},
	)
	odd.Purchases.Revenue = math.NaN()
	profs["odd"] = odd
	return profs
}

// docTestConditions read every member of the document, and the values that
// the engine reads without rendering, with the edge cases of paths.
var docTestConditions = []string{
	`{"visits": {"$gte": 1}}`,
	`{"id": {"$exists": true}, "userId": {"$type": "string"}}`,
	`{"firstSeen": {"$olderThan": "10d"}, "lastSeen": {"$within": "2d"}}`,
	`{"pages./products/3": {"$gte": 2}}`,
	`{"pages./a.b": {"$exists": false}}`,
	`{"pages./\ufffd": 1}`,
	`{"pages": {"$type": "object"}}`,
	`{"pages.length": {"$exists": false}}`,
	`{"counts.page": {"$gt": 10}, "counts.purchase": {"$lte": 100}}`,
	`{"categories.hats": {"$gte": 30}}`,
	`{"categories.c\ufffd": 1}`,
	`{"views.sku-1": {"$in": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}}`,
	`{"purchases.count": {"$gte": 1}, "purchases.revenue": {"$gt": 100}}`,
	`{"purchases.revenue": null}`,
	`{"purchases.first": {"$olderThan": "1d"}, "purchases.last": {"$within": "30d"}}`,
	`{"purchases.months.2": {"$gte": 1}}`,
	`{"purchases.categories.hats": {"$gte": 2}, "purchases.items.sku-7": {"$exists": true}}`,
	`{"purchases.categories.dots.cat": {"$exists": true}}`,
	`{"purchases.items.k.1": {"$exists": true}}`,
	`{"purchases.categories": {"$exists": true}}`,
	`{"traits.plan": "pro"}`,
	`{"traits.plan2": 1}`,
	`{"traits.crm.stage": {"$in": ["opportunity", "lead"]}}`,
	`{"traits.tags.1": "b", "traits.tags.length": 2}`,
	`{"traits.": "empty"}`,
	`{"traits.a.b": {"$exists": true}}`,
	`{"traits.seats": {"$vgte": "10"}, "traits.email": {"$regex": "@example\\.com$"}}`,
	`{"traits": {"$exists": true}}`,
	`{"request.utmSource": "newsletter", "request.new": false}`,
	`{"request.device": {"$in": ["mobile", "tablet"]}}`,
	`{"request.path": {"$regex": "^/products/"}}`,
	`{"request.bogus": {"$exists": false}}`,
	`{"request": {"$type": "object"}}`,
	`{"recent.length": {"$gte": 100}}`,
	`{"recent.0.type": "page", "recent.1.name": {"$exists": true}}`,
	`{"recent": {"$size": {"$gt": 3}}}`,
	`{"recent": {"$count": {"where": {"name": "add_to_cart"}, "within": "7d", "is": {"$gte": 1}}}}`,
	`{"recent": {"$count": {"where": {"type": "page", "category": "hats"}, "within": "20d", "is": {"$gt": 5}}}}`,
	`{"recent": {"$count": {"where": {"props.campaign": {"$exists": true}}, "within": "30d", "is": {"$gte": 1}}}}`,
	`{"recent": {"$count": {"where": {"items": {"$elemMatch": {"id": "k.1"}}}, "is": 1}}}`,
	`{"recent": {"$count": {"where": {"newVisit": true, "revenue": {"$exists": false}}, "within": "9000d", "is": {"$gte": 1}}}}`,
	`{"recent": {"$count": {"where": {"time": {"$within": "1d"}}, "is": {"$gte": 1}}}}`,
	`{"recent": {"$count": {"within": "1d", "at": "time", "is": {"$gte": 2}}}}`,
	`{"recent": {"$count": {"where": {"path": {"$regex": "^/products/1"}}, "is": {"$gte": 10}}}}`,
	`{"recent": {"$elemMatch": {"name": "purchase", "items.0.price": {"$gt": 20}}}}`,
	`{"recent": {"$elemMatch": {"userId": {"$exists": true}}}}`,
	`{"recent": {"$elemMatch": {"$or": [{"category": "bags"}, {"item": "i\u2028"}]}}}`,
	`{"recent": {"$elemMatch": {"id": "x:4", "path": "/\ufffd"}}}`,
	`{"recent": {"$all": [{"$elemMatch": {"type": "page"}}]}}`,
	`{"$or": [{"counts.purchase": {"$gte": 50}}, {"traits.stage": "customer"}]}`,
	`{"$not": {"traits.plan": {"$nin": ["pro"]}}}`,
	`{"$nor": [{"visits": 0}, {"request.country": "FR"}]}`,
	`{"unknown": {"$exists": false}, "recent.5000.type": null}`,
}

// TestDocumentEquivalence checks that conditions evaluated by the engine,
// which reads the profile without rendering it, agree with the same
// conditions matched against the rendered document.
func TestDocumentEquivalence(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	facts := []Facts{{}, {Path: "/products/3", Device: "mobile", Source: "newsletter", Country: "FR"}, {New: true, Device: "bad\xffutf8"}}
	profs := docTestProfiles(t, now)
	profs["none"] = nil
	for _, src := range docTestConditions {
		c, err := CompileCondition([]byte(src))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		for name, p := range profs {
			for _, f := range facts {
				docEquivalent(t, c, src, name, p, f, now)
			}
		}
	}
}

func docEquivalent(t *testing.T, c *Condition, src, name string, p *store.Profile, f Facts, now time.Time) {
	t.Helper()
	in := &Input{Profile: p, Request: f, Now: now}
	doc := in.Document()
	if !json.Valid(doc) {
		t.Fatalf("profile %s: invalid document %s", name, doc)
	}
	want := c.MatchAt(doc, now)
	got, err := ConditionRule(c).Match(&Input{Profile: p, Request: f, Now: now})
	if err != nil || got != want {
		t.Errorf("profile %s, facts %+v: %s: engine %v, %v; document %v\n%s", name, f, src, got, err, want, doc)
	}
	// The explanation agrees too.
	ok, _, _ := ConditionRule(c).(Explainer).Explain(&Input{Profile: p, Request: f, Now: now})
	if ok != want {
		t.Errorf("profile %s: %s: Explain %v, document %v", name, src, ok, want)
	}
}

func TestDocumentShape(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	p := store.New("v-1")
	p.Apply(store.Limits{},
		store.Event{ID: "a:1", Type: store.TypePage, Path: "/pricing", Category: "plans", Time: now.Add(-time.Hour), Source: "news"},
		store.Event{ID: "a:2", Type: store.TypeTrack, Name: "purchase", Time: now.Add(-30 * time.Minute),
			Items: []store.Item{{ID: "pro", Category: "plans", Price: 49.5, Quantity: 2}}},
		store.Event{ID: "a:3", Type: store.TypeIdentify, UserID: "u-1", Time: now, Traits: json.RawMessage(`{"plan":"pro"}`)},
	)
	in := &Input{Profile: p, Request: Facts{Path: "/", Device: "mobile", New: false}, Now: now}
	want := `{"categories":{"plans":1},"counts":{"identify":1,"page":1,"purchase":1},"firstSeen":"2026-03-01T11:00:00Z",` +
		`"id":"v-1","lastSeen":"2026-03-01T12:00:00Z","pages":{"/pricing":1},"purchases":{"categories":{"plans":2},"count":1,` +
		`"first":"2026-03-01T11:30:00Z","items":{"pro":2},"last":"2026-03-01T11:30:00Z","months":[0,0,1,0,0,0,0,0,0,0,0,0],"revenue":99},` +
		`"recent":[{"time":"2026-03-01T11:00:00Z","type":"page","path":"/pricing","category":"plans","utmSource":"news","id":"a:1"},` +
		`{"time":"2026-03-01T11:30:00Z","type":"track","name":"purchase","items":[{"id":"pro","category":"plans","price":49.5,"quantity":2}],"id":"a:2"},` +
		`{"time":"2026-03-01T12:00:00Z","type":"identify","traits":{"plan":"pro"},"userId":"u-1","id":"a:3"}],` +
		`"request":{"path":"/","device":"mobile","new":false},"traits":{"plan":"pro"},"userId":"u-1","views":{},"visits":1}`
	if got := string(in.Document()); got != want {
		t.Errorf("Document:\n got %s\nwant %s", got, want)
	}
	untracked := &Input{Request: Facts{Source: "ads", New: true}, Now: now}
	if got, want := string(untracked.Document()), `{"request":{"utmSource":"ads","new":true}}`; got != want {
		t.Errorf("Document without a profile = %s, want %s", got, want)
	}
}

func TestAppendJSON(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", "quote\" back\\slash", "ctl\x00\x01\n\r\t\x1f", "bad\xffutf8\xc3", "sep\u2028\u2029", "é€𝄞", "<html>&"} {
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("appendJSONString(%q) = %s: %v", s, got, err)
			continue
		}
		want, _ := json.Marshal(s)
		var wantBack string
		json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("appendJSONString(%q) decodes to %q, encoding/json's to %q", s, back, wantBack)
		}
	}
	for _, f := range []float64{0, 1, -2.5, 1e-7, 123456789, 1e21, 1e300, 0.1 + 0.2} {
		got := string(appendJSONFloat(nil, f))
		want, _ := json.Marshal(f)
		if got != string(want) {
			t.Errorf("appendJSONFloat(%v) = %s, want %s", f, got, want)
		}
	}
	for _, tm := range []time.Time{
		time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 1, 12, 0, 0, 120000000, time.FixedZone("x", 3600)),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	} {
		got := string(appendJSONTime(nil, tm))
		want, _ := json.Marshal(tm.UTC())
		if got != string(want) {
			t.Errorf("appendJSONTime(%v) = %s, want %s", tm, got, want)
		}
	}
	if s := string(appendJSONTime(nil, time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC))); !strings.HasPrefix(s, `"12000-`) {
		t.Errorf("appendJSONTime(year 12000) = %s", s)
	}
}
