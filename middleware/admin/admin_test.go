package admin_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/admin"
	"github.com/tailorhq/tailor/middleware/webhook"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/rules/experiment"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var keys = middleware.KeyPair{
	Hash:  []byte("0123456789abcdef0123456789abcdef"),
	Block: []byte("fedcba9876543210fedcba9876543210"),
}

const prefix = "/_tailor/admin/"

func engine(t testing.TB) *rules.Engine {
	t.Helper()
	e, err := rules.NewEngine(
		rules.Segment{Name: "customer", Description: "has bought something", Priority: 40, Rule: rules.Purchased(1)},
		rules.Segment{Name: "red-sox-fan", Description: "viewed Red Sox products twice", Priority: 30, Rule: rules.CategoryViews("red-sox", 2)},
		rules.Segment{Name: "returning", Priority: 20, Group: "lifecycle", Rule: rules.Visits(2)},
		rules.Segment{Name: "anyone", Priority: 10, Group: "lifecycle", Rule: rules.Visits(0)},
	)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// seed writes profiles to st: n visitors, every third a customer with a
// user id and traits, every fifth a Red Sox fan.
func seed(t testing.TB, st store.Store, n int) {
	t.Helper()
	at := time.Now().Add(-time.Hour)
	for i := range n {
		id := fmt.Sprintf("%032x", i+1)
		evs := []store.Event{{ID: id + ":1", Type: store.TypePage, Path: "/", Time: at, NewVisit: true}}
		if i%3 == 0 {
			evs = append(evs,
				store.Event{ID: id + ":2", Type: store.TypeIdentify, UserID: fmt.Sprintf("u-%d", i), Time: at,
					Traits: json.RawMessage(fmt.Sprintf(`{"email":"v%d@example.com","name":"=HYPERLINK(\"x\")"}`, i))},
				store.Event{ID: id + ":3", Type: store.TypeTrack, Name: store.EventPurchase, Time: at,
					Items: []store.Item{{ID: "moneyball", Price: 12}}})
		}
		if i%5 == 0 {
			evs = append(evs,
				store.Event{ID: id + ":4", Type: store.TypePage, Path: "/p/banner", Category: "red-sox", Item: "banner", Time: at},
				store.Event{ID: id + ":5", Type: store.TypePage, Path: "/p/potato", Category: "red-sox", Item: "potato", Time: at})
		}
		if _, err := st.Apply(context.Background(), id, evs); err != nil {
			t.Fatal(err)
		}
	}
}

type dash struct {
	p   *middleware.Personalizer
	h   *admin.Handler
	srv *httptest.Server
	st  store.Store
}

var _ admin.Source = (*middleware.Personalizer)(nil)

func newPersonalizer(t testing.TB, st store.Store) *middleware.Personalizer {
	t.Helper()
	p, err := middleware.New(middleware.Config{Keys: []middleware.KeyPair{keys}, Store: st, Engine: engine(t), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

func newDash(t testing.TB, st store.Store, mod func(*admin.Config)) *dash {
	t.Helper()
	if st == nil {
		st = memory.New(store.Limits{})
	}
	d := &dash{st: st, p: newPersonalizer(t, st)}
	// A store that counts gets its seeded profiles classified by the
	// backfill at start: the sizes are those of the test once it is done.
	if _, ok := st.(store.Scanner); ok {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if a, err := d.p.Aggregates(context.Background()); err == nil && !a.Backfill.Finished.IsZero() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the backfill at start did not finish")
			}
		}
	}
	cfg := admin.Config{Personalizer: d.p, Username: "admin", Password: "hunter2", Logger: quiet, SampleInterval: 20 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	h, err := admin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	d.h = h
	mux := http.NewServeMux()
	mux.Handle(h.Prefix(), h)
	d.srv = httptest.NewServer(mux)
	t.Cleanup(d.srv.Close)
	return d
}

// get fetches path with the basic auth credentials and returns the
// response and its body.
func (d *dash) get(t testing.TB, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", d.srv.URL+path, nil)
	req.SetBasicAuth("admin", "hunter2")
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// waitMeasured waits until the overview shows a measurement that saw want
// profiles.
func (d *dash) waitMeasured(t testing.TB, want string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body := d.get(t, prefix)
		if strings.Contains(body, `<span class="value" id="visitors">`+want+`</span>`) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("no measurement of %s profiles:\n%s", want, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	p := newPersonalizer(t, memory.New(store.Limits{}))
	for _, tc := range []struct {
		cfg  admin.Config
		want []string
	}{
		{admin.Config{}, []string{"Config.Personalizer: required", "Config.Authorize, Config.Username and Config.Password, or Config.BearerToken"}},
		{admin.Config{Personalizer: p}, []string{"needs an authorizer", "Config.Insecure"}},
		{admin.Config{Personalizer: p, Username: "admin"}, []string{"Config.Username, Config.Password: set both"}},
		{admin.Config{Personalizer: p, Password: "x"}, []string{"Config.Username, Config.Password: set both"}},
		{admin.Config{Personalizer: p, BearerToken: "t", Prefix: "admin/"}, []string{"Config.Prefix"}},
		{admin.Config{Personalizer: p, BearerToken: "t", SampleLimit: -1}, []string{"Config.SampleLimit"}},
	} {
		h, err := admin.New(tc.cfg)
		if err == nil {
			h.Close()
			t.Errorf("New(%+v): no error", tc.cfg)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("New(%+v): %v; want it to mention %q", tc.cfg, err, w)
			}
		}
	}
	for _, cfg := range []admin.Config{
		{Personalizer: p, Insecure: true},
		{Personalizer: p, Username: "a", Password: "b"},
		{Personalizer: p, BearerToken: "t"},
		{Personalizer: p, Authorize: func(*http.Request) bool { return false }},
	} {
		h, err := admin.New(cfg)
		if err != nil {
			t.Errorf("New(%+v): %v", cfg, err)
			continue
		}
		h.Close()
	}
}

func TestAuthorization(t *testing.T) {
	t.Parallel()
	p := newPersonalizer(t, memory.New(store.Limits{}))
	staff := func(r *http.Request) bool { return r.Header.Get("X-Staff") == "yes" }
	for _, tc := range []struct {
		name      string
		cfg       admin.Config
		req       func(r *http.Request)
		status    int
		challenge string
	}{
		{"basic ok", admin.Config{Username: "admin", Password: "pw"}, func(r *http.Request) { r.SetBasicAuth("admin", "pw") }, 200, ""},
		{"basic wrong password", admin.Config{Username: "admin", Password: "pw"}, func(r *http.Request) { r.SetBasicAuth("admin", "pW") }, 401, "Basic"},
		{"basic wrong user", admin.Config{Username: "admin", Password: "pw"}, func(r *http.Request) { r.SetBasicAuth("root", "pw") }, 401, "Basic"},
		{"basic none", admin.Config{Username: "admin", Password: "pw"}, func(r *http.Request) {}, 401, "Basic"},
		{"basic prefix of password", admin.Config{Username: "admin", Password: "pw"}, func(r *http.Request) { r.SetBasicAuth("admin", "p") }, 401, "Basic"},
		{"bearer ok", admin.Config{BearerToken: "tok"}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") }, 200, ""},
		{"bearer case", admin.Config{BearerToken: "tok"}, func(r *http.Request) { r.Header.Set("Authorization", "bearer tok") }, 200, ""},
		{"bearer wrong", admin.Config{BearerToken: "tok"}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer tik") }, 401, "Bearer"},
		{"bearer as basic", admin.Config{BearerToken: "tok"}, func(r *http.Request) { r.SetBasicAuth("tok", "tok") }, 401, "Bearer"},
		{"func ok", admin.Config{Authorize: staff}, func(r *http.Request) { r.Header.Set("X-Staff", "yes") }, 200, ""},
		{"func refuses", admin.Config{Authorize: staff}, func(r *http.Request) {}, 403, ""},
		{"any of several", admin.Config{Authorize: staff, BearerToken: "tok"}, func(r *http.Request) { r.Header.Set("X-Staff", "yes") }, 200, ""},
		{"insecure", admin.Config{Insecure: true}, func(r *http.Request) {}, 200, ""},
		{"insecure with authorizer", admin.Config{Insecure: true, BearerToken: "tok"}, func(r *http.Request) {}, 401, "Bearer"},
	} {
		tc.cfg.Personalizer, tc.cfg.Logger, tc.cfg.SampleInterval = p, quiet, time.Hour
		h, err := admin.New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{prefix, prefix + "rules", prefix + "style.css", prefix + "segments/customer/export.csv"} {
			r := httptest.NewRequest("GET", path, nil)
			tc.req(r)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Errorf("%s: GET %s: %d, want %d", tc.name, path, w.Code, tc.status)
			}
			if ch := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(ch, tc.challenge) || (tc.challenge == "") != (ch == "") {
				t.Errorf("%s: WWW-Authenticate %q, want %q", tc.name, ch, tc.challenge)
			}
			if w.Code != 200 && strings.Contains(w.Body.String(), "customer") {
				t.Errorf("%s: a refused request sees data", tc.name)
			}
			banner := strings.Contains(w.Body.String(), "Insecure development mode")
			if w.Code == 200 && strings.HasSuffix(w.Header().Get("Content-Type"), "charset=utf-8") && strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") &&
				banner != tc.cfg.Insecure {
				t.Errorf("%s: %s: insecure banner %v, want %v", tc.name, path, banner, tc.cfg.Insecure)
			}
		}
		h.Close()
	}
}

var attrRE = regexp.MustCompile(`(?i)\b(src|href|action|xlink:href)\s*=\s*"([^"]*)"`)

// TestSameOriginOnly: every page carries the security headers, and every
// reference in it stays under the prefix.
func TestSameOriginOnly(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	seed(t, st, 10)
	d := newDash(t, st, func(c *admin.Config) { c.Insecure = true })
	d.waitMeasured(t, "10")
	for _, path := range []string{"", "segments/customer", "visitors", "visitors/" + fmt.Sprintf("%032x", 1), "visitors?by=user&q=nobody",
		"experiments", "rules", "webhooks", "nowhere", "segments/nothing"} {
		resp, body := d.get(t, prefix+path)
		h := resp.Header
		if got := h.Get("Content-Security-Policy"); got != admin.ContentSecurityPolicy {
			t.Errorf("%s: CSP %q", path, got)
		}
		if !strings.Contains(admin.ContentSecurityPolicy, "default-src 'none'") || strings.Contains(admin.ContentSecurityPolicy, "unsafe") {
			t.Errorf("CSP is not strict: %s", admin.ContentSecurityPolicy)
		}
		for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
			if h.Get(k) != v {
				t.Errorf("%s: %s %q, want %q", path, k, h.Get(k), v)
			}
		}
		for _, m := range attrRE.FindAllStringSubmatch(body, -1) {
			// The only link out is the preview link, to the site itself.
			if !strings.HasPrefix(m[2], prefix) && !(m[1] == "href" && strings.HasPrefix(m[2], "/?tailor_preview=")) {
				t.Errorf("%s: %s=%q leaves the dashboard", path, m[1], m[2])
			}
		}
		clean := strings.ReplaceAll(body, `xmlns="http://www.w3.org/2000/svg"`, "")
		for _, bad := range []string{"<script", " style=", "<style", "@import", "url(", "http://", "https://", "<iframe", "<img", "<object", "<embed"} {
			if strings.Contains(clean, bad) {
				t.Errorf("%s: page contains %q", path, bad)
			}
		}
	}
	resp, css := d.get(t, prefix+"style.css")
	if resp.Header.Get("Content-Type") != "text/css; charset=utf-8" || strings.Contains(css, "url(") || strings.Contains(css, "@import") {
		t.Errorf("style.css: %s, references something", resp.Header.Get("Content-Type"))
	}
}

func TestOverview(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	seed(t, st, 30)
	d := newDash(t, st, nil)
	body := d.waitMeasured(t, "30")
	// 30 visitors: 10 customers, 6 fans, everyone in "anyone" (visits >= 0)
	// and nobody "returning" (one visit each).
	for seg, size := range map[string]string{"customer": "10", "red-sox-fan": "6", "anyone": "30", "returning": "0"} {
		re := regexp.MustCompile(`(?s)<a href="` + prefix + `segments/` + seg + `">` + seg + `</a>.*?<td class="n">(\d+)</td>`)
		m := re.FindStringSubmatch(body)
		if m == nil || m[1] != size {
			t.Errorf("segment %s: size %v, want %s", seg, m, size)
		}
	}
	for _, want := range []string{`id="sizes-chart"><svg `, `id="events-chart"><svg `, ">customer 10</text>", "Segment sizes over time"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	// Events per minute needs two measurements: they come every 20ms.
	deadline := time.Now().Add(5 * time.Second)
	for !regexp.MustCompile(`id="events-per-minute">[0-9.]+<`).MatchString(body) {
		if time.Now().After(deadline) {
			t.Fatalf("no events per minute:\n%s", body)
		}
		time.Sleep(20 * time.Millisecond)
		_, body = d.get(t, prefix)
	}
}

// TestSampleLimit: a store larger than SampleLimit is measured on its first
// profiles, and the pages say so.
// rangeOnly hides the aggregates of a store that can list its profiles:
// the dashboard then classifies at most SampleLimit of them.
type rangeOnly struct {
	store.Store
	store.Ranger
}

func TestSampleLimit(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	seed(t, st, 12)
	d := newDash(t, rangeOnly{st, st}, func(c *admin.Config) { c.SampleLimit = 5 })
	body := d.waitMeasured(t, "≥ 5")
	if !strings.Contains(body, "the store holds more, so sizes count the first 5 profiles only") {
		t.Errorf("the overview does not say that the sizes are partial")
	}
	_, body = d.get(t, prefix+"segments/anyone")
	if !strings.Contains(body, "of the first 5 profiles") {
		t.Errorf("the segment page does not say that the size is partial:\n%s", body)
	}
}

// TestSizesCounted: with a store that keeps aggregates, sizes count every
// profile, whatever SampleLimit, and the overview says so.
func TestSizesCounted(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	seed(t, st, 12)
	d := newDash(t, st, func(c *admin.Config) { c.SampleLimit = 5 })
	body := d.waitMeasured(t, "12")
	if !strings.Contains(body, "Counted by the store as profiles are written: every stored profile") || strings.Contains(body, "first 5") {
		t.Errorf("the overview does not say that the sizes count every profile:\n%s", body)
	}
	// The sizes follow once the backfill classified the seeded profiles.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, body = d.get(t, prefix+"segments/anyone")
		if strings.Contains(body, "12 of 12 profiles") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the segment page does not give the size of 12 of 12:\n%s", body)
		}
	}
}

// noRange hides the store's Range.
type noRange struct{ store.Store }

func TestStoreWithoutRange(t *testing.T) {
	t.Parallel()
	mem := memory.New(store.Limits{})
	seed(t, mem, 3)
	d := newDash(t, noRange{mem}, nil)
	body := d.waitMeasured(t, "—")
	if !strings.Contains(body, "the store cannot list its profiles") {
		t.Errorf("overview does not say why there are no sizes")
	}
	_, body = d.get(t, prefix+"segments/customer")
	if !strings.Contains(body, "segments cannot be exported") {
		t.Errorf("segment page does not say exports are impossible")
	}
	resp, _ := d.get(t, prefix+"segments/customer/export.csv")
	if resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("export without Range: %d", resp.StatusCode)
	}
	_, body = d.get(t, prefix+"visitors?by=user&q=u-0")
	if !strings.Contains(body, "finding visitors by user id among the others is not supported by this store") {
		t.Errorf("search by user id does not say it is unsupported:\n%s", body)
	}
	// By visitor id works on any store.
	resp, body = d.get(t, prefix+"visitors/"+fmt.Sprintf("%032x", 1))
	if resp.StatusCode != 200 || !strings.Contains(body, "u-0") {
		t.Errorf("inspector: %d", resp.StatusCode)
	}
}

func TestSegmentPage(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	seed(t, st, 9)
	d := newDash(t, st, nil)
	d.waitMeasured(t, "9")
	_, body := d.get(t, prefix+"segments/customer")
	for _, want := range []string{
		`<dd id="segment-name">customer</dd>`, "has bought something", "<dd>40</dd>",
		`3 of 9 profiles`, "purchases.count &gt;= 1", `href="` + prefix + `segments/customer/export.csv"`,
		`href="` + prefix + `segments/customer/export.ndjson"`, "Every member among the 9 stored profiles",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("segment page lacks %q", want)
		}
	}
	members := regexp.MustCompile(`href="`+prefix+`visitors/([0-9a-f]{32})"`).FindAllStringSubmatch(body, -1)
	if len(members) != 3 {
		t.Errorf("%d members listed, want 3", len(members))
	}
	resp, body := d.get(t, prefix+"segments/nobody")
	if resp.StatusCode != 404 || !strings.Contains(body, `no segment named &#34;nobody&#34;`) {
		t.Errorf("unknown segment: %d %s", resp.StatusCode, body)
	}
}

func TestExportCSV(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	seed(t, st, 30)
	d := newDash(t, st, nil)
	resp, body := d.get(t, prefix+"segments/customer/export.csv?traits=email,name,missing")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		!regexp.MustCompile(`^attachment; filename="customer-\d{8}-\d{4}\.csv"$`).MatchString(resp.Header.Get("Content-Disposition")) {
		t.Fatalf("export: %d %v", resp.StatusCode, resp.Header)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	head := strings.Join(recs[0], ",")
	if head != "visitor_id,user_id,first_seen,last_seen,visits,orders,revenue,trait_email,trait_name,trait_missing,traits,segments,"+
		"churn_risk,next_purchase,next_purchase_basis,gap_days,days_since_purchase,best_hour,best_weekday,timezone,usual_months" {
		t.Errorf("header %s", head)
	}
	if len(recs) != 11 {
		t.Fatalf("%d rows, want 10 customers", len(recs)-1)
	}
	col := map[string]int{}
	for i, c := range recs[0] {
		col[c] = i
	}
	for _, r := range recs[1:] {
		if len(r[col["visitor_id"]]) != 32 || !strings.HasPrefix(r[col["user_id"]], "u-") ||
			!strings.HasSuffix(r[col["trait_email"]], "@example.com") || r[col["trait_missing"]] != "" ||
			r[col["orders"]] != "1" || r[col["revenue"]] != "12.00" || !strings.Contains(r[col["segments"]], "customer") ||
			r[col["churn_risk"]] == "" || r[col["timezone"]] != "UTC" {
			t.Errorf("row %v", r)
		}
		if r[col["trait_name"]] != `'=HYPERLINK("x")` {
			t.Errorf("formula not neutralised: %q", r[col["trait_name"]])
		}
		var traits map[string]string
		if err := json.Unmarshal([]byte(r[col["traits"]]), &traits); err != nil || traits["email"] == "" {
			t.Errorf("traits column %q: %v", r[col["traits"]], err)
		}
	}
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("t%d", i))
	}
	resp, _ = d.get(t, prefix+"segments/customer/export.csv?traits="+url.QueryEscape(strings.Join(many, ",")))
	if resp.StatusCode != 400 {
		t.Errorf("40 trait columns: %d", resp.StatusCode)
	}
}

func TestExportNDJSON(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	seed(t, st, 30)
	d := newDash(t, st, nil)
	resp, body := d.get(t, prefix+"segments/red-sox-fan/export.ndjson")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("export: %d %v", resp.StatusCode, resp.Header)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	n := 0
	for sc.Scan() {
		n++
		var rec struct {
			VisitorID   string          `json:"visitorId"`
			UserID      string          `json:"userId"`
			Segments    []string        `json:"segments"`
			Traits      json.RawMessage `json:"traits"`
			Predictions struct {
				ChurnRisk *float64 `json:"churnRisk"`
				BestHour  *int     `json:"bestHour"`
			} `json:"predictions"`
			Orders int `json:"orders"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d: %v: %s", n, err, sc.Text())
		}
		if len(rec.VisitorID) != 32 || rec.Predictions.ChurnRisk == nil || rec.Predictions.BestHour == nil || !contains(rec.Segments, "red-sox-fan") {
			t.Errorf("record %s", sc.Text())
		}
	}
	if n != 6 {
		t.Errorf("%d records, want 6 fans", n)
	}
}

func newJar() http.CookieJar {
	jar, _ := cookiejar.New(nil)
	return jar
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// TestExportStreams: a large export is flushed as it goes, not buffered
// whole.
func TestExportStreams(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	seed(t, st, 3000)
	d := newDash(t, st, func(c *admin.Config) { c.SampleInterval = time.Hour })
	req, _ := http.NewRequest("GET", d.srv.URL+prefix+"segments/anyone/export.ndjson", nil)
	req.SetBasicAuth("admin", "hunter2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("transfer encoding %v, want chunked", resp.TransferEncoding)
	}
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		n++
	}
	if n != 3000 {
		t.Errorf("%d lines, want 3000", n)
	}
}

// TestInspector: a visitor's profile, with pending events, segments and
// their explanation; and the search by user id.
func TestInspector(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	seed(t, st, 6)
	d := newDash(t, st, nil)
	id := fmt.Sprintf("%032x", 1) // a customer and a fan, user u-0
	_, body := d.get(t, prefix+"visitors/"+id)
	for _, want := range []string{
		`<dd class="mono" id="visitor-id">` + id + `</dd>`, `<dd id="user-id">u-0</dd>`,
		`In <a href="` + prefix + `segments/customer">customer</a>, <a href="` + prefix + `segments/red-sox-fan">red-sox-fan</a>, <a href="` + prefix + `segments/anyone">anyone</a>.`,
		"purchases.count &gt;= 1", "found <code>1</code>", "categories[red-sox]", "v0@example.com", "moneyball",
		`id="predictions"`, "Churn risk", "/p/potato",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("inspector lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?s)segments/returning">returning</a>.*?<td>out</td>`).MatchString(body) {
		t.Errorf("returning is not shown as out")
	}

	resp, body := d.get(t, prefix+"visitors/"+fmt.Sprintf("%032x", 999))
	if resp.StatusCode != 404 || !strings.Contains(body, `id="not-found"`) {
		t.Errorf("unknown visitor: %d", resp.StatusCode)
	}
	resp, _ = d.get(t, prefix+"visitors/"+url.PathEscape("bad\x01id"))
	if resp.StatusCode != 400 {
		t.Errorf("invalid id: %d", resp.StatusCode)
	}

	// Search by visitor id redirects to the inspector; by user id, a single
	// match too.
	resp, _ = d.get(t, prefix+"visitors?by=visitor&q="+id)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != prefix+"visitors/"+id {
		t.Errorf("search by visitor id: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = d.get(t, prefix+"visitors?by=user&q=u-3")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != prefix+"visitors/"+fmt.Sprintf("%032x", 4) {
		t.Errorf("search by user id: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body = d.get(t, prefix+"visitors")
	if n := strings.Count(body, `<a class="mono" href="`+prefix+`visitors/`); n != 6 || !strings.Contains(body, "among all 6 stored profiles") {
		t.Errorf("recent visitors: %d listed\n%s", n, body)
	}
	resp, body = d.get(t, prefix+"visitors?by=user&q=u-nobody")
	if resp.StatusCode != 200 || !strings.Contains(body, "No visitor has the user id u-nobody") || !strings.Contains(body, "among all 6 stored profiles") {
		t.Errorf("search for an unknown user: %d\n%s", resp.StatusCode, body)
	}
}

// TestInspectorSeesPendingEvents: the inspector shows what a visitor did a
// moment ago, before it is written to the store.
func TestInspectorSeesPendingEvents(t *testing.T) {
	t.Parallel()
	d := newDash(t, nil, nil)
	site := httptest.NewServer(d.p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		if r.URL.Path == "/buy" {
			v.Purchase(store.Item{ID: "moneyball", Price: 9})
		}
		fmt.Fprint(w, v.ID())
	})))
	defer site.Close()
	jar := newJar()
	c := &http.Client{Jar: jar}
	get := func(path string) string {
		req, _ := http.NewRequest("GET", site.URL+path, nil)
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	id := get("/")
	get("/")
	get("/buy")
	_, body := d.get(t, prefix+"visitors/"+id)
	if !strings.Contains(body, "moneyball×1") || !strings.Contains(body, `segments/customer">customer</a>`) {
		t.Errorf("inspector does not show the purchase just made:\n%s", body)
	}
}

// TestMergedProfiles: a visitor merged into a user's profile counts once,
// as the user, and the inspector links the two.
func TestMergedProfiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := memory.New(store.Limits{})
	seed(t, st, 6) // visitor 4 (index 3) is the customer u-3
	visitor := fmt.Sprintf("%032x", 4)
	user, err := store.UserProfileID("u-3")
	if err != nil {
		t.Fatal(err)
	}
	frozen, err := st.Apply(ctx, visitor, []store.Event{{ID: visitor + ":9", Type: store.TypeAlias, UserID: "u-3", Time: time.Now()}})
	if err != nil || frozen.MergedInto != user {
		t.Fatalf("alias: %+v %v", frozen, err)
	}
	if _, err := st.Apply(ctx, user, []store.Event{{ID: user + ":1", Type: store.TypeMerge, Merge: frozen, Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	d := newDash(t, st, nil)
	d.waitMeasured(t, "6") // five visitors and one user
	// The sizes follow once the profiles are classified (the backfill of
	// a store written before the dashboard's Personalizer started).
	customers := regexp.MustCompile(`(?s)segments/customer">customer</a>.*?<td class="n">2</td>`)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, body := d.get(t, prefix); customers.MatchString(body) {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("customers are not counted once each:\n%s", body)
		}
	}
	resp, _ := d.get(t, prefix+"visitors?by=user&q=u-3")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != prefix+"visitors/"+url.PathEscape(user) {
		t.Errorf("search by user id: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body := d.get(t, prefix+"visitors/"+url.PathEscape(user))
	for _, want := range []string{"<h1>User u-3</h1>", "Profile id", `id="aliases"><a class="mono" href="` + prefix + `visitors/` + visitor + `"`, "moneyball"} {
		if !strings.Contains(body, want) {
			t.Errorf("user profile lacks %q", want)
		}
	}
	_, body = d.get(t, prefix+"visitors/"+visitor)
	if !strings.Contains(body, `id="merged"`) || !strings.Contains(body, `href="`+prefix+`visitors/`+url.PathEscape(user)+`"`) {
		t.Errorf("merged visitor does not link to the user")
	}
	_, body = d.get(t, prefix+"segments/customer/export.ndjson")
	if !strings.Contains(body, `"visitorId":"`+user+`"`) || strings.Contains(body, visitor) {
		t.Errorf("export does not have the user instead of the merged visitor:\n%s", body)
	}
}

func TestExperimentsPage(t *testing.T) {
	t.Parallel()
	e := &experiment.Experiment{Key: "hero-test", Variants: []experiment.Variant{{Key: "control", Weight: 1}, {Key: "red-sox", Weight: 1}},
		Goals: []string{"purchase"}, Holdout: 0.1}
	src := admin.ExperimentFunc(func(ctx context.Context) ([]experiment.Report, error) {
		return []experiment.Report{{Experiment: e, Note: "since Monday", Counts: map[experiment.Cell]experiment.Counts{
			{Segment: "", Variant: "control"}:            {Visitors: 1000, Conversions: 50},
			{Segment: "", Variant: "red-sox"}:            {Visitors: 1000, Conversions: 70},
			{Segment: "red-sox-fan", Variant: "red-sox"}: {Visitors: 100, Conversions: 20},
			{Segment: "red-sox-fan", Variant: "control"}: {Visitors: 100, Conversions: 8},
		}}}, nil
	})
	d := newDash(t, nil, func(c *admin.Config) { c.Experiments = src })
	_, body := d.get(t, prefix+"experiments")
	want := experiment.Results(e, map[experiment.Cell]experiment.Counts{{Variant: "control"}: {Visitors: 1000, Conversions: 50}, {Variant: "red-sox"}: {Visitors: 1000, Conversions: 70}})
	for _, s := range []string{
		`id="experiment-hero-test"`, "since Monday", "<code>purchase</code>", "holdout 10.0%",
		"all visitors", "red-sox-fan", "5.0%", "7.0%", "20.0%",
		fmt.Sprintf("%.1f%%", want[1].ProbBeatsControl*100), fmt.Sprintf("%.1f%% – %.1f%%", want[1].Lo*100, want[1].Hi*100),
		"<svg ", "all visitors / red-sox: 7.0%", "$holdout",
	} {
		if !strings.Contains(body, s) {
			t.Errorf("experiments page lacks %q", s)
		}
	}

	failing := newDash(t, nil, func(c *admin.Config) {
		c.Experiments = admin.ExperimentFunc(func(context.Context) ([]experiment.Report, error) {
			return nil, errors.New("events table unreachable")
		})
	})
	_, body = failing.get(t, prefix+"experiments")
	if !strings.Contains(body, "The experiment source failed: events table unreachable") {
		t.Errorf("source error not shown")
	}
	// A source that reads a file shows how it was loaded, and why the
	// last reload failed.
	filed := newDash(t, nil, func(c *admin.Config) {
		c.Experiments = fileSource{src, rules.Status{Source: "slots.json", Loaded: time.Now().Add(-time.Hour),
			Attempted: time.Now(), Err: errors.New(`slots.json:3:9: /slots/0/name: want a string, not a number <b>`)}}
	})
	_, body = filed.get(t, prefix+"experiments")
	for _, s := range []string{`id="experiments-file"`, "<code>slots.json</code>", "failed; the site kept the experiments loaded before",
		`id="experiments-reload-errors">slots.json:3:9: /slots/0/name: want a string, not a number &lt;b&gt;</pre>`, `id="experiment-hero-test"`} {
		if !strings.Contains(body, s) {
			t.Errorf("experiments page of a file source lacks %q", s)
		}
	}
	if _, body = d.get(t, prefix+"experiments"); strings.Contains(body, `id="experiments-file"`) {
		t.Error("a source without a file shows a file")
	}
	none := newDash(t, nil, nil)
	_, body = none.get(t, prefix+"experiments")
	if !strings.Contains(body, "No experiment source is configured") {
		t.Errorf("missing source not explained")
	}
}

func TestRulesPage(t *testing.T) {
	t.Parallel()
	d := newDash(t, nil, nil)
	_, body := d.get(t, prefix+"rules")
	for _, want := range []string{"defined in Go (no file)", `segments/customer">customer</a>`, "purchases.count &gt;= 1",
		"categories[red-sox] &gt;= 2", "lifecycle", "has bought something"} {
		if !strings.Contains(body, want) {
			t.Errorf("rules page lacks %q", want)
		}
	}
}

// TestRulesFile: an engine loaded from a file shows the file, when it was
// loaded, and why the last reload failed.
func TestRulesFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "segments.json")
	good := `{"segments": [{"name": "pricing-curious", "description": "visited the pricing page", "priority": 5,
	  "condition": {"pages./pricing": {"$gte": 2}}}]}`
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := rules.NewEngine()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ReloadFile(path); err != nil {
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
	page := func() string {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", prefix+"rules", nil))
		return w.Body.String()
	}
	body := page()
	for _, want := range []string{"<code>" + path + "</code>, a file on disk", "succeeded", "pricing-curious", "visited the pricing page",
		"pages./pricing $gte 2", `id="rules-file"`, "&#34;$gte&#34;: 2"} {
		if !strings.Contains(body, want) {
			t.Errorf("rules page lacks %q", want)
		}
	}
	if err := os.WriteFile(path, []byte(`{"segments": [{"name": "broken", "condition": {"visits": {"$bogus": 1}}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.ReloadFile(path); err == nil {
		t.Fatal("a bad file reloaded")
	}
	body = page()
	for _, want := range []string{"failed; the engine kept the set loaded before", `id="reload-errors"`, "$bogus", "pricing-curious",
		"the engine runs it still, since the newer version failed to load"} {
		if !strings.Contains(body, want) {
			t.Errorf("rules page after a failed reload lacks %q", want)
		}
	}
}

// observed stands for a Personalizer that reports changes to the one
// Observer registered with it.
type observed struct{ middleware.Observer }

func (o *observed) Observe(x middleware.Observer) { o.Observer = x }

func TestWebhooksPage(t *testing.T) {
	t.Parallel()
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }))
	defer rc.Close()
	src := new(observed)
	wh, err := webhook.New(webhook.Config{Personalizer: src, URL: rc.URL + "/hook?token=sekrit", Secret: "k", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	src.SegmentChange(middleware.SegmentChange{VisitorID: fmt.Sprintf("%032x", 7), Entered: []string{"customer"}, Time: time.Now()})
	if err := wh.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := newDash(t, nil, func(c *admin.Config) { c.Webhooks = wh })
	_, body := d.get(t, prefix+"webhooks")
	for _, want := range []string{"<code>" + rc.URL + "</code>", "segment.entered", `segments/customer">customer</a>`,
		"HTTP 410", ">failed<", fmt.Sprintf("%032x", 7)} {
		if !strings.Contains(body, want) {
			t.Errorf("webhooks page lacks %q", want)
		}
	}
	if strings.Contains(body, "sekrit") {
		t.Error("webhooks page shows the URL's token")
	}
	none := newDash(t, nil, nil)
	_, body = none.get(t, prefix+"webhooks")
	if !strings.Contains(body, "Webhooks are not configured") {
		t.Error("missing webhooks not explained")
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	t.Parallel()
	d := newDash(t, nil, func(c *admin.Config) { c.Prefix = "/ops/tailor" })
	resp, body := d.get(t, "/ops/tailor/")
	if resp.StatusCode != 200 || !strings.Contains(body, `href="/ops/tailor/rules"`) {
		t.Errorf("custom prefix: %d", resp.StatusCode)
	}
	resp, _ = d.get(t, "/ops/tailor/nothing")
	if resp.StatusCode != 404 {
		t.Errorf("unknown page: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", d.srv.URL+"/ops/tailor/rules", nil)
	req.SetBasicAuth("admin", "hunter2")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", r.StatusCode)
	}
	// The handler ignores paths outside its prefix, however it is mounted.
	w := httptest.NewRecorder()
	rq := httptest.NewRequest("GET", "/elsewhere", nil)
	rq.SetBasicAuth("admin", "hunter2")
	d.h.ServeHTTP(w, rq)
	if w.Code != 404 {
		t.Errorf("outside the prefix: %d", w.Code)
	}
}

type fileSource struct {
	admin.ExperimentFunc
	st rules.Status
}

func (f fileSource) FileStatus() rules.Status { return f.st }
