package rules

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"
)

// FuzzParse checks that no segments file makes Parse panic or hang, that
// every problem is placed, and that whatever Parse accepts classifies and
// explains any visitor without panicking. The corpus starts with the test
// files and cases.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/segments.json", "testdata/bad.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(benchSegments(20))
	for _, src := range []string{
		`[{"name": "a", "rule": {"weather": {"below": 5, "city": {"name": "Oslo"}}}}]`,
		`[{"name": "a", "group": "g", "rule": {"inSegment": "b"}}, {"name": "b", "group": "g", "rule": {"not": {"inSegment": "a"}}}]`,
		`{"savedGroups": {"vip": ["u-1"]}, "segments": [{"name": "a", "condition": {"userId": {"$inGroup": "vip"}}}]}`,
		`[{"name": "a", "rule": {"and": [{"condition": {"recent": {"$count": {"where": {"name": "x"}, "within": "1d", "is": 1}}}}]}}]`,
		`[{"name": "a", "rule": {"context": {"path": ["/a/*"], "referrer": "*.g.*", "visitor": "new"}}}]`,
		`[{"name": "a", "rule": {"rfm": {"r": [1, 5], "cuts": {"recency": [1, 2, 3, 4]}}}}]`,
		`[{"name": "a", "rule": {"email": {"campaigns": ["a"], "of": "none"}}}]`,
		`[{"name": "a", "rule": {"seasonal": {"months": [1, "feb"], "share": 0.1}}}, {"name": "b", "rule": {"dueToBuy": {"within": "1d"}}}]`,
		"[\n{\"name\": \"a\", \"rule\": {\"trait\": {\"path\": \"a.b\", \"is\": {\"$within\": \"1d\"}}}}]",
		`[{"name": "a", "rule": {"eventCount": {"name": "x", "where": {"$or": [{"v": 1}]}, "max": 0}}}]`,
	} {
		f.Add([]byte(src))
	}
	reg := NewRegistry()
	if err := reg.Register("weather", func(raw json.RawMessage) (Rule, error) {
		var a struct {
			Below float64 `json:"below"`
			City  struct {
				Name string `json:"name"`
			} `json:"city"`
		}
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, err
		}
		return Contextual(Context{Country: []string{a.City.Name}}), nil
	}); err != nil {
		f.Fatal(err)
	}
	now := testNow
	prof := benchProfile(f, now, 30)
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		s, err := Parse(data, Filename("f.json"), Plugins(reg))
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Parse took %v", d)
		}
		if err != nil {
			if s != nil {
				t.Fatalf("Parse returned a set and %v", err)
			}
			var list ConditionErrors
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("Parse: %v is not ConditionErrors", err)
			}
			for _, e := range list {
				if e.File != "f.json" || e.Line < 1 || e.Column < 1 || e.Msg == "" || (e.Path != "" && e.Path[0] != '/') {
					t.Fatalf("bad problem %+v", e)
				}
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("Parse accepted invalid JSON")
		}
		e := &Engine{}
		e.Load(s)
		for _, in := range []*Input{
			{Profile: prof, Request: Facts{Device: "mobile", Country: "Oslo"}, Now: now},
			{Request: Facts{New: true}, Now: now},
		} {
			r := e.classify(in)
			x := e.Explain(&Input{Profile: in.Profile, Request: in.Request, Now: now})
			if len(x) != s.Len() {
				t.Fatalf("Explain: %d segments of %d", len(x), s.Len())
			}
			n := 0
			for _, ex := range x {
				if ex.In {
					if n >= len(r.segments) || r.segments[n] != ex.Segment {
						t.Fatalf("Explain %+v disagrees with Classify %v", ex, r.segments)
					}
					n++
				}
			}
			if n != len(r.segments) {
				t.Fatalf("Explain finds %d segments, Classify %v", n, r.segments)
			}
		}
	})
}

// FuzzDocumentEquivalence checks that conditions evaluated by the engine
// agree with the same conditions matched against the rendered document.
func FuzzDocumentEquivalence(f *testing.F) {
	for _, c := range docTestConditions {
		f.Add(c)
	}
	for _, c := range condTestTypical {
		f.Add(c)
	}
	now := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	profs := docTestProfiles(f, now)
	facts := Facts{Path: "/products/3", Device: "mobile", Source: "news\xff", Country: "FR"}
	f.Fuzz(func(t *testing.T, src string) {
		c, _ := CompileCondition([]byte(src))
		if c == nil {
			return
		}
		for name, p := range profs {
			docEquivalent(t, c, src, name, p, facts, now)
		}
		docEquivalent(t, c, src, "none", nil, facts, now)
	})
}
