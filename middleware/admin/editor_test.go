package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/admin"
	"github.com/tailorhq/tailor/middleware/definitions"
	"github.com/tailorhq/tailor/middleware/slots"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

const filesSegments = `{"segments": [
  {"name": "customer", "description": "has bought something", "priority": 40, "rule": {"purchased": {"min": 1}}},
  {"name": "returning", "priority": 20, "rule": {"visits": {"min": 2}}}
]}`

const filesSlots = `{"slots": [{"name": "hero", "variants": [
  {"key": "thanks", "segment": "customer", "priority": 10, "fields": {"title": "Thank you"}}
], "default": {"fields": {"title": "Welcome"}}}]}`

// editorDash is a dashboard with a real definitions.Definitions over a
// memory store, an editor "ed" and a viewer "vi".
type editorDash struct {
	st   store.Store
	p    *middleware.Personalizer
	defs *definitions.Definitions
	segs *rules.Engine
	h    *admin.Handler
	srv  *httptest.Server
}

func newEditorDash(t *testing.T, mod func(*admin.Config)) *editorDash {
	t.Helper()
	st := memory.New(store.Limits{})
	segs := &rules.Engine{}
	if err := segs.Reload([]byte(filesSegments)); err != nil {
		t.Fatal(err)
	}
	sl := &slots.Engine{}
	if err := sl.Reload([]byte(filesSlots), slots.EngineSegments(segs)); err != nil {
		t.Fatal(err)
	}
	defs, err := definitions.Open(context.Background(), definitions.Config{Store: st, Segments: segs, Slots: sl,
		Files: definitions.Content{Segments: filesSegments, Slots: filesSlots}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { defs.Close() })
	p, err := middleware.New(middleware.Config{Keys: []middleware.KeyPair{keys}, Store: st, Engine: segs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	cfg := admin.Config{Personalizer: p, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), SampleInterval: time.Hour, Definitions: defs,
		Users: []admin.User{{Name: "ed", Password: "ed-pw", Role: admin.Editor}, {Name: "vi", Password: "vi-pw", Role: admin.Viewer}}}
	if mod != nil {
		mod(&cfg)
	}
	h, err := admin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	mux := http.NewServeMux()
	mux.Handle(h.Prefix(), h)
	d := &editorDash{st: st, p: p, defs: defs, segs: segs, h: h}
	d.srv = httptest.NewServer(mux)
	t.Cleanup(d.srv.Close)
	return d
}

// testWriter logs to the test what the dashboard logs: a page that
// cannot render says why.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// do sends a request as user (password user+"-pw"), with the headers a
// browser sends for a same-origin form, unless hdr overrides them.
func (d *editorDash) do(t *testing.T, method, path, user string, form url.Values, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, d.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		req.SetBasicAuth(user, user+"-pw")
	}
	if method == "POST" {
		req.Header.Set("Origin", d.srv.URL)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := noRedirect.Do(req)
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

func (d *editorDash) draft(t *testing.T) definitions.Draft {
	t.Helper()
	dr, err := d.defs.Draft(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dr
}

// pricingForm is the form of "visited /pricing twice this week".
func pricingForm() url.Values {
	return url.Values{"mode": {"form"}, "name": {"pricing-curious"}, "description": {"visited /pricing twice this week"},
		"priority": {"50"}, "kind": {"pageVisited"},
		"arg.pageVisited.path": {"/pricing"}, "arg.pageVisited.min": {"2"}, "arg.pageVisited.within": {"7d"},
		// Fields of the kinds not chosen are ignored.
		"arg.recency.within": {"not a duration"}}
}

func TestEditorFormToPublishAndRestore(t *testing.T) {
	t.Parallel()
	d := newEditorDash(t, nil)
	resp, body := d.do(t, "GET", prefix+"definitions", "ed", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `data-name="customer"`) || !strings.Contains(body, `id="new-segment"`) {
		t.Fatalf("index: %d\n%s", resp.StatusCode, body)
	}
	// The form builds the rule; saving puts it in the draft.
	resp, body = d.do(t, "POST", prefix+"definitions/segments/new", "ed", pricingForm(), nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != prefix+"definitions/segments/pricing-curious?done=saved" {
		t.Fatalf("save: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	dr := d.draft(t)
	set, err := rules.Parse([]byte(dr.Content.Segments))
	if err != nil {
		t.Fatalf("the draft does not parse: %v\n%s", err, dr.Content.Segments)
	}
	if set.Len() != 3 || dr.By != "ed" || dr.Base != 0 {
		t.Errorf("draft: %d segments, by %q, base %d", set.Len(), dr.By, dr.Base)
	}
	if !strings.Contains(compactJSON(t, dr.Content.Segments), `"rule":{"pageVisited":{"path":"/pricing","min":2,"within":"7d"}}`) {
		t.Errorf("the rule built: %s", dr.Content.Segments)
	}
	// The edit page fills the form back from the draft.
	_, body = d.do(t, "GET", prefix+"definitions/segments/pricing-curious", "ed", nil, nil)
	for _, want := range []string{`id="arg-pageVisited-path" name="arg.pageVisited.path" value="/pricing"`, `<option value="pageVisited" selected>`, `id="seg-priority" name="priority" value="50"`} {
		if !strings.Contains(body, want) {
			t.Errorf("edit page lacks %s", want)
		}
	}
	// Nothing is served before publishing.
	if len(d.segs.Segments()) != 2 {
		t.Fatalf("the engine changed before publishing")
	}
	// Publishing needs a note.
	resp, body = d.do(t, "POST", prefix+"definitions/publish", "ed", url.Values{"base": {"0"}}, nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Say why in a note") {
		t.Errorf("publish without note: %d", resp.StatusCode)
	}
	_, body = d.do(t, "GET", prefix+"definitions/publish", "ed", nil, nil)
	if !strings.Contains(body, `<li class="added">segment <code>pricing-curious</code> added</li>`) {
		t.Errorf("the publish page does not show the diff:\n%s", body)
	}
	resp, body = d.do(t, "POST", prefix+"definitions/publish", "ed", url.Values{"base": {"0"}, "note": {"pricing campaign"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("publish: %d\n%s", resp.StatusCode, body)
	}
	if len(d.segs.Segments()) != 3 {
		t.Errorf("the engine serves %d segments after publishing", len(d.segs.Segments()))
	}
	hist, err := d.defs.History(context.Background())
	if err != nil || len(hist) != 1 || hist[0].By != "ed" || hist[0].Note != "pricing campaign" || hist[0].Action != definitions.ActionPublish {
		t.Fatalf("history: %+v, %v", hist, err)
	}
	_, body = d.do(t, "GET", prefix+"definitions/versions", "vi", nil, nil)
	if !strings.Contains(body, `<td class="by">ed</td>`) || !strings.Contains(body, `<td class="note">pricing campaign</td>`) {
		t.Errorf("versions page:\n%s", body)
	}
	if strings.Contains(body, `id="restore-0"`) {
		t.Errorf("a viewer sees a restore button")
	}
	// Restore the files (version 0), as version 2.
	resp, body = d.do(t, "POST", prefix+"definitions/versions/0/restore", "ed", url.Values{"note": {"back to files"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("restore: %d\n%s", resp.StatusCode, body)
	}
	hist, _ = d.defs.History(context.Background())
	if len(hist) != 2 || hist[0].Action != definitions.ActionRestore || hist[0].From != 0 || hist[0].By != "ed" || hist[0].Note != "back to files" {
		t.Errorf("history after restore: %+v", hist)
	}
	if len(d.segs.Segments()) != 2 {
		t.Errorf("the engine serves %d segments after the restore", len(d.segs.Segments()))
	}
	_, body = d.do(t, "GET", prefix+"definitions/versions", "ed", nil, nil)
	if !strings.Contains(body, `restore of version 0`) || !strings.Contains(body, `id="restore-1"`) {
		t.Errorf("versions after restore:\n%s", body)
	}
}

func compactJSON(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestEditorConflict(t *testing.T) {
	t.Parallel()
	d := newEditorDash(t, nil)
	if resp, body := d.do(t, "POST", prefix+"definitions/segments/new", "ed", pricingForm(), nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", resp.StatusCode, body)
	}
	// Someone publishes meanwhile, from elsewhere.
	_, c, _ := d.defs.Current(context.Background())
	if _, err := d.defs.Publish(context.Background(), c, 0, "other", "elsewhere"); err != nil {
		t.Fatal(err)
	}
	// Publishing other content leaves the shared draft, on its base 0.
	if dr := d.draft(t); dr.Base != 0 || !strings.Contains(dr.Content.Segments, "pricing-curious") {
		t.Fatalf("draft after a publication of other content: %+v", dr)
	}
	resp, body := d.do(t, "POST", prefix+"definitions/publish", "ed", url.Values{"base": {"0"}, "note": {"mine"}}, nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, `id="conflict"`) || !strings.Contains(body, `id="discard-draft"`) || !strings.Contains(body, `id="rebase-draft"`) {
		t.Fatalf("conflict: %d\n%s", resp.StatusCode, body)
	}
	if hist, _ := d.defs.History(context.Background()); len(hist) != 1 {
		t.Errorf("a conflicting publish wrote a version: %+v", hist)
	}
	// The way out: keep the draft, based on the current version.
	if resp, _ := d.do(t, "POST", prefix+"definitions/draft/rebase", "ed", url.Values{}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("rebase: %d", resp.StatusCode)
	}
	if resp, body := d.do(t, "POST", prefix+"definitions/publish", "ed", url.Values{"base": {"1"}, "note": {"mine"}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("publish after rebase: %d\n%s", resp.StatusCode, body)
	}
	if len(d.segs.Segments()) != 3 {
		t.Errorf("engine: %d segments", len(d.segs.Segments()))
	}
}

func TestEditorRoles(t *testing.T) {
	t.Parallel()
	d := newEditorDash(t, nil)
	// A viewer sees the pages, without forms that change anything.
	for _, path := range []string{"definitions", "definitions/segments/customer", "definitions/publish", "definitions/versions",
		"definitions/slots/hero", "definitions/json?file=segments"} {
		resp, body := d.do(t, "GET", prefix+path, "vi", nil, nil)
		if resp.StatusCode != 200 {
			t.Errorf("viewer GET %s: %d", path, resp.StatusCode)
		}
		for _, bad := range []string{`id="save-form"`, `id="save-json"`, `id="publish-button"`, `class="delete`, `id="new-segment"`, `id="discard-draft"`, `id="save-file"`} {
			if strings.Contains(body, bad) {
				t.Errorf("viewer GET %s shows %s", path, bad)
			}
		}
		if !strings.Contains(body, `id="read-only"`) || !strings.Contains(body, `<span id="role">viewer</span>`) {
			t.Errorf("viewer GET %s does not say read-only", path)
		}
	}
	// A viewer's POSTs are refused and change nothing.
	before := d.draft(t)
	for _, path := range []string{"definitions/segments/new", "definitions/segments/customer/delete", "definitions/publish",
		"definitions/versions/0/restore", "definitions/draft/discard", "definitions/json"} {
		resp, body := d.do(t, "POST", prefix+path, "vi", pricingForm(), nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "viewers see the dashboard but cannot change anything") {
			t.Errorf("viewer POST %s: %d", path, resp.StatusCode)
		}
	}
	if after := d.draft(t); after.Content != before.Content {
		t.Errorf("a viewer changed the draft")
	}
	if hist, _ := d.defs.History(context.Background()); len(hist) != 0 {
		t.Errorf("a viewer published: %+v", hist)
	}
	// An editor's page has the forms.
	_, body := d.do(t, "GET", prefix+"definitions/segments/customer", "ed", nil, nil)
	if !strings.Contains(body, `id="save-form"`) || !strings.Contains(body, `<span id="role">editor</span>`) {
		t.Errorf("editor page without forms")
	}
}

func TestRolesOfAuthorizers(t *testing.T) {
	t.Parallel()
	p := newPersonalizer(t, memory.New(store.Limits{}))
	staff := func(r *http.Request) (string, admin.Role) {
		switch r.Header.Get("X-Staff") {
		case "boss":
			return "boss", admin.Editor
		case "intern":
			return "intern", admin.Viewer
		}
		return "", admin.NoRole
	}
	for _, tc := range []struct {
		name string
		cfg  admin.Config
		req  func(*http.Request)
		want string // the role shown, or "" for refused
	}{
		{"username is editor", admin.Config{Username: "a", Password: "b"}, func(r *http.Request) { r.SetBasicAuth("a", "b") }, "editor"},
		{"bearer is viewer", admin.Config{BearerToken: "t"}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer t") }, "viewer"},
		{"authorize is viewer", admin.Config{Authorize: func(*http.Request) bool { return true }}, func(*http.Request) {}, "viewer"},
		{"insecure is editor", admin.Config{Insecure: true}, func(*http.Request) {}, "editor"},
		{"RoleOf editor", admin.Config{RoleOf: staff}, func(r *http.Request) { r.Header.Set("X-Staff", "boss") }, "editor"},
		{"RoleOf viewer", admin.Config{RoleOf: staff}, func(r *http.Request) { r.Header.Set("X-Staff", "intern") }, "viewer"},
		{"RoleOf refuses", admin.Config{RoleOf: staff}, func(*http.Request) {}, ""},
		{"users wrong password", admin.Config{Users: []admin.User{{Name: "u", Password: "p", Role: admin.Viewer}}}, func(r *http.Request) { r.SetBasicAuth("u", "x") }, ""},
		{"users", admin.Config{Users: []admin.User{{Name: "u", Password: "p", Role: admin.Viewer}, {Name: "w", Password: "q", Role: admin.Editor}}},
			func(r *http.Request) { r.SetBasicAuth("w", "q") }, "editor"},
	} {
		tc.cfg.Personalizer, tc.cfg.Logger, tc.cfg.SampleInterval = p, quiet, time.Hour
		h, err := admin.New(tc.cfg)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		r := httptest.NewRequest("GET", prefix, nil)
		tc.req(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		h.Close()
		got := ""
		if w.Code == 200 {
			_, rest, _ := strings.Cut(w.Body.String(), `<span id="role">`)
			got, _, _ = strings.Cut(rest, "<")
		}
		if got != tc.want {
			t.Errorf("%s: role %q (status %d), want %q", tc.name, got, w.Code, tc.want)
		}
	}
	for _, cfg := range []admin.Config{
		{Personalizer: p, Users: []admin.User{{Name: "u", Role: admin.Viewer}}},
		{Personalizer: p, Users: []admin.User{{Name: "u", Password: "p"}}},
		{Personalizer: p, Username: "u", Password: "p", Users: []admin.User{{Name: "u", Password: "q", Role: admin.Viewer}}},
	} {
		if h, err := admin.New(cfg); err == nil {
			h.Close()
			t.Errorf("New(%+v): no error", cfg.Users)
		} else if !strings.Contains(err.Error(), "Config.Users[0]") {
			t.Errorf("New(%+v): %v", cfg.Users, err)
		}
	}
}

func TestEditorCrossSiteRefused(t *testing.T) {
	t.Parallel()
	d := newEditorDash(t, nil)
	before := d.draft(t)
	for _, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "", "Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "same-site", "Origin": ""},
	} {
		for _, path := range []string{"definitions/segments/new", "definitions/publish", "definitions/versions/0/restore", "definitions/draft/discard", "definitions/validate"} {
			resp, body := d.do(t, "POST", prefix+path, "ed", pricingForm(), hdr)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "came from another site") {
				t.Errorf("%v POST %s: %d", hdr, path, resp.StatusCode)
			}
		}
	}
	if after := d.draft(t); after.Content != before.Content || after.By != "" {
		t.Errorf("a cross-site POST changed the draft")
	}
	if hist, _ := d.defs.History(context.Background()); len(hist) != 0 {
		t.Errorf("a cross-site POST published: %+v", hist)
	}
	// The same request from the dashboard's own page works, and so does
	// one without the headers of a browser (a script).
	if resp, _ := d.do(t, "POST", prefix+"definitions/segments/new", "ed", pricingForm(), nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin POST: %d", resp.StatusCode)
	}
	if resp, _ := d.do(t, "POST", prefix+"definitions/draft/discard", "ed", url.Values{}, map[string]string{"Origin": "", "Sec-Fetch-Site": ""}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("POST without browser headers: %d", resp.StatusCode)
	}
	// GETs change nothing, whatever their origin: the state-changing
	// routes have no GET.
	if _, err := d.defs.Publish(context.Background(), d.draft(t).Content, 0, "ed", "x"); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"definitions/draft/discard", "definitions/versions/0/restore", "definitions/segments/customer/delete"} {
		resp, _ := d.do(t, "GET", prefix+path, "ed", nil, map[string]string{"Sec-Fetch-Site": "cross-site"})
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	if hist, _ := d.defs.History(context.Background()); len(hist) != 1 {
		t.Errorf("a GET restored: %+v", hist)
	}
}

type problemJSON struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	Path   string `json:"path"`
	Msg    string `json:"msg"`
}

func TestEditorValidate(t *testing.T) {
	t.Parallel()
	d := newEditorDash(t, nil)
	validate := func(form url.Values) []problemJSON {
		t.Helper()
		resp, body := d.do(t, "POST", prefix+"definitions/validate", "ed", form, nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("validate: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var ps []problemJSON
		if err := json.Unmarshal([]byte(body), &ps); err != nil {
			t.Fatal(err)
		}
		return ps
	}
	// A segment's problems are placed in its own text.
	seg := "{\n  \"name\": \"pricing\",\n  \"rule\": {\"pageVisited\": {\"path\": \"/pricing\", \"within\": \"7days\"}}\n}"
	ps := validate(url.Values{"file": {"segment"}, "text": {seg}})
	if len(ps) != 1 || ps[0].File != "segment" || ps[0].Line != 3 || ps[0].Column != 58 || !strings.HasSuffix(ps[0].Path, "/rule/pageVisited/within") {
		t.Errorf("segment problems: %+v", ps)
	}
	// A syntax error too.
	ps = validate(url.Values{"file": {"segment"}, "name": {"customer"}, "text": {"{\n  \"name\": \"customer\",\n  \"rule\": {\"purchased\": {\"min\": 1}\n}"}})
	if len(ps) == 0 || ps[0].File != "segment" || ps[0].Line < 1 || ps[0].Line > 4 {
		t.Errorf("syntax problems: %+v", ps)
	}
	// A whole file: positions in it.
	ps = validate(url.Values{"file": {"segments"}, "text": {"{\"segments\": [\n  {\"name\": \"a\", \"rule\": {\"nope\": {}}}\n]}"}})
	if len(ps) != 1 || ps[0].File != "segments.json" || ps[0].Line != 2 || ps[0].Column == 0 {
		t.Errorf("file problems: %+v", ps)
	}
	// Slots that name an unknown segment.
	ps = validate(url.Values{"file": {"slots"}, "text": {`{"slots": [{"name": "x", "variants": [{"key": "k", "segment": "nobody"}], "default": {"fields": {}}}]}`}})
	if len(ps) != 1 || ps[0].File != "slots.json" || !strings.Contains(ps[0].Msg, "nobody") {
		t.Errorf("slots problems: %+v", ps)
	}
	// A good text has none: [] (not null).
	resp, body := d.do(t, "POST", prefix+"definitions/validate", "ed", url.Values{"file": {"segment"}, "text": {`{"name": "x", "rule": {"visits": {"min": 3}}}`}}, nil)
	if strings.TrimSpace(body) != "[]" {
		t.Errorf("good text: %d %s", resp.StatusCode, body)
	}
}

// TestEditorJSONWithoutScript: saving bad JSON shows the problems at their
// line and column, with the line and a caret, and saves nothing.
func TestEditorJSONWithoutScript(t *testing.T) {
	t.Parallel()
	d := newEditorDash(t, nil)
	before := d.draft(t)
	seg := "{\n  \"name\": \"customer\",\n  \"rule\": {\"purchased\": {\"min\": \"one\"}}\n}"
	resp, body := d.do(t, "POST", prefix+"definitions/segments/customer", "ed", url.Values{"mode": {"json"}, "json": {seg}}, nil)
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("bad JSON saved: %d", resp.StatusCode)
	}
	for _, want := range []string{`id="refused"`, `segment line 3, column 33`, `<code>/rule/purchased/min</code>`, "needs an integer",
		`<pre class="caret">  &#34;rule&#34;: {&#34;purchased&#34;: {&#34;min&#34;: &#34;one&#34;}}` + "\n" + strings.Repeat(" ", 32) + "^</pre>"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q\n%s", want, body)
		}
	}
	if d.draft(t).Content != before.Content {
		t.Errorf("a bad segment was saved")
	}
	// The whole file too.
	resp, body = d.do(t, "POST", prefix+"definitions/json", "ed", url.Values{"file": {"segments"}, "text": {"{\"segments\": [\n  {\"name\": \"a\",, }\n]}"}}, nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "segments.json line 2") {
		t.Errorf("bad file: %d\n%s", resp.StatusCode, body)
	}
	// A good one is saved as it is.
	text := "{\"segments\": [{\"name\": \"customer\", \"rule\": {\"visits\": {\"min\": 1}}}]}"
	if resp, body := d.do(t, "POST", prefix+"definitions/json", "ed", url.Values{"file": {"segments"}, "text": {text}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("good file: %d\n%s", resp.StatusCode, body)
	}
	if got := d.draft(t).Content.Segments; got != text {
		t.Errorf("saved %q, want %q", got, text)
	}
	// One without the segment the slots name is refused, with why.
	resp, body = d.do(t, "POST", prefix+"definitions/json", "ed", url.Values{"file": {"segments"}, "text": {`{"segments": [{"name": "x", "rule": {"visits": {"min": 1}}}]}`}}, nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "slots.json line") || !strings.Contains(body, "customer") {
		t.Errorf("a file that breaks the slots: %d", resp.StatusCode)
	}
}

func TestEditorCloneDeleteAndVariants(t *testing.T) {
	t.Parallel()
	d := newEditorDash(t, nil)
	_, body := d.do(t, "GET", prefix+"definitions/segments/new?from=returning", "ed", nil, nil)
	if !strings.Contains(body, `id="seg-name" name="name" value="returning-copy"`) {
		t.Fatalf("clone form:\n%s", body)
	}
	f := url.Values{"mode": {"form"}, "name": {"returning-copy"}, "kind": {"visits"}, "arg.visits.min": {"3"}}
	if resp, body := d.do(t, "POST", prefix+"definitions/segments/new", "ed", f, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("clone save: %d\n%s", resp.StatusCode, body)
	}
	// Deleting a segment that a slot variant names is refused, with why.
	resp, body := d.do(t, "POST", prefix+"definitions/segments/customer/delete", "ed", url.Values{}, nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "customer") || !strings.Contains(body, "slots.json") {
		t.Errorf("delete of a used segment: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := d.do(t, "POST", prefix+"definitions/segments/returning-copy/delete", "ed", url.Values{}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("delete: %d", resp.StatusCode)
	}
	set, err := rules.Parse([]byte(d.draft(t).Content.Segments))
	if err != nil || set.Len() != 2 {
		t.Fatalf("after delete: %v", err)
	}
	// Variants: a new one, a bad one, a clone, a deletion.
	vf := url.Values{"key": {"back"}, "segment": {"returning"}, "priority": {"5"}, "fields": {`{"title": "Welcome back"}`}}
	if resp, body := d.do(t, "POST", prefix+"definitions/slots/hero/variants/new", "ed", vf, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("new variant: %d\n%s", resp.StatusCode, body)
	}
	vf.Set("segment", "nobody")
	resp, body = d.do(t, "POST", prefix+"definitions/slots/hero/variants/back", "ed", vf, nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "nobody") {
		t.Errorf("variant of an unknown segment: %d", resp.StatusCode)
	}
	vf.Set("segment", "returning")
	vf.Set("fields", `{"title": `)
	resp, body = d.do(t, "POST", prefix+"definitions/slots/hero/variants/back", "ed", vf, nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "fields: not valid JSON") {
		t.Errorf("variant with bad fields: %d\n%s", resp.StatusCode, body)
	}
	_, body = d.do(t, "GET", prefix+"definitions/slots/hero/variants/new?from=back", "ed", nil, nil)
	if !strings.Contains(body, `id="variant-key" name="key" value="back-copy"`) {
		t.Errorf("variant clone form:\n%s", body)
	}
	if resp, _ := d.do(t, "POST", prefix+"definitions/slots/hero/variants/thanks/delete", "ed", url.Values{}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("variant delete: %d", resp.StatusCode)
	}
	sl, err := slots.Parse([]byte(d.draft(t).Content.Slots))
	if err != nil {
		t.Fatal(err)
	}
	hero, _ := sl.Slot("hero")
	if len(hero.Variants) != 1 || hero.Variants[0].Key != "back" {
		t.Errorf("variants: %+v", hero.Variants)
	}
}

// browserUA is a browser's User-Agent: the site does not track bots.
const browserUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"

func TestEditorTestOnVisitor(t *testing.T) {
	t.Parallel()
	d := newEditorDash(t, nil)
	now := time.Now()
	id := fmt.Sprintf("%032x", 7)
	evs := []store.Event{
		{ID: id + ":1", Type: store.TypePage, Path: "/pricing", Time: now.Add(-48 * time.Hour), NewVisit: true},
		{ID: id + ":2", Type: store.TypePage, Path: "/pricing", Time: now.Add(-time.Hour)},
		{ID: id + ":3", Type: store.TypeIdentify, UserID: "u-7", Time: now.Add(-time.Hour)},
	}
	if _, err := d.st.Apply(context.Background(), id, evs); err != nil {
		t.Fatal(err)
	}
	if resp, body := d.do(t, "POST", prefix+"definitions/segments/new", "ed", pricingForm(), nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", resp.StatusCode, body)
	}
	resp, body := d.do(t, "GET", prefix+"definitions/test?by=visitor&segment=pricing-curious&who="+id, "vi", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `data-segment="pricing-curious"`) {
		t.Fatalf("test: %d\n%s", resp.StatusCode, body)
	}
	draft, published, _ := strings.Cut(body, "The version the site serves")
	if !strings.Contains(draft, "<strong>match</strong>") || !strings.Contains(draft, `<span class="verdict">pass</span>`) || !strings.Contains(draft, "pages[/pricing]") {
		t.Errorf("the draft's explanation:\n%s", draft)
	}
	if !strings.Contains(published, "No such segment.") {
		t.Errorf("the published version has no pricing-curious:\n%s", published)
	}
	// By user id.
	resp, body = d.do(t, "GET", prefix+"definitions/test?by=user&segment=pricing-curious&who=u-7", "vi", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, id) || !strings.Contains(body, "<strong>match</strong>") {
		t.Errorf("by user: %d\n%s", resp.StatusCode, body)
	}
	// "me" without a visitor cookie says what to do.
	resp, body = d.do(t, "GET", prefix+"definitions/test?by=me", "vi", nil, nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "no visitor cookie") {
		t.Errorf("me: %d\n%s", resp.StatusCode, body)
	}
	// "me": the visitor cookie the dashboard user's browser holds for the
	// site, a visitor who saw /pricing three times.
	site := d.p.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	var cookie string
	for range 3 {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/pricing", nil)
		r.Header.Set("User-Agent", browserUA)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		site.ServeHTTP(w, r)
		if cs := w.Result().Cookies(); len(cs) > 0 {
			cookie = cs[0].Name + "=" + cs[0].Value
		}
	}
	if err := d.p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, body = d.do(t, "GET", prefix+"definitions/test?by=me&segment=pricing-curious", "vi", nil, map[string]string{"Cookie": cookie, "User-Agent": browserUA})
	if resp.StatusCode != 200 || !strings.Contains(body, "<strong>match</strong>") {
		t.Errorf("me with a cookie: %d\n%s", resp.StatusCode, body)
	}
	resp, body = d.do(t, "GET", prefix+"definitions/test?by=visitor&who=nobody", "vi", nil, nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `id="test-error"`) {
		t.Errorf("unknown visitor: %d", resp.StatusCode)
	}
}

func TestEditorEscapes(t *testing.T) {
	t.Parallel()
	d := newEditorDash(t, nil)
	f := pricingForm()
	f.Set("name", `<script>alert(1)</script>`)
	f.Set("description", `<img src=x onerror=alert(2)>`)
	if resp, body := d.do(t, "POST", prefix+"definitions/segments/new", "ed", f, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", resp.StatusCode, body)
	}
	if resp, body := d.do(t, "POST", prefix+"definitions/publish", "ed", url.Values{"base": {"0"}, "note": {`</td><script>alert(3)</script>`}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("publish: %d\n%s", resp.StatusCode, body)
	}
	for _, path := range []string{"definitions", "definitions/versions", "definitions/versions/1", "definitions/segments/" + url.PathEscape(`<script>alert(1)</script>`),
		"definitions/test?who=x&segment=" + url.QueryEscape("<script>")} {
		_, body := d.do(t, "GET", prefix+path, "ed", nil, nil)
		for _, bad := range []string{"<script>alert", "<img src=x", "</td><script>"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s: %q unescaped", path, bad)
			}
		}
		// The editor's own script is the only one, from the dashboard.
		if strings.Count(body, "<script") != strings.Count(body, `<script src="`+prefix+`editor.js" defer></script>`) {
			t.Errorf("%s: a script other than editor.js", path)
		}
	}
	resp, js := d.do(t, "GET", prefix+"editor.js", "ed", nil, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") || strings.Contains(js, "http") {
		t.Errorf("editor.js: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP: %s", csp)
	}
}

func TestEditorFilesMode(t *testing.T) {
	t.Parallel()
	d := newEditorDash(t, func(c *admin.Config) { c.Definitions = nil })
	resp, body := d.do(t, "GET", prefix+"definitions", "ed", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `id="files-mode"`) {
		t.Errorf("files mode: %d\n%s", resp.StatusCode, body)
	}
	resp, _ = d.do(t, "POST", prefix+"definitions/publish", "ed", url.Values{"note": {"x"}}, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("publish in files mode: %d", resp.StatusCode)
	}
}

func TestEditorBacktest(t *testing.T) {
	t.Parallel()
	d := newEditorDash(t, nil)
	now := time.Now()
	for i := range 30 {
		id := fmt.Sprintf("%032x", i+1)
		evs := []store.Event{{ID: id + ":1", Type: store.TypePage, Path: "/", Time: now.Add(-time.Hour), NewVisit: true}}
		if i%3 == 0 { // 10 visited /pricing twice this week
			evs = append(evs,
				store.Event{ID: id + ":2", Type: store.TypePage, Path: "/pricing", Time: now.Add(-50 * time.Hour)},
				store.Event{ID: id + ":3", Type: store.TypePage, Path: "/pricing", Time: now.Add(-30 * time.Minute)})
		}
		if i%2 == 0 { // 15 customers, 5 of them pricing-curious
			evs = append(evs, store.Event{ID: id + ":4", Type: store.TypeTrack, Name: store.EventPurchase, Time: now.Add(-time.Hour),
				Items: []store.Item{{ID: "x", Price: 10}}})
		}
		if _, err := d.st.Apply(context.Background(), id, evs); err != nil {
			t.Fatal(err)
		}
	}
	if resp, body := d.do(t, "POST", prefix+"definitions/segments/new", "ed", pricingForm(), nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", resp.StatusCode, body)
	}
	_, body := d.do(t, "GET", prefix+"definitions/backtest?segment=pricing-curious", "ed", nil, nil)
	if !strings.Contains(body, `id="backtest-start"`) || !strings.Contains(body, `<option selected>pricing-curious</option>`) {
		t.Fatalf("backtest form:\n%s", body)
	}
	// A viewer cannot start one.
	if resp, _ := d.do(t, "POST", prefix+"definitions/backtest", "vi", url.Values{"segment": {"pricing-curious"}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer start: %d", resp.StatusCode)
	}
	resp, body := d.do(t, "POST", prefix+"definitions/backtest", "ed", url.Values{"segment": {"pricing-curious"}, "weeks": {"4"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d\n%s", resp.StatusCode, body)
	}
	page := resp.Header.Get("Location")
	id := strings.TrimPrefix(page, prefix+"definitions/backtest/")
	var p struct {
		Done, Total int64
		Running     bool
		Result      *struct{ Members, Scanned int64 }
		Error       string
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, body := d.do(t, "GET", prefix+"definitions/backtest/"+id+"/progress.json", "vi", nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("progress: %d %s", resp.StatusCode, body)
		}
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatal(err)
		}
		if !p.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backtest did not finish: %s", body)
		}
	}
	if p.Error != "" || p.Result == nil || p.Result.Members != 10 || p.Result.Scanned != 30 {
		t.Fatalf("progress: %+v %+v", p, p.Result)
	}
	resp, body = d.do(t, "GET", page, "vi", nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Refresh") != "" {
		t.Errorf("result page: %d, Refresh %q", resp.StatusCode, resp.Header.Get("Refresh"))
	}
	for _, want := range []string{`<span id="backtest-members">10</span>`, `id="backtest-finished"`, `<tr><td>customer</td><td class="n">15</td><td class="n">5</td></tr>`,
		`id="backtest-samples"`, `pages[/pricing]`, `id="backtest-history"`} {
		if !strings.Contains(body, want) {
			t.Errorf("result page lacks %s", want)
		}
	}
	if strings.Contains(body, `id="backtest-cancel"`) {
		t.Errorf("a finished backtest has a cancel button")
	}
	// The last backtest is shown on the form's page too.
	if _, body := d.do(t, "GET", prefix+"definitions/backtest", "ed", nil, nil); !strings.Contains(body, `<span id="backtest-members">10</span>`) {
		t.Errorf("the form page does not show the last backtest")
	}
	// Canceling a finished one changes nothing and says so.
	if resp, _ := d.do(t, "POST", prefix+"definitions/backtest/"+id+"/cancel", "ed", url.Values{}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("cancel: %d", resp.StatusCode)
	}
	if resp, _ := d.do(t, "GET", prefix+"definitions/backtest/nothing", "ed", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown backtest: %d", resp.StatusCode)
	}
}

func TestEditorBacktestCancel(t *testing.T) {
	t.Parallel()
	d := newEditorDash(t, func(c *admin.Config) { c.BacktestRate = 10 })
	for i := range 200 {
		id := fmt.Sprintf("%032x", i+1)
		if _, err := d.st.Apply(context.Background(), id, []store.Event{{ID: id + ":1", Type: store.TypePage, Path: "/", Time: time.Now(), NewVisit: true}}); err != nil {
			t.Fatal(err)
		}
	}
	resp, body := d.do(t, "POST", prefix+"definitions/backtest", "ed", url.Values{"segment": {"returning"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d\n%s", resp.StatusCode, body)
	}
	page := resp.Header.Get("Location")
	// A second one, while it runs, is refused with who runs it.
	if resp, body := d.do(t, "POST", prefix+"definitions/backtest", "ed", url.Values{"segment": {"customer"}}, nil); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "could not start") {
		t.Errorf("second start: %d", resp.StatusCode)
	}
	resp, body = d.do(t, "GET", page, "vi", nil, nil)
	if resp.Header.Get("Refresh") != "2" || !strings.Contains(body, `<progress id="backtest-progress" max="200"`) || !strings.Contains(body, `id="backtest-remaining"`) {
		t.Errorf("running page: Refresh %q\n%s", resp.Header.Get("Refresh"), body)
	}
	if strings.Contains(body, `id="backtest-cancel"`) {
		t.Errorf("a viewer sees the cancel button")
	}
	if _, body := d.do(t, "GET", page, "ed", nil, nil); !strings.Contains(body, `id="backtest-cancel"`) {
		t.Errorf("an editor has no cancel button")
	}
	if resp, _ := d.do(t, "POST", page+"/cancel", "ed", url.Values{}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel: %d", resp.StatusCode)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, body := d.do(t, "GET", page, "ed", nil, nil)
		if strings.Contains(body, `id="backtest-canceled"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not canceled:\n%s", body)
		}
	}
}
