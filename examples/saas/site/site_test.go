package site_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/examples/saas/site"
)

const (
	ua       = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"
	writeKey = "wk-test"
)

// open serves a new site on a test server, closed with the test.
func open(t *testing.T) *httptest.Server {
	t.Helper()
	s, err := site.Open(site.Config{DB: filepath.Join(t.TempDir(), "saas.db"), FlushInterval: 50 * time.Millisecond,
		AdminPassword: "secret", WriteKeys: []string{writeKey}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return srv
}

// A browser is an HTTP client with a cookie jar and a browser's
// User-Agent (tailor does not track clients it takes for bots).
type browser struct {
	t   *testing.T
	c   *http.Client
	url string
}

func newBrowser(t *testing.T, srv *httptest.Server) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, url: srv.URL, c: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

// do sends a request (a form if form is not nil) and returns the answer
// after redirects, with its body.
func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.url+path, body)
	req.Header.Set("User-Agent", ua)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.url)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	s, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(s)
}

// get returns the body of a page, which must answer 200.
func (b *browser) get(path string) string {
	b.t.Helper()
	resp, body := b.do("GET", path, nil)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("GET %s: %s\n%s", path, resp.Status, body)
	}
	return body
}

var tagRE = regexp.MustCompile(`<[^>]*>`)
var variantRE = regexp.MustCompile(`data-variant="([^"]*)"`)

// variant returns the variant of the slot shown in body, "" if the slot
// is not on the page.
func variant(body, slot string) string {
	for _, tag := range tagRE.FindAllString(body, -1) {
		if strings.Contains(tag, `data-slot="`+slot+`"`) {
			if m := variantRE.FindStringSubmatch(tag); m != nil {
				return m[1]
			}
		}
	}
	return ""
}

// api sends a Segment call to the collection endpoint with the write key,
// as a CRM or an email tool does, and checks it was accepted.
func api(t *testing.T, srv *httptest.Server, call, body string) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+"/_tailor/v1/"+call, strings.NewReader(body))
	req.SetBasicAuth(writeKey, "")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"accepted":1`) {
		t.Fatalf("%s %s: %s %s", call, body, resp.Status, b)
	}
}

// TestTalkToSales: the call to action is the trial until the visitor has
// viewed /pricing twice (this week); from the next page on it is the call
// with sales, on the home page and the pricing page.
func TestTalkToSales(t *testing.T) {
	srv := open(t)
	b := newBrowser(t, srv)
	if got := variant(b.get("/"), "cta"); got != "trial" {
		t.Fatalf("first visit: cta %q, want trial", got)
	}
	if got := variant(b.get("/pricing"), "cta"); got != "trial" {
		t.Fatalf("first view of /pricing: cta %q, want trial", got)
	}
	// The view being served is not counted yet: segments are classified
	// when the request starts.
	if got := variant(b.get("/pricing"), "cta"); got != "trial" {
		t.Fatalf("second view of /pricing: cta %q, want trial", got)
	}
	home := b.get("/")
	if got := variant(home, "cta"); got != "talk-to-sales" {
		t.Fatalf("after two views of /pricing: cta %q, want talk-to-sales", got)
	}
	if !strings.Contains(home, `href="/contact-sales"`) || !strings.Contains(home, `<span class="seg">pricing-curious</span>`) {
		t.Fatalf("home page: no link to /contact-sales or no segment pricing-curious in the footer:\n%s", home)
	}
	if got := variant(b.get("/pricing"), "cta"); got != "talk-to-sales" {
		t.Fatalf("pricing page: cta %q, want talk-to-sales", got)
	}

	// The offer's form records the request; a bad size is refused.
	if resp, body := b.do("POST", "/contact-sales", url.Values{"email": {"lin@example.com"}, "size": {"lots"}}); resp.StatusCode != 400 || !strings.Contains(body, "size") {
		t.Fatalf("bad size: %s %s", resp.Status, body)
	}
	resp, body := b.do("POST", "/contact-sales", url.Values{"email": {"lin@example.com"}, "size": {"11-50"}})
	if resp.StatusCode != 200 || !strings.Contains(body, `id="sent"`) {
		t.Fatalf("request a call: %s\n%s", resp.Status, body)
	}

	// Another visitor who viewed it once is not offered the call.
	other := newBrowser(t, srv)
	other.get("/pricing")
	if got := variant(other.get("/"), "cta"); got != "trial" {
		t.Fatalf("one view of /pricing: cta %q, want trial", got)
	}
}

// TestCommunityBanner: a visitor who signs in with X and follows @relayhq
// sees the community banner on every page; one who does not follow does
// not; a bad handle is refused with a message naming the field.
func TestCommunityBanner(t *testing.T) {
	srv := open(t)
	b := newBrowser(t, srv)
	if got := variant(b.get("/"), "community"); got != "" {
		t.Fatalf("anonymous visitor: community banner %q, want none", got)
	}
	resp, home := b.do("POST", "/signin/x", url.Values{"handle": {"@grace_h"}, "follows": {"on"}})
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/" {
		t.Fatalf("sign in with X: %s at %s", resp.Status, resp.Request.URL)
	}
	if !strings.Contains(home, `id="user">x:grace_h<`) {
		t.Fatalf("after sign-in, the header does not name user x:grace_h:\n%s", home)
	}
	for _, path := range []string{"/", "/pricing", "/customers/retail"} {
		if got := variant(b.get(path), "community"); got != "community" {
			t.Fatalf("follower on %s: community banner %q, want community", path, got)
		}
	}

	nf := newBrowser(t, srv)
	nf.do("POST", "/signin/x", url.Values{"handle": {"not_a_fan"}})
	if got := variant(nf.get("/"), "community"); got != "" {
		t.Fatalf("not a follower: community banner %q, want none", got)
	}
	for _, h := range []string{"", "has space", "waytoolonghandle_x", "<script>"} {
		if resp, body := nf.do("POST", "/signin/x", url.Values{"handle": {h}}); resp.StatusCode != 400 || !strings.Contains(body, "handle") {
			t.Errorf("handle %q: %s %s, want 400 naming the field", h, resp.Status, body)
		}
	}

	// Signing out: a new anonymous visitor, without the banner.
	b.do("POST", "/signout", url.Values{})
	if got := variant(b.get("/"), "community"); got != "" {
		t.Fatalf("after sign-out: community banner %q, want none", got)
	}
}

// TestCaseStudyOfTheirIndustry: the CRM pushes an opportunity with an
// identify call (write key); the user, once signed in, sees the case study
// of their industry, before or after the call; an opportunity of another
// industry sees the generic story, a lead who is not an opportunity the
// default; a call without the write key is refused.
func TestCaseStudyOfTheirIndustry(t *testing.T) {
	srv := open(t)
	api(t, srv, "identify", `{"userId": "ada@example.com", "traits": {"crm": {"stage": "opportunity"}, "industry": "fintech"}}`)
	b := newBrowser(t, srv)
	if got := variant(b.get("/"), "case-study"); got != "customers" {
		t.Fatalf("before sign-in: case study %q, want customers", got)
	}
	_, home := b.do("POST", "/signin", url.Values{"email": {"ada@example.com"}})
	if got := variant(home, "case-study"); got != "fintech" {
		t.Fatalf("opportunity in fintech: case study %q, want fintech", got)
	}
	if !strings.Contains(home, `href="/customers/fintech"`) || !strings.Contains(home, "Northwind Bank") {
		t.Fatalf("the fintech case study's teaser is missing:\n%s", home)
	}
	if story := b.get("/customers/fintech"); !strings.Contains(story, `data-industry="fintech"`) {
		t.Fatalf("/customers/fintech is not the fintech story:\n%s", story)
	}

	// Signed in first, the CRM's call comes after: the next page has it.
	c := newBrowser(t, srv)
	c.do("POST", "/signin", url.Values{"email": {"cy@example.com"}})
	if got := variant(c.get("/"), "case-study"); got != "customers" {
		t.Fatalf("a user unknown to the CRM: case study %q, want customers", got)
	}
	api(t, srv, "identify", `{"userId": "cy@example.com", "traits": {"crm": {"stage": "opportunity"}, "industry": "healthcare"}}`)
	if got := variant(c.get("/"), "case-study"); got != "healthcare" {
		t.Fatalf("opportunity in healthcare: case study %q, want healthcare", got)
	}

	api(t, srv, "identify", `{"userId": "max@example.com", "traits": {"crm": {"stage": "opportunity"}, "industry": "mining"}}`)
	api(t, srv, "identify", `{"userId": "lee@example.com", "traits": {"crm": {"stage": "lead"}, "industry": "retail"}}`)
	for user, want := range map[string]string{"max@example.com": "opportunity", "lee@example.com": "customers"} {
		u := newBrowser(t, srv)
		if _, home := u.do("POST", "/signin", url.Values{"email": {user}}); variant(home, "case-study") != want {
			t.Errorf("%s: case study %q, want %q", user, variant(home, "case-study"), want)
		}
	}

	req, _ := http.NewRequest("POST", srv.URL+"/_tailor/v1/identify", strings.NewReader(`{"userId": "eve@example.com", "traits": {"crm": {"stage": "opportunity"}}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("identify without write key: %s, want 401 or 403", resp.Status)
	}
}

// TestWebinar: a lead who clicks a newsletter's link (utm_medium=email)
// sees the webinar from the next page on; so does a user whose email tool
// reports an open; a send without an open does not make a lead engaged,
// and a browser cannot report an open itself.
func TestWebinar(t *testing.T) {
	srv := open(t)
	b := newBrowser(t, srv)
	if got := variant(b.get("/?utm_source=newsletter&utm_medium=email&utm_campaign=dec-digest"), "webinar"); got != "" {
		t.Fatalf("landing from the newsletter: webinar %q, want none yet", got)
	}
	if got := variant(b.get("/"), "webinar"); got != "webinar" {
		t.Fatalf("after a newsletter click: webinar %q, want webinar", got)
	}
	resp, body := b.do("POST", "/webinar", url.Values{"email": {"lin@example.com"}})
	if resp.StatusCode != 200 || !strings.Contains(body, `id="registered"`) {
		t.Fatalf("register: %s\n%s", resp.Status, body)
	}

	// The email tool reports sends and opens for users, with the write key.
	api(t, srv, "track", `{"userId": "ann@example.com", "event": "email_sent", "properties": {"campaign": "dec-digest"}}`)
	api(t, srv, "track", `{"userId": "bo@example.com", "event": "email_sent", "properties": {"campaign": "dec-digest"}}`)
	api(t, srv, "track", `{"userId": "bo@example.com", "event": "email_opened", "properties": {"campaign": "dec-digest"}}`)
	for user, want := range map[string]string{"ann@example.com": "", "bo@example.com": "webinar"} {
		u := newBrowser(t, srv)
		if _, home := u.do("POST", "/signin", url.Values{"email": {user}}); variant(home, "webinar") != want {
			t.Errorf("%s: webinar %q, want %q", user, variant(home, "webinar"), want)
		}
	}

	// A browser's own call (same origin, its cookie, no write key) may not
	// report an open.
	c := newBrowser(t, srv)
	c.get("/")
	c.get("/pricing") // back with its cookie: tracked
	req, _ := http.NewRequest("POST", srv.URL+"/_tailor/v1/track", strings.NewReader(`{"event": "email_opened", "properties": {"campaign": "dec-digest"}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", ua)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a browser's email_opened: %s, want 403", resp.Status)
	}
	if got := variant(c.get("/"), "webinar"); got != "" {
		t.Fatalf("after a refused email_opened: webinar %q, want none", got)
	}
}

// TestPages: every page answers with the layout, personalised pages are
// private, unknown paths and industries are 404 pages, the dashboard asks
// for its password, forms check their fields.
func TestPages(t *testing.T) {
	srv := open(t)
	b := newBrowser(t, srv)
	for _, path := range []string{"/", "/pricing", "/customers", "/customers/healthcare", "/community", "/webinar", "/contact-sales", "/signin/x"} {
		resp, body := b.do("GET", path, nil)
		if resp.StatusCode != 200 || !strings.Contains(body, "<title>") || !strings.Contains(body, "Personalised on the server by tailor") {
			t.Errorf("GET %s: %s, or no layout:\n%s", path, resp.Status, body)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "private" {
			t.Errorf("GET %s: Cache-Control %q, want private", path, cc)
		}
	}
	for _, path := range []string{"/nope", "/customers/mining"} {
		if resp, body := b.do("GET", path, nil); resp.StatusCode != 404 || !strings.Contains(body, "Not found") {
			t.Errorf("GET %s: %s, want the 404 page:\n%s", path, resp.Status, body)
		}
	}
	if resp, body := b.do("GET", "/style.css", nil); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !strings.Contains(body, ".cta") {
		t.Errorf("GET /style.css: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	if resp, _ := b.do("GET", "/_tailor/t.js", nil); resp.StatusCode != 200 {
		t.Errorf("GET /_tailor/t.js: %s", resp.Status)
	}
	if resp, _ := b.do("GET", "/_tailor/admin/", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("dashboard without password: %s, want 401", resp.Status)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/_tailor/admin/segments/pricing-curious", nil)
	req.SetBasicAuth("admin", "secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "viewed the pricing page twice this week") {
		t.Errorf("the dashboard's page of segment pricing-curious: %s\n%s", resp.Status, body)
	}
	for path, form := range map[string]url.Values{
		"/signin":  {"email": {"not an email"}},
		"/webinar": {"email": {""}},
	} {
		if resp, body := b.do("POST", path, form); resp.StatusCode != 400 || !strings.Contains(body, "email") {
			t.Errorf("POST %s %v: %s %s, want 400 naming the field", path, form, resp.Status, body)
		}
	}
}

// TestOpenErrors: a missing DB or password is an error naming the field.
func TestOpenErrors(t *testing.T) {
	for _, cfg := range []site.Config{{AdminPassword: "x"}, {DB: filepath.Join(t.TempDir(), "x.db")}} {
		if _, err := site.Open(cfg); err == nil || !strings.Contains(err.Error(), "Config.") {
			t.Errorf("Open(%+v): %v, want an error naming the field", cfg, err)
		}
	}
}
