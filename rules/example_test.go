package rules_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

var now = time.Date(2026, time.March, 6, 12, 0, 0, 0, time.UTC)

// visitor returns a profile that viewed the pricing page twice this week,
// bought once, and is an opportunity in the CRM.
func visitor() *store.Profile {
	p := store.New("v-1")
	p.Apply(store.Limits{},
		store.Event{ID: "app:1", Type: store.TypePage, Path: "/pricing", Time: now.Add(-72 * time.Hour)},
		store.Event{ID: "app:2", Type: store.TypePage, Path: "/pricing", Time: now.Add(-2 * time.Hour)},
		store.Event{ID: "app:3", Type: store.TypeTrack, Name: store.EventPurchase, Revenue: 49, Time: now.Add(-time.Hour)},
		store.Event{ID: "app:4", Type: store.TypeIdentify, UserID: "u-7", Time: now,
			Traits: json.RawMessage(`{"plan": "trial", "crm": {"stage": "opportunity"}}`)},
	)
	return p
}

func ExampleParse() {
	set, err := rules.Parse([]byte(`{"segments": [
		{"name": "pricing-curious", "priority": 20,
		 "rule": {"pageVisited": {"path": "/pricing", "min": 2, "within": "7d"}}},
		{"name": "trial", "priority": 10,
		 "condition": {"traits.plan": "trial", "visits": {"$gte": 1}}},
		{"name": "customer", "group": "lifecycle",
		 "rule": {"purchased": {"min": 1}}},
		{"name": "prospect", "group": "lifecycle",
		 "rule": {"trait": {"path": "crm.stage", "is": "opportunity"}}}
	]}`), rules.Filename("segments.json"))
	if err != nil {
		fmt.Println(err)
		return
	}
	e := &rules.Engine{}
	e.Load(set)
	fmt.Println(e.Classify(&rules.Input{Profile: visitor(), Now: now}))
	// Output: [pricing-curious trial customer]
}

func ExampleParse_problems() {
	_, err := rules.Parse([]byte(`[
  {"name": "a", "rule": {"pageVisited": {"path": "/pricing", "within": "7 days"}}},
  {"name": "a", "condition": {"trait.plan": {"$regex": "(pro"}}}
]`), rules.Filename("segments.json"))
	fmt.Println(err)
	// Output:
	// 4 problems:
	// 	segments.json:2:72: /0/rule/pageVisited/within: within: bad duration "7 days": want a positive duration such as "72h", "90m" or "7d"
	// 	segments.json:3:12: /1/name: duplicate segment name "a": segment 0 has it too
	// 	segments.json:3:31: /1/condition/trait.plan: unknown attribute "trait": the document has id, userId, firstSeen, lastSeen, visits, counts, pages, categories, views, purchases, traits, request, recent
	// 	segments.json:3:56: /1/condition/trait.plan/$regex: invalid regular expression: error parsing regexp: missing closing ): `(pro`
}

func ExampleEngine_Explain() {
	e, err := rules.NewEngine(
		rules.Segment{Name: "hot-lead", Rule: rules.And(
			rules.PageVisited(rules.PageVisits{Path: "/pricing", Min: 3, Within: 7 * 24 * time.Hour}),
			rules.MustCondition(`{"traits.crm.stage": {"$in": ["opportunity", "lead"]}}`),
		)},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, x := range e.Explain(&rules.Input{Profile: visitor(), Now: now}) {
		fmt.Println(x.Segment, x.In)
		for _, c := range x.Clauses {
			fmt.Println(c)
		}
	}
	// Output:
	// hot-lead false
	// fail and
	//   fail pages[/pricing] within 7d = 2, want >= 3
	//   pass traits.crm.stage = "opportunity", want $in ["opportunity","lead"]
}

func ExampleEngine_ClassifyMemo() {
	e, err := rules.NewEngine(
		rules.Segment{Name: "pricing-curious", Rule: rules.PageVisited(rules.PageVisits{Path: "/pricing", Min: 2, Within: 7 * 24 * time.Hour})},
		rules.Segment{Name: "mobile", Rule: rules.Contextual(rules.Context{Device: []string{"mobile"}})},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	p := visitor()
	var m rules.Memo // kept with the profile, guarded as it is
	classify := func(f rules.Facts, at time.Time) {
		segs, classified := e.ClassifyMemo(&m, &rules.Input{Profile: p, Request: f, Now: at})
		fmt.Println(segs, classified)
	}
	facts := rules.Facts{Path: "/", Device: "mobile"}
	classify(facts, now)
	// The result holds for the same profile while the window keeps both
	// views, and for requests from the same kind of device.
	classify(rules.Facts{Path: "/other", Device: "mobile"}, now.Add(time.Hour))
	classify(rules.Facts{Path: "/", Device: "desktop"}, now)
	classify(facts, now.Add(5*24*time.Hour))
	// Output:
	// [pricing-curious mobile] true
	// [pricing-curious mobile] false
	// [pricing-curious] true
	// [mobile] true
}

func init() {
	// Plugins are registered once, usually from an init function.
	rules.Register("businessHours", func(args json.RawMessage) (rules.Rule, error) {
		var a struct {
			From, To int // hours, in UTC
		}
		if err := json.Unmarshal(args, &a); err != nil {
			return nil, err
		}
		if a.From < 0 || a.To > 24 || a.From >= a.To {
			return nil, fmt.Errorf("want 0 <= from < to <= 24, not %d to %d", a.From, a.To)
		}
		return rules.RuleFunc(func(in *rules.Input) (bool, error) {
			h := in.Now.UTC().Hour()
			return a.From <= h && h < a.To, nil
		}), nil
	})
}

func ExampleRegister() {
	// "businessHours" is registered by this file's init function.
	set, err := rules.Parse([]byte(`[
		{"name": "support-open", "rule": {"businessHours": {"from": 9, "to": 17}}},
		{"name": "bad", "rule": {"businessHours": {"from": 18, "to": 17}}}
	]`))
	fmt.Println(set, err)
	set, err = rules.Parse([]byte(`[{"name": "support-open", "rule": {"businessHours": {"from": 9, "to": 17}}}]`))
	if err != nil {
		fmt.Println(err)
		return
	}
	e := &rules.Engine{}
	e.Load(set)
	fmt.Println(e.Classify(&rules.Input{Now: now}))
	// Output:
	// <nil> 3:45: /1/rule/businessHours: plugin "businessHours": want 0 <= from < to <= 24, not 18 to 17
	// [support-open]
}

func ExampleInput_Document() {
	p := store.New("v-1")
	p.Apply(store.Limits{},
		store.Event{ID: "app:1", Type: store.TypePage, Path: "/pricing", Category: "plans", Time: now.Add(-time.Hour)},
		store.Event{ID: "app:2", Type: store.TypeIdentify, UserID: "u-7", Time: now, Traits: json.RawMessage(`{"plan": "trial"}`)},
	)
	in := &rules.Input{Profile: p, Request: rules.Facts{Path: "/docs", Source: "newsletter", Device: "mobile"}, Now: now}
	var doc any
	json.Unmarshal(in.Document(), &doc)
	b, _ := json.MarshalIndent(doc, "", "  ")
	fmt.Println(string(b))
	// Output:
	// {
	//   "categories": {
	//     "plans": 1
	//   },
	//   "counts": {
	//     "identify": 1,
	//     "page": 1
	//   },
	//   "firstSeen": "2026-03-06T11:00:00Z",
	//   "id": "v-1",
	//   "lastSeen": "2026-03-06T12:00:00Z",
	//   "pages": {
	//     "/pricing": 1
	//   },
	//   "purchases": {
	//     "categories": {},
	//     "count": 0,
	//     "items": {},
	//     "months": [
	//       0,
	//       0,
	//       0,
	//       0,
	//       0,
	//       0,
	//       0,
	//       0,
	//       0,
	//       0,
	//       0,
	//       0
	//     ],
	//     "revenue": 0
	//   },
	//   "recent": [
	//     {
	//       "category": "plans",
	//       "id": "app:1",
	//       "path": "/pricing",
	//       "time": "2026-03-06T11:00:00Z",
	//       "type": "page"
	//     },
	//     {
	//       "id": "app:2",
	//       "time": "2026-03-06T12:00:00Z",
	//       "traits": {
	//         "plan": "trial"
	//       },
	//       "type": "identify",
	//       "userId": "u-7"
	//     }
	//   ],
	//   "request": {
	//     "device": "mobile",
	//     "new": false,
	//     "path": "/docs",
	//     "utmSource": "newsletter"
	//   },
	//   "traits": {
	//     "plan": "trial"
	//   },
	//   "userId": "u-7",
	//   "views": {},
	//   "visits": 1
	// }
}

// bigSpender is a plugin that reads only the revenue of the visitor's
// purchases: it says so (Touching, Dependent), so that page views do not
// make the engine ask it again.
type bigSpender struct{ min float64 }

func (b bigSpender) Match(in *rules.Input) (bool, error) {
	return in.Profile != nil && in.Profile.Purchases.Revenue >= b.min, nil
}
func (b bigSpender) Touches() store.Touch             { return store.TouchPurchases }
func (b bigSpender) Dependencies() rules.Dependencies { return rules.Dependencies{} }

func ExampleTouching() {
	e, err := rules.NewEngine(rules.Segment{Name: "big-spender", Rule: bigSpender{min: 100}})
	if err != nil {
		fmt.Println(err)
		return
	}
	p := visitor()
	var m rules.Memo
	classify := func() {
		segs, classified := e.ClassifyMemo(&m, &rules.Input{Profile: p, Now: now})
		fmt.Println(segs, classified)
	}
	classify()
	p.Apply(store.Limits{}, store.Event{ID: "app:10", Type: store.TypePage, Path: "/docs", Time: now})
	classify() // a page view: the purchases did not change
	p.Apply(store.Limits{}, store.Event{ID: "app:11", Type: store.TypeTrack, Name: store.EventPurchase, Revenue: 250, Time: now})
	classify()
	// Output:
	// [] true
	// [] false
	// [big-spender] true
}
