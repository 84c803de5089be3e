package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/admin"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/rules/experiment"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// TestSizesReadOnEveryPage: a visitor classified into a segment is counted
// on the overview, the segment page and the rules page as soon as its
// events are written, consistently with the segment's member list, though
// the dashboard measured nothing since it started (before the visitor
// came); the pages say when the counts were read.
func TestSizesReadOnEveryPage(t *testing.T) {
	t.Parallel()
	d := newDash(t, nil, func(c *admin.Config) { c.SampleInterval = time.Hour })
	site := httptest.NewServer(d.p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/buy" {
			middleware.FromContext(r.Context()).Purchase(store.Item{ID: "moneyball", Price: 12, Quantity: 1})
		}
	})))
	defer site.Close()
	c := &http.Client{Jar: newJar()}
	for _, path := range []string{"/", "/buy", "/"} { // the second request, with the cookie, keeps the visitor
		req, _ := http.NewRequest("GET", site.URL+path, nil)
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if err := d.p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	_, body := d.get(t, prefix)
	if !strings.Contains(body, `id="visitors">1<`) {
		t.Errorf("the overview does not count the visitor:\n%s", body)
	}
	m := regexp.MustCompile(`(?s)segments/customer">customer</a>.*?<td class="n">(\d+)</td>`).FindStringSubmatch(body)
	if m == nil || m[1] != "1" {
		t.Errorf("customer size on the overview: %v, want 1", m)
	}
	if !strings.Contains(body, `id="sizes-read">Read from the store at `) || !strings.Contains(body, "read at ") {
		t.Errorf("the overview does not say when the sizes were read:\n%s", body)
	}
	if !strings.Contains(body, ">customer 1</text>") {
		t.Errorf("the chart's legend does not end at the size read:\n%s", body)
	}

	_, body = d.get(t, prefix+"segments/customer")
	if !strings.Contains(body, "1 of 1 profiles (100.0%), read at ") {
		t.Errorf("the segment page does not give the size 1 of 1:\n%s", body)
	}
	members := regexp.MustCompile(`href="`+prefix+`visitors/([0-9A-Za-z_-]+)"`).FindAllStringSubmatch(body, -1)
	if len(members) != 1 {
		t.Errorf("%d members listed, want 1", len(members))
	}
	_, body = d.get(t, prefix+"segments/returning")
	if !strings.Contains(body, "0 of 1 profiles") || !strings.Contains(body, "No member found.") {
		t.Errorf("the segment returning is not empty on its page:\n%s", body)
	}
	_, body = d.get(t, prefix+"rules")
	m = regexp.MustCompile(`(?s)segments/customer">customer</a>.*?<td class="n">(\d+)</td>`).FindStringSubmatch(body)
	if m == nil || m[1] != "1" || !strings.Contains(body, "Sizes are the store's counts, read at ") {
		t.Errorf("customer size on the rules page: %v, want 1:\n%s", m, body)
	}
}

// TestRulesBuiltIn: segments given as bytes with a file name (a file
// built into the program) are shown from what was parsed, with no attempt
// to open a file of that name, and the plugins listed are those of the
// set's own registry.
func TestRulesBuiltIn(t *testing.T) {
	t.Parallel()
	reg := rules.NewRegistry()
	for _, name := range []string{"weather", "unusedPlugin"} {
		if err := reg.Register(name, func(json.RawMessage) (rules.Rule, error) { return rules.Visits(1), nil }); err != nil {
			t.Fatal(err)
		}
	}
	e := &rules.Engine{}
	data := `{"segments": [{"name": "cold", "rule": {"weather": {"below": 5}}}]}`
	if err := e.Reload([]byte(data), rules.Filename("no-such-dir/segments.json"), rules.Plugins(reg)); err != nil {
		t.Fatal(err)
	}
	p, err := middleware.New(middleware.Config{Keys: []middleware.KeyPair{keys}, Store: memory.New(store.Limits{}), Engine: e, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	h, err := admin.New(admin.Config{Personalizer: p, Insecure: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", prefix+"rules", nil))
	body := w.Body.String()
	for _, want := range []string{"<code>no-such-dir/segments.json</code>, built into the program", `id="rules-file">{&#34;segments&#34;`,
		"used: <code>weather</code>; registered for the set: <code>unusedPlugin</code>, <code>weather</code>"} {
		if !strings.Contains(body, want) {
			t.Errorf("rules page lacks %q:\n%s", want, body)
		}
	}
	for _, bad := range []string{"no such file", "none registered"} {
		if strings.Contains(body, bad) {
			t.Errorf("rules page says %q", bad)
		}
	}
}

// TestExperimentsNoDataAndOther: a variant without visitors, or whose
// control has none, shows no probability of beating the control but says
// why; the breakdown's $other segment is explained where it appears.
func TestExperimentsNoDataAndOther(t *testing.T) {
	t.Parallel()
	e := &experiment.Experiment{Key: "promo", Variants: []experiment.Variant{{Key: "control", Weight: 1}, {Key: "a", Weight: 1}, {Key: "b", Weight: 1}}}
	src := admin.ExperimentFunc(func(ctx context.Context) ([]experiment.Report, error) {
		return []experiment.Report{{Experiment: e, Counts: map[experiment.Cell]experiment.Counts{
			{Segment: "customer", Variant: "control"}: {Visitors: 10, Conversions: 1},
			{Segment: "customer", Variant: "a"}:       {Visitors: 10, Conversions: 3},
			{Segment: "$other", Variant: "control"}:   {Visitors: 0},
			{Segment: "$other", Variant: "a"}:         {Visitors: 4, Conversions: 1},
		}}}, nil
	})
	d := newDash(t, nil, func(c *admin.Config) { c.Experiments = src })
	_, body := d.get(t, prefix+"experiments")
	rows := experiment.Results(e, map[experiment.Cell]experiment.Counts{
		{Segment: "customer", Variant: "control"}: {Visitors: 10, Conversions: 1}, {Segment: "customer", Variant: "a"}: {Visitors: 10, Conversions: 3}})
	var pa float64
	for _, r := range rows {
		if r.Segment == "customer" && r.Variant == "a" {
			pa = r.ProbBeatsControl
		}
	}
	for _, want := range []string{
		fmt.Sprintf("%.1f%%", pa*100),                                   // a in customer: both have visitors
		`— <span class="muted nodata">(no data)</span>`,                 // b: no visitors
		`— <span class="muted nodata">(no data for the control)</span>`, // a in $other: the control has none
		"P(beats control) — (no data yet)",                              // in the chart's tooltip
		`<code title="visitors in none of the breakdown's segments">$other</code> <span class="muted">in none of the segments</span>`,
		`class="muted other-note"`, "$other (in none of the segments)",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("experiments page lacks %q", want)
		}
	}
	// b has no visitors anywhere: no percentage is given for it.
	if n := strings.Count(body, `(no data)`); n != 2 {
		t.Errorf("%d variants without data, want 2 (b in each segment)", n)
	}
}
