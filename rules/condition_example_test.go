package rules_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/tailorhq/tailor/rules"
)

func ExampleEvalCondition() {
	doc := []byte(`{"visits": 4, "traits": {"plan": "pro", "tags": ["beta", "vip"]}}`)
	cond := []byte(`{
		"visits": {"$gte": 3},
		"traits.plan": {"$in": ["pro", "business"]},
		"traits.tags": {"$elemMatch": {"$eq": "vip"}}
	}`)
	ok, err := rules.EvalCondition(cond, doc)
	fmt.Println(ok, err)
	// Output: true <nil>
}

func ExampleEvalCondition_growthBook() {
	// The semantics are those of GrowthBook's JavaScript SDK: $gt and its
	// kin compare as JavaScript does (a numeric string as a number, a
	// missing attribute as null), $eq and values are strict about types,
	// and an operator that is not known fails, even negated.
	doc := []byte(`{"age": "42"}`)
	for _, cond := range []string{
		`{"age": {"$gt": 40}}`,
		`{"age": 42}`,
		`{"age": {"$type": "string"}}`,
		`{"email": {"$exists": false}}`,
		`{"$not": {"age": {"$bogus": 1}}}`,
	} {
		ok, _ := rules.EvalCondition([]byte(cond), doc)
		fmt.Println(cond, ok)
	}
	// Output:
	// {"age": {"$gt": 40}} true
	// {"age": 42} false
	// {"age": {"$type": "string"}} true
	// {"email": {"$exists": false}} true
	// {"$not": {"age": {"$bogus": 1}}} false
}

func ExampleCondition_MatchAt() {
	// At least two purchases among the recent events of the last 90 days.
	c, err := rules.CompileCondition([]byte(`{"recent": {"$count": {
		"where": {"name": "purchase"},
		"within": "90d",
		"is": {"$gte": 2}
	}}}`))
	if err != nil {
		panic(err)
	}
	doc := []byte(`{"recent": [
		{"type": "track", "name": "purchase", "time": "2025-06-01T10:00:00Z"},
		{"type": "page", "path": "/shoes", "time": "2026-02-20T09:00:00Z"},
		{"type": "track", "name": "purchase", "time": "2026-02-20T09:05:00Z"},
		{"type": "track", "name": "purchase", "time": "2026-02-27T18:30:00+01:00"}
	]}`)
	fmt.Println(c.MatchAt(doc, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)))
	fmt.Println(c.MatchAt(doc, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)))
	// Output:
	// true
	// false
}

func ExampleCompileCondition_problems() {
	cond := []byte(`{
  "traits.plan": {"$in": "pro"},
  "lastSeen": {"$within": "2 weeks"},
  "$or": [{"traits.email": {"$regx": "@acme\\.com$"}}]
}`)
	_, err := rules.CompileCondition(cond, rules.WithSource("segments/b2b.json", 12, 16))
	var problems rules.ConditionErrors
	if errors.As(err, &problems) {
		for _, p := range problems {
			fmt.Println(p)
		}
	}
	// Output:
	// segments/b2b.json:13:26: /traits.plan/$in: $in needs an array, not a string
	// segments/b2b.json:14:27: /lastSeen/$within: bad duration "2 weeks": want a positive duration such as "72h", "90m" or "7d"
	// segments/b2b.json:15:29: /$or/0/traits.email/$regx: unknown operator $regx
}

func ExampleWithSavedGroups() {
	groups := rules.WithSavedGroups(map[string][]any{
		"beta-testers": {"u-17", "u-42"},
	})
	c, err := rules.CompileCondition([]byte(`{"userId": {"$inGroup": "beta-testers"}}`), groups)
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Match([]byte(`{"userId": "u-42"}`)))
	fmt.Println(c.Match([]byte(`{"userId": "u-7"}`)))
	// Output:
	// true
	// false
}
