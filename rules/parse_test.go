package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tailorhq/tailor/store"
)

func TestParseFile(t *testing.T) {
	t.Parallel()
	s, err := ParseFile("testdata/segments.json")
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 22 || s.Source() != "testdata/segments.json" {
		t.Fatalf("ParseFile: %d segments from %q", s.Len(), s.Source())
	}
	var names []string
	for _, seg := range s.Segments() {
		names = append(names, seg.Name)
	}
	if names[0] != "staff" || names[len(names)-1] != "not-a-customer-yet" || !slices.Contains(names, "hot-lead") {
		t.Errorf("segments in order: %v", names)
	}
	if seg := s.Segments()[0]; seg.Description != "people who work here" || seg.Priority != 100 {
		t.Errorf("first segment: %+v", seg)
	}
	if _, err := ParseFile("testdata/missing.json"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ParseFile(missing) = %v", err)
	}
}

// TestParseProblems checks that every problem of a bad file is reported at
// once, each at its place.
func TestParseProblems(t *testing.T) {
	t.Parallel()
	_, err := ParseFile("testdata/bad.json", Plugins(NewRegistry()))
	var list ConditionErrors
	if !errors.As(err, &list) {
		t.Fatalf("ParseFile(bad.json) = %v, want ConditionErrors", err)
	}
	want := []string{
		`testdata/bad.json:3:72: /segments/0/condition/traits.plan/$bogus: unknown operator $bogus`,
		"testdata/bad.json:4:60: /segments/1/condition/traits.email/$regex: invalid regular expression: error parsing regexp: missing closing ): `(unclosed`",
		`testdata/bad.json:5:71: /segments/2/rule/pageVisited/min: min needs an integer, not a string "two"`,
		`testdata/bad.json:5:88: /segments/2/rule/pageVisited/within: within: bad duration "7days": want a positive duration such as "72h", "90m" or "7d"`,
		`testdata/bad.json:6:28: /segments/3/rule/weather: unknown rule "weather": not a built-in (and, categoryViews, channel, condition, context, dueToBuy, email, eventCount, inSegment, interest, lifecycle, not, or, pageVisited, purchased, recency, rfm, seasonal, trait, visits) nor a registered plugin (no plugin is registered)`,
		`testdata/bad.json:7:14: /segments/4/name: duplicate segment name "a": segment 0 has it too`,
		`testdata/bad.json:8:41: /segments/5/rule/inSegment: cycle of segment references: e → f → e`,
		`testdata/bad.json:10:41: /segments/7/rule/inSegment: inSegment: no segment is named "nobody"`,
		`testdata/bad.json:11:33: /segments/8/condition/trait.plan: unknown attribute "trait": the document has id, userId, firstSeen, lastSeen, visits, counts, pages, categories, views, purchases, traits, request, recent`,
		`testdata/bad.json:11:54: /segments/8/condition/request.utm: unknown request fact "utm": the request has path, referrer, utmSource, utmMedium, utmCampaign, device, country, new`,
		`testdata/bad.json:12:39: /segments/9/rule/recency: recency needs either "within" or "olderThan"`,
		`testdata/bad.json:12:60: /segments/9/colour: unknown key "colour" in a segment: want name, description, priority, group, rule or condition`,
		`testdata/bad.json:13:51: /segments/10/rule/lifecycle/stage: stage is one of non-customer, one-time, repeat, loyal, not a string "vip"`,
		`testdata/bad.json:13:67: /segments/10/rule/lifecycle/loyal: loyal must be at least 3, not 1`,
		`testdata/bad.json:14:5: /segments/11: a segment needs a "name"`,
		`testdata/bad.json:14:28: /segments/11/rule/rfm/r: r is a score from 1 to 5 or a range [min, max] of scores, not 7`,
		`testdata/bad.json:14:51: /segments/11/rule/rfm/cuts/recency: recency needs four ascending non-negative numbers, not [3,2,1,0]`,
		`testdata/bad.json:15:57: /segments/12/condition/lastSeen/$within: a duration is a string such as "72h" or "7d", not a number`,
		`testdata/bad.json:15:62: /segments/12/rule: a segment has one rule: "condition" and "rule" are both given`,
		`testdata/bad.json:16:31: /segments/13/priority: want an integer, not a number 1.5`,
		`testdata/bad.json:16:57: /segments/13/rule/interest: interest needs "top", "minScore" or both`,
		`testdata/bad.json:17:44: /segments/14/rule/email/of: of is one of any, all, none, not a string "most"`,
		`testdata/bad.json:17:72: /segments/14/rule/email/campaigns/1: campaigns holds strings, not a number 2`,
		`testdata/bad.json:18:68: /segments/15/rule/context/path: bad glob pattern "/a/[": syntax error in pattern`,
		`testdata/bad.json:19:79: /segments/16/rule/eventCount/where/v/$gt: $gt needs a number or a string, not an array`,
		`testdata/bad.json:19:102: /segments/16/rule/eventCount/max: max 2 is less than min 3`,
		`testdata/bad.json:20:59: /segments/17/rule/seasonal/months/1: a month is a number from 1 to 12 or a name such as "dec", not a string "smarch"`,
		`testdata/bad.json:20:79: /segments/17/rule/seasonal/share: share is between 0 and 1, not 2`,
		`testdata/bad.json:21:68: /segments/18/rule/trait/is/$in: $in needs an array, not a string`,
	}
	var got []string
	for _, e := range list {
		got = append(got, e.Error())
		if e.File != "testdata/bad.json" || e.Line < 1 || e.Column < 1 || !strings.HasPrefix(e.Path, "/segments/") {
			t.Errorf("bad problem %+v", e)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("ParseFile(bad.json) problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseCases(t *testing.T) {
	t.Parallel()
	reg := NewRegistry()
	type args struct {
		Below float64 `json:"below"`
		City  struct {
			Name string `json:"name"`
		} `json:"city"`
	}
	must(t, reg.Register("cold", func(raw json.RawMessage) (Rule, error) {
		var a args
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, err
		}
		if a.Below < -50 {
			return nil, errors.New("below is colder than anywhere")
		}
		return Purchased(0), nil
	}))
	must(t, reg.Register("nil", func(json.RawMessage) (Rule, error) { return nil, nil }))
	must(t, reg.Register("panics", func(json.RawMessage) (Rule, error) { panic("oops") }))
	for _, tc := range []struct {
		name, src, want string
	}{
		{"valid list", `[{"name": "a", "rule": {"visits": {"min": 1}}}]`, ""},
		{"plugin", `[{"name": "a", "rule": {"cold": {"below": 5}}}]`, ""},
		{"invalid JSON", "[\n  {\"name\": }]", `f.json:2:12: invalid JSON: invalid character '}' looking for beginning of value`},
		{"trailing data", `[] x`, `f.json:1:4: invalid JSON: invalid character 'x' after top-level value`},
		{"empty", ``, `f.json:1:1: invalid JSON: unexpected end of JSON input`},
		{"not a list", `{"segments": {}}`, `f.json:1:14: /segments: the segments are a list, not an object`},
		{"no segments", `{"groups": []}`, `f.json:1:2: /groups: unknown key "groups": want "segments", "savedGroups", "strictTypes" or "numericStrings"`},
		{"no segments at all", `{}`, `f.json:1:1: a segments file needs "segments", the list of segments`},
		{"scalar file", `3`, `f.json:1:1: the segments are a list, not a number`},
		{"segment not an object", `[3]`, `f.json:1:2: /0: a segment is an object with "name" and "rule" or "condition", not a number`},
		{"empty name", `[{"name": "", "rule": {"visits": {"min": 1}}}]`, `f.json:1:11: /0/name: a segment's name is a non-empty string, not a string ""`},
		{"no rule", `[{"name": "a"}]`, `f.json:1:2: /0: a segment needs a "rule" or a "condition"`},
		{"bad description", `[{"name": "a", "description": 1, "rule": {"visits": {"min": 1}}}]`, `f.json:1:31: /0/description: a description is a string, not a number`},
		{"bad group", `[{"name": "a", "group": [], "rule": {"visits": {"min": 1}}}]`, `f.json:1:25: /0/group: an exclusive group is named by a string, not an array`},
		{"rule with two keys", `[{"name": "a", "rule": {"visits": {"min": 1}, "purchased": {}}}]`, `f.json:1:24: /0/rule: a rule is an object with one key`},
		{"rule not an object", `[{"name": "a", "rule": "visits"}]`, `f.json:1:24: /0/rule: a rule is an object with one key, a built-in or a plugin, whose value holds its arguments, such as {"pageVisited": {"path": "/pricing"}}; not a string`},
		{"and not a list", `[{"name": "a", "rule": {"and": {}}}]`, `f.json:1:32: /0/rule/and: and needs a list of rules, not an object`},
		{"nested problem", `[{"name": "a", "rule": {"or": [{"visits": {"min": 1}}, {"not": {"visits": {"min": -1}}}]}}]`, `f.json:1:83: /0/rule/or/1/not/visits/min: min must be at least 0, not -1`},
		{"arguments not an object", `[{"name": "a", "rule": {"visits": 3}}]`, `f.json:1:35: /0/rule/visits: visits needs an object of arguments (min), not a number`},
		{"unknown argument", `[{"name": "a", "rule": {"visits": {"min": 1, "max": 3}}}]`, `f.json:1:46: /0/rule/visits/max: unknown argument "max" of visits: want min`},
		{"missing argument", `[{"name": "a", "rule": {"visits": {}}}]`, `f.json:1:35: /0/rule/visits: visits needs "min"`},
		{"unknown plugin", `[{"name": "a", "rule": {"warm": {}}}]`, `nor a registered plugin (the plugins are cold, nil, panics)`},
		{"plugin error", `[{"name": "a", "rule": {"cold": {"below": -60}}}]`, `f.json:1:33: /0/rule/cold: plugin "cold": below is colder than anywhere`},
		{"plugin type error", `[{"name": "a", "rule": {"cold": {"below": 5, "city": {"name": 3}}}}]`, `f.json:1:63: /0/rule/cold/city/name: plugin "cold": json: cannot unmarshal number into Go struct field`},
		{"plugin without rule", `[{"name": "a", "rule": {"nil": {}}}]`, `f.json:1:32: /0/rule/nil: plugin "nil" made no rule`},
		{"plugin panics", `[{"name": "a", "rule": {"panics": {}}}]`, `f.json:1:35: /0/rule/panics: plugin "panics" panicked: oops`},
		{"inSegment not a string", `[{"name": "a", "rule": {"inSegment": 1}}]`, `f.json:1:38: /0/rule/inSegment: inSegment needs the name of a segment, not a number 1`},
		{"self reference", `[{"name": "a", "rule": {"inSegment": "a"}}]`, `f.json:1:38: /0/rule/inSegment: cycle of segment references: a → a`},
		{"cycle through a group", `[{"name": "a", "group": "g", "priority": 2, "rule": {"visits": {"min": 1}}}, {"name": "b", "group": "g", "priority": 1, "rule": {"not": {"inSegment": "c"}}}, {"name": "c", "rule": {"inSegment": "b"}}]`,
			`f.json:1:151: /1/rule/not/inSegment: cycle of segment references: b → c → b`},
		{"group order is no cycle", `[{"name": "a", "group": "g", "priority": 2, "rule": {"visits": {"min": 1}}}, {"name": "b", "group": "g", "priority": 1, "rule": {"not": {"inSegment": "a"}}}]`, ""},
		{"reference to a later segment of a group", `[{"name": "a", "group": "g", "priority": 2, "rule": {"inSegment": "b"}}, {"name": "b", "group": "g", "priority": 1, "rule": {"visits": {"min": 1}}}]`,
			`f.json:1:67: /0/rule/inSegment: cycle of segment references: a → b →[after, in exclusive group "g"]→ a`},
		{"saved groups", `{"savedGroups": {"vip": ["u-1", 2, true, null]}, "segments": [{"name": "a", "condition": {"userId": {"$inGroup": "vip"}}}]}`, ""},
		{"numeric strings", `{"numericStrings": true, "segments": [{"name": "a", "condition": {"traits.age": {"$gt": 30}}}]}`, ""},
		{"bad numeric strings", `{"numericStrings": "yes", "segments": []}`, `f.json:1:20: /numericStrings: numericStrings is true or false, not a string`},
		{"strict types", `{"strictTypes": true, "segments": [{"name": "a", "condition": {"traits.age": {"$gt": 30}}}]}`, ""},
		{"bad strict types", `{"strictTypes": 1, "segments": []}`, `f.json:1:17: /strictTypes: strictTypes is true or false, not a number`},
		{"strict types and numeric strings agree", `{"strictTypes": true, "numericStrings": false, "segments": []}`, ""},
		{"strict types and numeric strings disagree", `{"strictTypes": true, "numericStrings": true, "segments": []}`, `f.json:1:23: /numericStrings: "strictTypes" and "numericStrings" disagree`},
		{"bad saved group", `{"savedGroups": {"vip": "u-1"}, "segments": []}`, `f.json:1:25: /savedGroups/vip: a saved group is a list of values, not a string`},
		{"bad saved group value", `{"savedGroups": {"vip": [{}]}, "segments": []}`, `f.json:1:26: /savedGroups/vip/0: a saved group holds strings, numbers, booleans or null, not an object`},
		{"unknown saved group", `{"savedGroups": {}, "segments": [{"name": "a", "condition": {"userId": {"$inGroup": "vip"}}}]}`, `f.json:1:85: /segments/0/condition/userId/$inGroup: unknown saved group "vip"`},
		{"duplicate key", `[{"name": "a", "name": "b", "rule": {"visits": {"min": 1}}}]`, `f.json:1:16: /0/name: duplicate key: the last value counts`},
		{"too deep", `[{"name": "a", "condition": ` + strings.Repeat(`{"$not": `, 90) + `{}` + strings.Repeat(`}`, 90) + `}]`, `nests deeper than 80 arrays and objects`},
		{"condition in a rule", `[{"name": "a", "rule": {"and": [{"condition": {"visits": {"$gte": "x"}}}, {"condition": {"recent.length": {"$gt": 1}}}]}}]`, ""},
		{"trait without is", `[{"name": "a", "rule": {"trait": {"path": "plan"}}}]`, ""},
		{"trait empty path", `[{"name": "a", "rule": {"trait": {"path": ""}}}]`, `f.json:1:43: /0/rule/trait/path: path is empty`},
		{"context empty", `[{"name": "a", "rule": {"context": {}}}]`, `f.json:1:36: /0/rule/context: context needs at least one of path, referrer`},
		{"context path list", `[{"name": "a", "rule": {"context": {"path": ["/", "/a/["]}}}]`, `f.json:1:51: /0/rule/context/path/1: bad glob pattern "/a/["`},
		{"rfm without scores", `[{"name": "a", "rule": {"rfm": {}}}]`, `f.json:1:32: /0/rule/rfm: rfm needs at least one of "r", "f" and "m"`},
		{"recency of empty", `[{"name": "a", "rule": {"recency": {"of": "", "within": "1d"}}}]`, `f.json:1:43: /0/rule/recency/of: of is "seen", "firstSeen", "purchase" or an event's name, not ""`},
		{"due: within and minOrders", `[{"name": "a", "rule": {"dueToBuy": {"minOrders": 0}}}]`, "2 problems:\n\tf.json:1:37: /0/rule/dueToBuy: dueToBuy needs \"within\"\n\tf.json:1:51: /0/rule/dueToBuy/minOrders: minOrders must be at least 1, not 0"},
		{"months not a list", `[{"name": "a", "rule": {"seasonal": {"months": "dec"}}}]`, `f.json:1:48: /0/rule/seasonal/months: months needs a list of months`},
		{"channel", `[{"name": "a", "rule": {"channel": {"is": 3}}}]`, `f.json:1:43: /0/rule/channel/is: is needs a string, not a number 3`},
		{"boolean", `[{"name": "a", "rule": {"seasonal": {"months": [12], "each": "yes"}}}]`, `f.json:1:62: /0/rule/seasonal/each: each needs true or false, not a string "yes"`},
		{"float", `[{"name": "a", "rule": {"interest": {"category": "x", "minScore": "high"}}}]`, `f.json:1:67: /0/rule/interest/minScore: minScore needs a number, not a string "high"`},
		{"duration type", `[{"name": "a", "rule": {"eventCount": {"name": "x", "within": 7}}}]`, `f.json:1:63: /0/rule/eventCount/within: within needs a duration such as "72h" or "7d", not a number 7`},
		{"strs type", `[{"name": "a", "rule": {"context": {"device": 3}}}]`, `f.json:1:47: /0/rule/context/device: device needs a string or a list of strings, not a number 3`},
		{"strs empty", `[{"name": "a", "rule": {"context": {"device": []}}}]`, `f.json:1:47: /0/rule/context/device: device is empty`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse([]byte(tc.src), Filename("f.json"), Plugins(reg))
			if tc.want == "" {
				if err != nil || s == nil {
					t.Fatalf("Parse(%s) = %v", tc.src, err)
				}
				return
			}
			if err == nil || s != nil {
				t.Fatalf("Parse(%s) = %v, nil, want an error with %q", tc.src, s, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%s):\n%v\nwant %q", tc.src, err, tc.want)
			}
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	f := func(json.RawMessage) (Rule, error) { return Purchased(1), nil }
	for _, tc := range []struct {
		name string
		f    Factory
		want string
	}{
		{"ok", f, ""},
		{"ok", f, `plugin "ok" registered twice`},
		{"", f, "empty plugin name"},
		{"1x", f, `invalid plugin name "1x"`},
		{"a b", f, `invalid plugin name "a b"`},
		{"pageVisited", f, `plugin name "pageVisited" is the name of a built-in rule`},
		{"condition", f, `is the name of a built-in rule`},
		{"nilf", nil, `plugin "nilf": nil factory`},
		{"weather.cold-2_x", f, ""},
	} {
		err := r.Register(tc.name, tc.f)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Register(%q) = %v, want %q", tc.name, err, tc.want)
		}
	}
	if got := r.Names(); !slices.Equal(got, []string{"ok", "weather.cold-2_x"}) {
		t.Errorf("Names = %v", got)
	}
	var zero Registry
	if _, ok := zero.Lookup("x"); ok || zero.Register("x", f) != nil {
		t.Error("the zero Registry is not usable")
	}
}

func TestRegisterPanicsOnDuplicate(t *testing.T) {
	name := fmt.Sprintf("testDuplicate%d", os.Getpid())
	f := func(json.RawMessage) (Rule, error) { return Purchased(1), nil }
	Register(name, f)
	if !slices.Contains(RegisteredPlugins(), name) {
		t.Fatalf("RegisteredPlugins() = %v, without %s", RegisteredPlugins(), name)
	}
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "registered twice") {
			t.Errorf("second Register: panic %v", p)
		}
	}()
	Register(name, f)
}

// TestRegistryConcurrent registers plugins while files that use them are
// parsed: run with -race.
func TestRegistryConcurrent(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			must(t, r.Register(fmt.Sprintf("p%d", i), func(json.RawMessage) (Rule, error) { return Visits(1), nil }))
		}()
		go func() {
			defer wg.Done()
			for range 20 {
				src := fmt.Sprintf(`[{"name": "a", "rule": {"p%d": {}}}]`, i)
				if _, err := Parse([]byte(src), Plugins(r)); err != nil && !strings.Contains(err.Error(), "unknown rule") {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if len(r.Names()) != 8 {
		t.Errorf("Names = %v", r.Names())
	}
}

// TestParseNumericStrings: a segments file orders a number and a numeric
// string numerically, as GrowthBook's JavaScript SDK does, unless it says
// "strictTypes": true, or "numericStrings": false as files did when strict
// types were the default.
func TestParseNumericStrings(t *testing.T) {
	t.Parallel()
	p := store.New("v")
	p.Apply(store.Limits{}, identify(`{"age": "40"}`))
	for _, tc := range []struct {
		file string
		want int
	}{
		{`{"segments": [{"name": "over-30", "condition": {"traits.age": {"$gt": 30}}}]}`, 1},
		{`{"numericStrings": false, "segments": [{"name": "over-30", "condition": {"traits.age": {"$gt": 30}}}]}`, 0},
		{`{"numericStrings": true, "segments": [{"name": "over-30", "condition": {"traits.age": {"$gt": 30}}}]}`, 1},
		{`{"segments": [{"name": "over-30", "condition": {"traits.age": {"$gt": 30}}}], "numericStrings": true}`, 1},
		{`{"strictTypes": true, "segments": [{"name": "over-30", "condition": {"traits.age": {"$gt": 30}}}]}`, 0},
		{`{"segments": [{"name": "over-30", "condition": {"traits.age": {"$gt": 30}}}], "strictTypes": true}`, 0},
		{`{"strictTypes": false, "segments": [{"name": "over-30", "condition": {"traits.age": {"$gt": 30}}}]}`, 1},
	} {
		e, err := NewEngine()
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Reload([]byte(tc.file)); err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if got := len(e.Classify(&Input{Profile: p, Now: testNow})); got != tc.want {
			t.Errorf("%s: in %d segments, want %d", tc.file, got, tc.want)
		}
	}
}

// TestSetTextAndPlugins: a parsed set keeps the bytes it was parsed from,
// the plugins its rules use and those its registry offered, for dashboards
// that show what runs; a set made in Go has none of them.
func TestSetTextAndPlugins(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	f := func(json.RawMessage) (Rule, error) { return Purchased(1), nil }
	for _, name := range []string{"used", "unused", "alsoUsed"} {
		if err := r.Register(name, f); err != nil {
			t.Fatal(err)
		}
	}
	data := []byte(`{"segments": [
		{"name": "a", "rule": {"used": {}}},
		{"name": "b", "rule": {"or": [{"alsoUsed": 1}, {"used": 2}]}},
		{"name": "c", "rule": {"visits": {"min": 2}}}
	]}`)
	s, err := Parse(data, Plugins(r), Filename("embedded.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Text(); string(got) != string(data) {
		t.Errorf("Text = %q", got)
	}
	data[0] = 'x' // the set keeps its own copy
	if s.Text()[0] != '{' {
		t.Error("Text changed with the caller's slice")
	}
	if got := s.Plugins(); !slices.Equal(got, []string{"alsoUsed", "used"}) {
		t.Errorf("Plugins = %v", got)
	}
	if got := s.RegisteredPlugins(); !slices.Equal(got, []string{"alsoUsed", "unused", "used"}) {
		t.Errorf("RegisteredPlugins = %v", got)
	}
	g, err := NewSet(Segment{Name: "a", Rule: Visits(2)})
	if err != nil {
		t.Fatal(err)
	}
	if g.Text() != nil || g.Plugins() != nil || g.RegisteredPlugins() != nil {
		t.Errorf("a set made in Go: %q %v %v", g.Text(), g.Plugins(), g.RegisteredPlugins())
	}
	var none *Set
	if none.Text() != nil || none.Plugins() != nil || none.RegisteredPlugins() != nil {
		t.Error("a nil set has plugins")
	}
}
