package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/store"
)

func TestEngineOrderAndGroups(t *testing.T) {
	t.Parallel()
	e, err := NewEngine(
		Segment{Name: "low", Priority: 1, Rule: Visits(1)},
		Segment{Name: "first-of-ten", Priority: 10, Rule: Visits(1)},
		Segment{Name: "second-of-ten", Priority: 10, Rule: Visits(1)},
		Segment{Name: "g-high", Group: "g", Priority: 5, Rule: Purchased(5)},
		Segment{Name: "g-mid", Group: "g", Priority: 4, Rule: Purchased(1)},
		Segment{Name: "g-low", Group: "g", Priority: 3, Rule: Visits(1)},
	)
	if err != nil {
		t.Fatal(err)
	}
	in := &Input{Profile: profileOf(page("/", "", day), order(day, 10)), Now: testNow}
	want := []string{"first-of-ten", "second-of-ten", "g-mid", "low"}
	if got := e.Classify(in); !slices.Equal(got, want) {
		t.Errorf("Classify = %v, want %v", got, want)
	}
	x := e.Explain(in)
	if len(x) != 6 || x[4].Segment != "g-low" || x[4].In || !x[4].Matched || x[4].ExcludedBy != "g-mid" {
		t.Errorf("Explain g-low = %+v", x[4])
	}
	if x[2].Segment != "g-high" || x[2].In || x[2].Matched || x[2].ExcludedBy != "" {
		t.Errorf("Explain g-high = %+v", x[2])
	}
	if got := e.Segments(); len(got) != 6 || got[0].Name != "first-of-ten" {
		t.Errorf("Segments = %v", got)
	}
}

func TestInSegmentMembership(t *testing.T) {
	t.Parallel()
	// "vip" refers to "loyal", which is after it and excluded by "staff"
	// in the group "who".
	e, err := NewEngine(
		Segment{Name: "vip", Priority: 10, Rule: And(InSegment("loyal"), Visits(1))},
		Segment{Name: "staff", Group: "who", Priority: 5, Rule: Trait("staff", true)},
		Segment{Name: "loyal", Group: "who", Priority: 4, Rule: Purchased(2)},
		Segment{Name: "not-vip", Priority: 1, Rule: Not(InSegment("vip"))},
	)
	if err != nil {
		t.Fatal(err)
	}
	customer := profileOf(page("/", "", 3*day), order(2*day, 1), order(day, 1))
	staff := profileOf(page("/", "", 3*day), order(2*day, 1), order(day, 1), identify(`{"staff": true}`))
	if got := e.Classify(&Input{Profile: customer, Now: testNow}); !slices.Equal(got, []string{"vip", "loyal"}) {
		t.Errorf("customer: %v", got)
	}
	if got := e.Classify(&Input{Profile: staff, Now: testNow}); !slices.Equal(got, []string{"staff", "not-vip"}) {
		t.Errorf("staff: %v", got)
	}
	x := e.Explain(&Input{Profile: staff, Now: testNow})
	if c := x[0].Clauses; len(c) != 3 || c[1].Path != "segment loyal" || c[1].Result || c[1].Depth != 1 {
		t.Errorf("Explain vip: %+v", c)
	}
	// Outside an engine, a reference cannot be resolved.
	if ok, err := InSegment("vip").Match(&Input{Profile: customer, Now: testNow}); ok || err == nil {
		t.Errorf("InSegment outside an engine = %v, %v", ok, err)
	}
}

func TestNewEngineProblems(t *testing.T) {
	t.Parallel()
	_, err := NewEngine(
		Segment{Name: "a", Rule: Visits(1)},
		Segment{Name: "a", Rule: Visits(1)},
		Segment{Name: "", Rule: Visits(1)},
		Segment{Name: "b"},
		Segment{Name: "c", Rule: InSegment("nobody")},
		Segment{Name: "d", Rule: Or(Visits(3), InSegment("e"))},
		Segment{Name: "e", Rule: InSegment("d")},
	)
	for _, want := range []string{
		`segment 1 "a": duplicate segment name "a": segment 0 has it too`,
		`segment 2 "": empty name`,
		`segment 3 "b": no rule`,
		`segment 4 "c": inSegment: no segment is named "nobody"`,
		`segment 5 "d": cycle of segment references: d → e → d`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewEngine: %v\nwant %q", err, want)
		}
	}
}

func TestEngineErrorsAndPanics(t *testing.T) {
	t.Parallel()
	e, _ := NewEngine(
		Segment{Name: "fails", Rule: RuleFunc(func(*Input) (bool, error) { return true, errors.New("no") })},
		Segment{Name: "panics", Rule: RuleFunc(func(*Input) (bool, error) { panic("bug") })},
		Segment{Name: "ok", Rule: Visits(0)},
	)
	in := &Input{Profile: store.New("x"), Now: testNow}
	if got := e.Classify(in); !slices.Equal(got, []string{"ok"}) {
		t.Errorf("Classify = %v", got)
	}
	if n := e.Errors(); n != 2 {
		t.Errorf("Errors = %d, want 2", n)
	}
	x := e.Explain(in)
	if x[0].Err == nil || x[0].In || x[1].Err == nil || !strings.Contains(x[1].Err.Error(), "panicked: bug") {
		t.Errorf("Explain = %+v", x)
	}
	if st := e.Status(); st.Err != nil || e.Set().Len() != 3 {
		t.Errorf("Status = %+v", st)
	}
}

func TestNilAndZeroEngine(t *testing.T) {
	t.Parallel()
	var nilEngine *Engine
	in := &Input{Now: testNow}
	if nilEngine.Classify(in) != nil || nilEngine.Errors() != 0 || nilEngine.Segments() != nil || nilEngine.Explain(in) != nil {
		t.Error("nil engine")
	}
	if (nilEngine.Status() != Status{}) {
		t.Error("nil engine status")
	}
	var zero Engine
	if r := zero.classify(in); r.segments != nil || zero.valid(r, Facts{}, testNow) {
		t.Errorf("zero engine: %+v", r)
	}
}

func TestClassifyResultValid(t *testing.T) {
	t.Parallel()
	e, err := NewEngine(
		Segment{Name: "mobile", Rule: Contextual(Context{Device: []string{"mobile"}})},
		Segment{Name: "recent", Rule: Recency(Since{Within: 2 * day})},
		Segment{Name: "buyer", Rule: Purchased(1)},
	)
	if err != nil {
		t.Fatal(err)
	}
	p := profileOf(order(day, 3))
	facts := Facts{Device: "mobile", Path: "/a", Source: "x"}
	r := e.classify(&Input{Profile: p, Request: facts, Now: testNow})
	if !slices.Equal(r.segments, []string{"mobile", "recent", "buyer"}) || (r.request == 0) || r.request != FieldDevice ||
		!r.validUntil.Equal(testNow.Add(day)) {
		t.Fatalf("ClassifyResult = %+v", r)
	}
	other := facts
	other.Path, other.Source = "/b", "y" // not read
	for _, tc := range []struct {
		name  string
		facts Facts
		now   time.Time
		want  bool
	}{
		{"same request", facts, testNow, true},
		{"other facts, not read", other, testNow.Add(time.Hour), true},
		{"other device", Facts{Device: "desktop"}, testNow, false},
		{"window moved", facts, testNow.Add(day), false},
	} {
		if got := e.valid(r, tc.facts, tc.now); got != tc.want {
			t.Errorf("%s: Valid = %v, want %v", tc.name, got, tc.want)
		}
	}
	// A result of a profile-only set holds for any request.
	po, _ := NewEngine(Segment{Name: "buyer", Rule: Purchased(1)})
	r2 := po.classify(&Input{Profile: p, Request: facts, Now: testNow})
	if (r2.request != 0) || !r2.validUntil.IsZero() || !po.valid(r2, Facts{Device: "tv"}, testNow.Add(1000*day)) {
		t.Errorf("profile-only ClassifyResult = %+v", r2)
	}
	// A reload invalidates results.
	s, _ := NewSet(Segment{Name: "buyer", Rule: Purchased(1)})
	po.Load(s)
	if po.valid(r2, facts, testNow) {
		t.Error("Valid after Load")
	}
}

func TestReload(t *testing.T) {
	t.Parallel()
	good := []byte(`[{"name": "buyer", "rule": {"purchased": {"min": 1}}}]`)
	better := []byte(`[{"name": "visitor", "rule": {"visits": {"min": 1}}}, {"name": "buyer", "rule": {"purchased": {"min": 1}}}]`)
	bad := []byte(`[{"name": "buyer", "rule": {"purchased": {"min": "one"}}}]`)
	e := &Engine{}
	in := func() *Input { return &Input{Profile: profileOf(page("/", "", day), order(day, 1)), Now: testNow} }
	if err := e.Reload(good, Filename("s.json")); err != nil {
		t.Fatal(err)
	}
	st := e.Status()
	if st.Source != "s.json" || e.Set().Len() != 1 || st.Err != nil || st.Loaded.IsZero() || !st.Attempted.Equal(st.Loaded) {
		t.Errorf("Status after Reload = %+v", st)
	}
	err := e.Reload(bad, Filename("s.json"))
	if err == nil || !strings.Contains(err.Error(), `s.json:1:50: /0/rule/purchased/min: min needs an integer, not a string "one"`) {
		t.Errorf("Reload(bad) = %v", err)
	}
	if got := e.Classify(in()); !slices.Equal(got, []string{"buyer"}) {
		t.Errorf("after a bad reload, Classify = %v", got)
	}
	st2 := e.Status()
	if st2.Err == nil || st2.Err.Error() != err.Error() || !st2.Loaded.Equal(st.Loaded) || !st2.Attempted.After(st.Loaded) && !st2.Attempted.Equal(st.Loaded) || e.Set().Len() != 1 {
		t.Errorf("Status after a bad reload = %+v", st2)
	}
	if err := e.Reload(better); err != nil {
		t.Fatal(err)
	}
	if got := e.Classify(in()); !slices.Equal(got, []string{"visitor", "buyer"}) {
		t.Errorf("after a good reload, Classify = %v", got)
	}
	if st := e.Status(); st.Err != nil || e.Set().Len() != 2 || st.Source != "" {
		t.Errorf("Status after a good reload = %+v", st)
	}
}

func TestReloadFileAndWatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "segments.json")
	write := func(s string) {
		t.Helper()
		// Write and rename, as editors and deploys do.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	e := &Engine{}
	if err := e.ReloadFile(path); err == nil || !errors.Is(err, os.ErrNotExist) || e.Status().Err == nil {
		t.Errorf("ReloadFile(missing) = %v, status %+v", err, e.Status())
	}
	write(`[{"name": "one", "rule": {"visits": {"min": 1}}}]`)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Watch(ctx, path, 5*time.Millisecond) }()
	in := func() *Input { return &Input{Profile: profileOf(page("/", "", 0)), Now: testNow} }
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; status %+v", what, e.Status())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("the first load", func() bool { return slices.Equal(e.Classify(in()), []string{"one"}) })
	if st := e.Status(); st.Source != path || st.Err != nil {
		t.Errorf("Status = %+v", st)
	}
	write(`[{"name": "two", "rule": {"visits": {"min": 1}}}]`)
	waitFor("the change", func() bool { return slices.Equal(e.Classify(in()), []string{"two"}) })
	write(`[{"name": "three", "rule": {"visits": {"min": "x"}}}]`)
	waitFor("the bad file", func() bool { return e.Status().Err != nil })
	if got := e.Classify(in()); !slices.Equal(got, []string{"two"}) {
		t.Errorf("after a bad file, Classify = %v", got)
	}
	if err := e.Status().Err; !strings.Contains(err.Error(), path+":1:47: /0/rule/visits/min") {
		t.Errorf("Status().Err = %v", err)
	}
	os.Remove(path)
	waitFor("the missing file", func() bool {
		err := e.Status().Err
		return err != nil && errors.Is(err, os.ErrNotExist)
	})
	write(`[{"name": "four", "rule": {"visits": {"min": 1}}}]`)
	waitFor("the new file", func() bool { return slices.Equal(e.Classify(in()), []string{"four"}) })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Watch = %v", err)
	}
}

// TestConcurrentClassifyAndReload classifies while sets are reloaded, good
// and bad: run with -race.
func TestConcurrentClassifyAndReload(t *testing.T) {
	t.Parallel()
	sets := [][]byte{
		benchSegments(10),
		benchSegments(40),
		[]byte(`[{"name": "bad", "rule": {"nope": {}}}]`),
	}
	e := &Engine{}
	must(t, e.Reload(sets[0]))
	now := testNow
	p := benchProfile(t, now, 60)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				in := &Input{Profile: p, Request: Facts{Device: "mobile"}, Now: now}
				r := e.classify(in)
				if len(r.segments) == 0 {
					t.Error("no segment")
					return
				}
				if x := e.Explain(&Input{Profile: p, Now: now}); len(x) != 10 && len(x) != 40 {
					t.Errorf("Explain: %d segments", len(x))
					return
				}
			}
		}()
	}
	for i := range 60 {
		err := e.Reload(sets[i%3])
		if (err != nil) != (i%3 == 2) {
			t.Errorf("Reload %d: %v", i, err)
		}
		e.Status()
	}
	close(stop)
	wg.Wait()
}

func TestExplainCondition(t *testing.T) {
	t.Parallel()
	e, err := NewEngine(Segment{Name: "s", Rule: MustCondition(
		`{"visits": {"$gte": 3, "$lt": 10}, "$or": [{"traits.plan": "pro"}, {"request.utmSource": {"$in": ["ads"]}}], "recent": {"$count": {"where": {"type": "page"}, "is": {"$gte": 2}}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	p := profileOf(page("/", "", 2*day), page("/", "", day), identify(`{"plan": "free"}`))
	x := e.Explain(&Input{Profile: p, Request: Facts{Source: "ads"}, Now: testNow})
	var got []string
	for _, c := range x[0].Clauses {
		got = append(got, c.String())
	}
	want := []string{
		`fail visits = 1, want $gte 3`,
		`pass visits = 1, want $lt 10`,
		`pass $or`,
		`  fail traits.plan = "free", want "pro"`,
		`  pass request.utmSource = "ads", want $in ["ads"]`,
		`pass recent = 2, want $count {"where":{"type":"page"},"is":{"$gte":2}}`,
	}
	if !slices.Equal(got, want) || x[0].In {
		t.Errorf("Explain:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestExplainJSON(t *testing.T) {
	t.Parallel()
	e, _ := NewEngine(Segment{Name: "s", Description: "d", Rule: PageVisited(PageVisits{Path: "/pricing", Min: 2, Within: 7 * day})})
	x := e.Explain(&Input{Profile: profileOf(page("/pricing", "", day)), Now: testNow})
	c := x[0].Clauses[0]
	if c.String() != "fail pages[/pricing] within 7d = 1, want >= 2" || c.Rule != "pageVisited" {
		t.Errorf("clause %+v: %s", c, c)
	}
	if s := fmt.Sprint(x[0].Clauses); !strings.Contains(s, "pages[/pricing]") {
		t.Error(s)
	}
	b, err := json.Marshal(x[0])
	want := `{"segment":"s","description":"d","priority":0,"in":false,"matched":false,"clauses":[{"depth":0,"rule":"pageVisited","path":"pages[/pricing] within 7d","op":"\u003e=","actual":"1","expected":"2","result":false}]}`
	if err != nil || string(b) != want {
		t.Errorf("JSON: %s, %v\nwant %s", b, err, want)
	}
	b, _ = json.Marshal(Explanation{Segment: "x", Err: errors.New("boom")})
	if !strings.Contains(string(b), `"error":"boom"`) {
		t.Errorf("JSON with an error: %s", b)
	}
}

func TestClassifyMemo(t *testing.T) {
	t.Parallel()
	e, err := NewEngine(
		Segment{Name: "returning", Rule: Visits(2)},
		Segment{Name: "twice", Rule: MustCondition(`{"visits": 2}`)},
	)
	if err != nil {
		t.Fatal(err)
	}
	p := profileOf(page("/", "", day))
	var m Memo
	classify := func(newVisit bool, want []string, wantClassified bool) {
		t.Helper()
		got, classified := e.ClassifyMemo(&m, &Input{Profile: p, Now: testNow, NewVisit: newVisit})
		if !slices.Equal(got, want) || classified != wantClassified {
			t.Errorf("ClassifyMemo(NewVisit %v) = %v, %v; want %v, %v", newVisit, got, classified, want, wantClassified)
		}
	}
	if p.Visits != 1 {
		t.Fatalf("Visits = %d", p.Visits)
	}
	classify(false, nil, true)
	classify(false, nil, false)
	// A new visit counts in the rules and in the document.
	classify(true, []string{"returning", "twice"}, true)
	classify(true, []string{"returning", "twice"}, false)
	if p.Visits != 1 {
		t.Errorf("NewVisit changed the profile: Visits = %d", p.Visits)
	}
	// A change of the profile, a reload: classified again.
	p.Apply(store.Limits{}, page("/b", "", 0))
	classify(true, []string{"returning", "twice"}, true)
	e.Load(e.Set())
	classify(true, []string{"returning", "twice"}, false) // the same set
	if err := e.Reload([]byte(`[{"name": "returning", "rule": {"visits": {"min": 2}}}]`)); err != nil {
		t.Fatal(err)
	}
	classify(true, []string{"returning"}, true)
	// Another profile.
	p = profileOf(page("/", "", day))
	classify(true, []string{"returning"}, true)
	in := &Input{Profile: p, NewVisit: true}
	if in.Visits() != 2 || (&Input{}).Visits() != 0 {
		t.Errorf("Visits() = %d", in.Visits())
	}
}
