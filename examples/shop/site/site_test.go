package site_test

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/examples/shop/site"
	"github.com/tailorhq/tailor/store"
)

const ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"

type browser struct {
	t   *testing.T
	c   *http.Client
	url string
}

func (b *browser) do(method, path string, form url.Values, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.url+path, body)
	req.Header.Set("User-Agent", ua)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	s, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(s)
}

var heroRE = regexp.MustCompile(`data-slot="hero" data-variant="([a-z-]+)"`)

func (b *browser) hero() string {
	b.t.Helper()
	_, body := b.do("GET", "/", nil)
	m := heroRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no hero in home page:\n%s", body)
	}
	return m[1]
}

func open(t *testing.T, db string) (*site.Site, *httptest.Server) {
	s, err := site.Open(site.Config{DB: db, FlushInterval: 50 * time.Millisecond, AdminPassword: "secret", WriteKeys: []string{"wk-test"}})
	if err != nil {
		t.Fatal(err)
	}
	return s, httptest.NewServer(s.Handler())
}

func TestShopJourney(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tailor.db")
	s, srv := open(t, db)
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, c: &http.Client{Jar: jar, CheckRedirect: nil}, url: srv.URL}

	if h := b.hero(); h != "welcome" {
		t.Fatalf("first visit: hero %q, want welcome", h)
	}
	b.do("GET", "/products/red-sox-banner", nil)
	if h := b.hero(); h != "welcome" {
		t.Fatalf("after one Red Sox product: hero %q, want welcome", h)
	}
	b.do("GET", "/products/red-sox-potato-head", nil)
	if h := b.hero(); h != "red-sox" {
		t.Fatalf("after two Red Sox products: hero %q, want red-sox", h)
	}
	if resp, _ := b.do("POST", "/cart", url.Values{"id": {"moneyball"}}); resp.StatusCode != 200 || resp.Request.URL.Path != "/cart" {
		t.Fatalf("add to cart: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	if _, body := b.do("GET", "/cart", nil); !strings.Contains(body, `data-cart-item="moneyball"`) {
		t.Fatalf("cart does not show moneyball:\n%s", body)
	}
	b.do("POST", "/checkout", url.Values{})
	if h := b.hero(); h != "thank-you" {
		t.Fatalf("after a purchase: hero %q, want thank-you", h)
	}

	_, js := b.do("GET", "/_tailor/me", nil, "Accept", "application/json")
	var me struct {
		ID       string
		Segments []string
		Profile  struct {
			Purchases struct{ Count int }
			Counts    map[string]int
		}
	}
	if err := json.Unmarshal([]byte(js), &me); err != nil {
		t.Fatalf("/_tailor/me JSON: %v\n%s", err, js)
	}
	if len(me.ID) != 32 || me.Profile.Purchases.Count != 1 || me.Profile.Counts["add_to_cart"] != 1 || !strings.Contains(strings.Join(me.Segments, ","), "customer") {
		t.Fatalf("/_tailor/me: %+v", me)
	}
	if resp, body := b.do("GET", "/_tailor/me", nil); !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, me.ID) {
		t.Fatalf("/_tailor/me HTML: %s", resp.Header.Get("Content-Type"))
	}

	// Restart on the same database: the visitor is still known.
	srv.Close()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2, srv2 := open(t, db)
	defer func() { srv2.Close(); s2.Close(context.Background()) }()
	u, _ := url.Parse(srv.URL)
	u2, _ := url.Parse(srv2.URL)
	jar.SetCookies(u2, jar.Cookies(u)) // same host, new port
	b.url = srv2.URL
	if h := b.hero(); h != "thank-you" {
		t.Fatalf("after a restart: hero %q, want thank-you", h)
	}
}

func TestShopPagesAndErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tailor.db")
	s, srv := open(t, db)
	defer func() { srv.Close(); s.Close(context.Background()) }()
	b := &browser{t: t, c: srv.Client(), url: srv.URL}
	_, body := b.do("GET", "/products", nil)
	for _, p := range site.Products {
		if !strings.Contains(body, `href="/products/`+p.ID+`"`) {
			t.Errorf("/products does not link %s", p.ID)
		}
	}
	if len(site.Products) < 12 || len(site.Categories) < 4 {
		t.Errorf("%d products in %d categories", len(site.Products), len(site.Categories))
	}
	if resp, _ := b.do("GET", "/products/no-such-thing", nil); resp.StatusCode != 404 {
		t.Errorf("unknown product: %d", resp.StatusCode)
	}
	if resp, body := b.do("POST", "/cart", url.Values{"id": {"nope"}}); resp.StatusCode != 400 || !strings.Contains(body, "id") {
		t.Errorf("bad cart id: %d %q", resp.StatusCode, body)
	}
	fi, err := os.Stat(db + ".keys")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("keys file: %v %v", fi, err)
	}
}

var slotRE = func(slot string) *regexp.Regexp {
	return regexp.MustCompile(`data-slot="` + slot + `" data-variant="([a-z0-9,-]*)"`)
}

// TestShopGroupLeverage: the seed story in the shop. The demo history has
// 80% of the buyers of Moneyball and a Red Sox banner buying the Mr.
// Potato Head; a visitor who buys those two is recommended it first.
func TestShopGroupLeverage(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tailor.db")
	s, srv := open(t, db)
	defer func() { srv.Close(); s.Close(context.Background()) }()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, c: &http.Client{Jar: jar}, url: srv.URL}

	_, body := b.do("GET", "/products/moneyball", nil)
	m := slotRE("also-bought").FindStringSubmatch(body)
	if m == nil || !strings.HasPrefix(m[1], "red-sox-banner") {
		t.Fatalf("also-bought on Moneyball: %v", m)
	}
	_, body = b.do("GET", "/", nil)
	if m := slotRE("recommended").FindStringSubmatch(body); m == nil || len(strings.Split(m[1], ",")) != 4 {
		t.Fatalf("recommended for a new visitor: %v", m)
	}
	for _, id := range []string{"moneyball", "red-sox-banner"} {
		b.do("POST", "/cart", url.Values{"id": {id}})
	}
	b.do("POST", "/checkout", url.Values{})
	_, body = b.do("GET", "/", nil)
	m = slotRE("recommended").FindStringSubmatch(body)
	if m == nil || !strings.HasPrefix(m[1], "red-sox-potato-head,") || strings.Contains(m[1], "moneyball") {
		t.Fatalf("recommended after buying Moneyball and a banner: %v", m)
	}
	if !strings.Contains(body, "Bought together with Moneyball and Red Sox banner") {
		t.Errorf("the recommendation does not say why")
	}
	_, js := b.do("GET", "/_tailor/me", nil, "Accept", "application/json")
	if !strings.Contains(js, `"likely-potato-head"`) {
		t.Errorf("not in likely-potato-head: %s", js[:200])
	}
	// The plugin explains with its numbers: the confidence found, from
	// which items, and the confidence wanted.
	var me struct {
		Explanations []struct {
			Segment string
			In      bool
			Clauses []struct{ Rule, Path, Op, Actual, Expected string }
		}
	}
	if err := json.Unmarshal([]byte(js), &me); err != nil {
		t.Fatal(err)
	}
	for _, x := range me.Explanations {
		if x.Segment != "likely-potato-head" {
			continue
		}
		if !x.In || len(x.Clauses) != 1 {
			t.Fatalf("likely-potato-head: %+v", x)
		}
		c := x.Clauses[0]
		conf, err := strconv.ParseFloat(c.Actual, 64)
		if c.Rule != "likelyToBuy" || c.Path != "confidence of buying red-sox-potato-head from moneyball + red-sox-banner" ||
			c.Op != ">=" || c.Expected != "0.5" || err != nil || conf < 0.5 || conf > 1 {
			t.Errorf("likely-potato-head explained as %+v", c)
		}
	}
	// Before buying anything, the plugin says that nothing predicts it.
	jar2, _ := cookiejar.New(nil)
	b2 := &browser{t: t, c: &http.Client{Jar: jar2}, url: b.url}
	b2.do("GET", "/", nil)
	if _, html := b2.do("GET", "/_tailor/me", nil); !strings.Contains(html, "fail confidence of buying red-sox-potato-head = null, want &gt;= 0.5") {
		t.Errorf("a new visitor's likely-potato-head is not explained:\n%s", html)
	}
}

func TestShopExplainAdminMetrics(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tailor.db")
	s, srv := open(t, db)
	defer func() { srv.Close(); s.Close(context.Background()) }()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, c: &http.Client{Jar: jar}, url: srv.URL}
	b.do("GET", "/products/red-sox-cap", nil)
	b.do("GET", "/products/red-sox-banner", nil)
	_, js := b.do("GET", "/_tailor/me", nil, "Accept", "application/json")
	var me struct {
		Explanations []struct {
			Segment string
			In      bool
			Clauses []struct{ Actual any }
		}
	}
	if err := json.Unmarshal([]byte(js), &me); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, x := range me.Explanations {
		if x.Segment == "red-sox-fan" {
			found = x.In && len(x.Clauses) > 0
		}
	}
	if !found {
		t.Fatalf("no explanation of red-sox-fan: %s", js)
	}
	if _, html := b.do("GET", "/_tailor/me", nil); !strings.Contains(html, `data-explain="red-sox-fan"`) {
		t.Error("the HTML page does not explain")
	}

	if resp, _ := b.do("GET", "/_tailor/admin/", nil); resp.StatusCode != 401 {
		t.Errorf("admin without credentials: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/_tailor/admin/", nil)
	req.SetBasicAuth("admin", "secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin with credentials: %v %v", resp, err)
	}
	resp.Body.Close()
	// The rules page shows the built-in segments file and its plugin.
	req, _ = http.NewRequest("GET", srv.URL+"/_tailor/admin/rules", nil)
	req.SetBasicAuth("admin", "secret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin rules page: %v %v", resp, err)
	}
	rulesPage, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"<code>segments.json</code>, built into the program", `id="rules-file"`, "likely-potato-head",
		"used: <code>likelyToBuy</code>", "confidence of buying red-sox-potato-head &gt;= 0.5"} {
		if !strings.Contains(string(rulesPage), want) {
			t.Errorf("admin rules page lacks %q", want)
		}
	}
	if strings.Contains(string(rulesPage), "no such file") {
		t.Error("admin rules page tries to open the built-in segments file")
	}
	if _, m := b.do("GET", "/metrics", nil); !strings.Contains(m, "tailor_requests_total") || !strings.Contains(m, "tailor_classification_seconds_count") {
		t.Errorf("metrics: %.300s", m)
	}
}

func TestShopRefusesBadSegmentsFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "segments.json")
	os.WriteFile(bad, []byte("{\"segments\": [\n {\"name\": \"x\", \"rule\": {\"nope\": {}}}\n]}"), 0o600)
	_, err := site.Open(site.Config{DB: filepath.Join(dir, "tailor.db"), Segments: bad, AdminPassword: "x"})
	if err == nil || !strings.Contains(err.Error(), "segments.json:2:") {
		t.Fatalf("bad segments file: %v", err)
	}
}

// TestShopLoginAndCRM: a visitor signs in with an email; the CRM marks that
// user an opportunity through the collection endpoint (write key); the
// visitor is in crm-opportunity on the next request, and a second browser
// that signs in with the same email gets the same profile.
func TestShopLoginAndCRM(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tailor.db")
	s, srv := open(t, db)
	defer func() { srv.Close(); s.Close(context.Background()) }()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, c: &http.Client{Jar: jar}, url: srv.URL}
	b.do("GET", "/", nil)
	b.do("GET", "/products/moneyball", nil)
	if resp, body := b.do("POST", "/login", url.Values{"email": {"ana@example.com"}}); resp.StatusCode != 200 || !strings.Contains(body, "Signed in as ana@example.com") {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if resp, _ := b.do("POST", "/login", url.Values{"email": {"not-an-email"}}); resp.StatusCode != 400 {
		t.Errorf("bad email: %d", resp.StatusCode)
	}

	crm, _ := http.NewRequest("POST", srv.URL+"/_tailor/v1/identify", strings.NewReader(`{"userId":"ana@example.com","traits":{"crm_stage":"opportunity"}}`))
	crm.SetBasicAuth("wk-test", "")
	crm.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(crm)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CRM identify: %v %v", resp, err)
	}
	resp.Body.Close()
	wait := time.Now().Add(3 * time.Second)
	for {
		_, js := b.do("GET", "/_tailor/me", nil, "Accept", "application/json")
		if strings.Contains(js, `"crm-opportunity"`) {
			break
		}
		if time.Now().After(wait) {
			t.Fatalf("not in crm-opportunity: %.600s", js)
		}
		time.Sleep(50 * time.Millisecond)
	}

	jar2, _ := cookiejar.New(nil)
	b2 := &browser{t: t, c: &http.Client{Jar: jar2}, url: srv.URL}
	b2.do("GET", "/", nil)
	b2.do("POST", "/login", url.Values{"email": {"ana@example.com"}})
	_, js := b2.do("GET", "/_tailor/me", nil, "Accept", "application/json")
	if !strings.Contains(js, `"crm-opportunity"`) || !strings.Contains(js, `"/products/moneyball"`) {
		t.Fatalf("second browser does not share the profile: %.800s", js)
	}
	if resp, _ := b.do("GET", "/_tailor/t.js", nil); resp.StatusCode != 200 {
		t.Errorf("t.js: %d", resp.StatusCode)
	}

	// /_tailor/me, signed in: the user id and the visitor id, the facts
	// as a table, the raw profile folded away.
	_, js = b.do("GET", "/_tailor/me", nil, "Accept", "application/json")
	var me struct{ ID, UserID string }
	if err := json.Unmarshal([]byte(js), &me); err != nil || me.UserID != "ana@example.com" || len(me.ID) != 32 {
		t.Fatalf("/_tailor/me JSON signed in: %+v %v", me, err)
	}
	_, html := b.do("GET", "/_tailor/me", nil)
	for _, want := range []string{`<span id="user-id">ana@example.com</span>`, `<code id="visitor-id">` + me.ID + `</code>`,
		`<table class="facts" id="facts">`, "<tr><th>Page</th><td>/_tailor/me</td></tr>", "<tr><th>Device</th><td>desktop</td></tr>",
		`<details class="raw" id="profile-details">`, `id="me-logout"`, `data-explain="crm-opportunity" class="in"`} {
		if !strings.Contains(html, want) {
			t.Errorf("/_tailor/me signed in lacks %q", want)
		}
	}
	for _, bad := range []string{"{Path:", "Referrer:", "<th>Country</th>", "<th>Came from</th>"} {
		if strings.Contains(html, bad) {
			t.Errorf("/_tailor/me shows %q (a raw struct, or a fact that is not set)", bad)
		}
	}

	// Sign out: the browser is a new anonymous visitor, outside the
	// user's segments; signing in again brings them back.
	resp, home := b.do("POST", "/logout", url.Values{})
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/" || !strings.Contains(home, `id="login"`) || strings.Contains(home, "Signed in as") {
		t.Fatalf("sign out: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	_, js = b.do("GET", "/_tailor/me", nil, "Accept", "application/json")
	var after struct {
		ID, UserID string
		Segments   []string
	}
	if err := json.Unmarshal([]byte(js), &after); err != nil || after.UserID != "" || after.ID == me.ID || slices.Contains(after.Segments, "crm-opportunity") {
		t.Fatalf("/_tailor/me after signing out: %+v %v", after, err)
	}
	if _, html := b.do("GET", "/_tailor/me", nil); !strings.Contains(html, `<span id="user-id" class="muted">not signed in</span>`) {
		t.Errorf("/_tailor/me after signing out does not say so")
	}
	b.do("POST", "/login", url.Values{"email": {"ana@example.com"}})
	if _, js = b.do("GET", "/_tailor/me", nil, "Accept", "application/json"); !strings.Contains(js, `"crm-opportunity"`) {
		t.Errorf("signed in again, not in crm-opportunity: %.400s", js)
	}
}

// TestShopPreview: the dashboard's preview link of a segment shows the
// shop as a member of it, with a banner; an unsigned link is ignored.
func TestShopPreview(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tailor.db")
	s, srv := open(t, db)
	defer func() { srv.Close(); s.Close(context.Background()) }()
	req, _ := http.NewRequest("GET", srv.URL+"/_tailor/admin/segments/red-sox-fan", nil)
	req.SetBasicAuth("admin", "secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`id="preview-link" class="button" href="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no preview link on the segment page")
	}
	link := strings.ReplaceAll(string(m[1]), "&amp;", "&")
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, c: &http.Client{Jar: jar}, url: srv.URL}
	_, body := b.do("GET", link, nil)
	if !strings.Contains(body, `data-slot="hero" data-variant="red-sox"`) || !strings.Contains(body, "data-preview") {
		t.Fatalf("preview of red-sox-fan: hero %v", heroRE.FindStringSubmatch(body))
	}
	if h := b.hero(); h != "red-sox" { // the next requests stay in the preview
		t.Fatalf("after the preview link: hero %q", h)
	}
	jar2, _ := cookiejar.New(nil)
	b2 := &browser{t: t, c: &http.Client{Jar: jar2}, url: srv.URL}
	if _, body := b2.do("GET", "/?tailor_preview=forged", nil); strings.Contains(body, "data-preview") || !strings.Contains(body, `data-variant="welcome"`) {
		t.Fatalf("a forged preview was applied")
	}
}

// TestShopSlotsFileReloads: with -slots, an edit of the slots file shows
// on the next pages without a restart; a bad edit is refused and the last
// good slots stay.
func TestShopSlotsFileReloads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "slots.json")
	orig, err := os.ReadFile("slots.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := site.Open(site.Config{DB: filepath.Join(dir, "tailor.db"), Slots: path, AdminPassword: "x"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer func() { srv.Close(); s.Close(context.Background()) }()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, c: &http.Client{Jar: jar}, url: srv.URL}
	if _, home := b.do("GET", "/", nil); !strings.Contains(home, "Welcome to the Corner Shop") {
		t.Fatal("no welcome title on the home page")
	}
	edited := strings.Replace(string(orig), "Welcome to the Corner Shop", "Hello from the edited file", 1)
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	waitHome := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if _, home := b.do("GET", "/", nil); strings.Contains(home, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the home page never showed %q", want)
			}
		}
	}
	waitHome("Hello from the edited file")
	// A slot naming a segment the shop does not have is refused.
	bad := strings.Replace(edited, `"segment": "returning"`, `"segment": "no-such-segment"`, 1)
	bad = strings.Replace(bad, "Hello from the edited file", "Must not show", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // more than the watch interval
	if _, home := b.do("GET", "/", nil); !strings.Contains(home, "Hello from the edited file") || strings.Contains(home, "Must not show") {
		t.Fatal("a bad slots file replaced the good one")
	}
}

func TestShopRefusesBadSlotsFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "slots.json")
	os.WriteFile(bad, []byte("{\"slots\": [\n {\"name\": 3}\n]}"), 0o600)
	_, err := site.Open(site.Config{DB: filepath.Join(dir, "tailor.db"), Slots: bad, AdminPassword: "x"})
	if err == nil || !strings.Contains(err.Error(), "slots.json:2:") {
		t.Fatalf("bad slots file: %v", err)
	}
}

// TestShopEditor: with the built-in definitions, user admin edits them in
// the dashboard and publishes, and the shop serves what was published;
// user viewer only looks. With a slots file, the editor says files rule.
func TestShopEditor(t *testing.T) {
	dir := t.TempDir()
	s, err := site.Open(site.Config{DB: filepath.Join(dir, "tailor.db"), AdminPassword: "secret", ViewerPassword: "look"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer func() { srv.Close(); s.Close(context.Background()) }()
	post := func(user, pw, path string, form url.Values) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", srv.URL)
		req.SetBasicAuth(user, pw)
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	// The welcome title of the home page's hero, edited as JSON.
	orig, err := os.ReadFile("slots.json")
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(orig), "Welcome to the Corner Shop", "Hello from the editor", 1)
	if resp, body := post("viewer", "look", "/_tailor/admin/definitions/json", url.Values{"file": {"slots"}, "text": {edited}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer saves: %d\n%s", resp.StatusCode, body)
	}
	if resp, body := post("admin", "secret", "/_tailor/admin/definitions/json", url.Values{"file": {"slots"}, "text": {edited}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin saves: %d\n%s", resp.StatusCode, body)
	}
	if resp, body := post("admin", "secret", "/_tailor/admin/definitions/publish", url.Values{"base": {"0"}, "note": {"new welcome"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("publish: %d\n%s", resp.StatusCode, body)
	}
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, c: &http.Client{Jar: jar}, url: srv.URL}
	if _, home := b.do("GET", "/", nil); !strings.Contains(home, "Hello from the editor") {
		t.Errorf("the home page does not show the published title")
	}

	// Files mode.
	path := filepath.Join(dir, "slots.json")
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := site.Open(site.Config{DB: filepath.Join(dir, "files.db"), Slots: path, AdminPassword: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close(context.Background())
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/_tailor/admin/definitions", nil)
	r.SetBasicAuth("admin", "x")
	s2.Handler().ServeHTTP(w, r)
	if !strings.Contains(w.Body.String(), `id="files-mode"`) {
		t.Errorf("files mode: %d\n%s", w.Code, w.Body.String())
	}
}

// TestShopPreviewAsMember: the segment page's preview shows the shop as a
// member of the segment sees it, recommendations and slots made from the
// member's history, not the editor's; nothing the previewing browser does
// is recorded, into either profile; the banner's "Exit preview" brings
// the editor's own shop back.
func TestShopPreviewAsMember(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "tailor.db")
	s, srv := open(t, db)
	defer func() { srv.Close(); s.Close(context.Background()) }()
	newBrowser := func() *browser {
		jar, _ := cookiejar.New(nil)
		return &browser{t: t, c: &http.Client{Jar: jar}, url: srv.URL}
	}
	meID := func(b *browser) (id, profile string, tracked bool) {
		_, js := b.do("GET", "/_tailor/me", nil, "Accept", "application/json")
		var me struct {
			ID      string `json:"id"`
			Tracked bool   `json:"tracked"`
			Profile *struct {
				ID string `json:"id"`
			} `json:"profile"`
		}
		if err := json.Unmarshal([]byte(js), &me); err != nil {
			t.Fatalf("/_tailor/me: %v: %s", err, js)
		}
		if me.Profile != nil {
			profile = me.Profile.ID
		}
		return me.ID, profile, me.Tracked
	}

	// A customer buys Moneyball and a Red Sox banner.
	member := newBrowser()
	member.do("GET", "/products/moneyball", nil)
	for _, id := range []string{"moneyball", "red-sox-banner"} {
		member.do("POST", "/cart", url.Values{"id": {id}})
	}
	member.do("POST", "/checkout", url.Values{})
	memberID, _, _ := meID(member)
	// The editor only looked at watercolours.
	editor := newBrowser()
	editor.do("GET", "/products/mount-hood-watercolours", nil)
	editor.do("GET", "/products/hawaii-watercolours", nil)
	editorID, _, _ := meID(editor)
	if h := editor.hero(); h == "thank-you" {
		t.Fatalf("the editor is a customer already")
	}
	_, body := editor.do("GET", "/", nil)
	if m := slotRE("recommended").FindStringSubmatch(body); m != nil && strings.HasPrefix(m[1], "red-sox-potato-head") {
		t.Fatalf("the editor's own recommendations are the member's already: %v", m)
	}

	// The member is stored and listed on the segment page, whose preview
	// is as them.
	admin := func(path string) string {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.SetBasicAuth("admin", "secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var page string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		page = admin("/_tailor/admin/segments/customer")
		if strings.Contains(page, `class="preview-as"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the customer is not listed on the segment page:\n%s", page)
		}
	}
	if !strings.Contains(page, "with the history of the member <span class=\"mono\">"+memberID) {
		t.Fatalf("the segment's preview is not as the member %s", memberID)
	}
	m := regexp.MustCompile(`id="preview-link" class="button" href="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no preview link")
	}
	if err := s.Personalizer().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	editorBefore, err := s.Personalizer().Profile(ctx, editorID)
	if err != nil {
		t.Fatal(err)
	}
	memberBefore, err := s.Personalizer().Profile(ctx, memberID)
	if err != nil {
		t.Fatal(err)
	}

	_, body = editor.do("GET", html.UnescapeString(m[1]), nil)
	if h := heroRE.FindStringSubmatch(body); h == nil || h[1] != "thank-you" {
		t.Errorf("preview of customer: hero %v", h)
	}
	if r := slotRE("recommended").FindStringSubmatch(body); r == nil || !strings.HasPrefix(r[1], "red-sox-potato-head") || strings.Contains(r[1], "moneyball") {
		t.Errorf("preview as the member: recommended %v, want the member's (the potato head first)", r)
	}
	if !strings.Contains(body, `<code data-preview-profile>`+memberID+`</code>`) || !strings.Contains(body, "in customer, until ") {
		t.Errorf("the banner does not say what is previewed")
	}
	exit := regexp.MustCompile(`<a href="([^"]+)" data-preview-exit>Exit preview</a>`).FindStringSubmatch(body)
	if exit == nil {
		t.Fatal("no Exit preview in the banner")
	}
	if id, profile, tracked := meID(editor); id != "" || profile != memberID || tracked {
		t.Errorf("/_tailor/me in the preview: id %q, profile %q, tracked %v", id, profile, tracked)
	}

	// Everything the shop records, done in the preview.
	editor.do("GET", "/products/red-sox-potato-head", nil)
	editor.do("POST", "/cart", url.Values{"id": {"snowshoes"}})
	editor.do("POST", "/checkout", url.Values{})
	editor.do("POST", "/login", url.Values{"email": {"editor@example.com"}})
	req, _ := http.NewRequest("POST", srv.URL+"/_tailor/v1/track", strings.NewReader(`{"event":"Clicked Banner"}`))
	req.Header.Set("User-Agent", ua)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Content-Type", "application/json")
	if resp, err := editor.c.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if err := s.Personalizer().Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id     string
		before *store.Profile
	}{{editorID, editorBefore}, {memberID, memberBefore}} {
		after, err := s.Personalizer().Profile(ctx, c.id)
		if err != nil {
			t.Fatal(err)
		}
		if after.Version != c.before.Version || after.Recent.Len() != c.before.Recent.Len() || after.Purchases.Count != c.before.Purchases.Count {
			t.Errorf("profile %s changed in the preview: version %d -> %d, %d -> %d events, %d -> %d orders", c.id,
				c.before.Version, after.Version, c.before.Recent.Len(), after.Recent.Len(), c.before.Purchases.Count, after.Purchases.Count)
		}
	}
	uid, _ := store.UserProfileID("editor@example.com")
	if _, err := s.Personalizer().Profile(ctx, uid); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the sign-in in the preview was recorded: %v", err)
	}

	// Exit: the same page, without the preview, as the editor.
	resp, body := editor.do("GET", html.UnescapeString(exit[1]), nil)
	if resp.Request.URL.Path != "/" || resp.Request.URL.RawQuery != "" || strings.Contains(body, "data-preview") {
		t.Errorf("after Exit preview: at %s, banner %v", resp.Request.URL, strings.Contains(body, "data-preview"))
	}
	if id, profile, tracked := meID(editor); id != editorID || profile != editorID || !tracked {
		t.Errorf("after the preview: id %q, profile %q, tracked %v; want the editor %s", id, profile, tracked, editorID)
	}
}

// TestShopLikelyFollowsTheModel: a visitor who bought a Red Sox cap, and
// then does nothing, joins likely-potato-head once other visitors'
// orders teach the model that cap buyers buy the Potato Head: the
// model's follower tells the engine, which makes the remembered
// classification again.
func TestShopLikelyFollowsTheModel(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tailor.db")
	s, err := site.Open(site.Config{DB: db, FlushInterval: 50 * time.Millisecond, AdminPassword: "secret", NoDemoHistory: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer func() { srv.Close(); s.Close(context.Background()) }()
	buyer := func(items ...string) *browser {
		jar, _ := cookiejar.New(nil)
		b := &browser{t: t, c: &http.Client{Jar: jar}, url: srv.URL}
		for _, id := range items {
			b.do("POST", "/cart", url.Values{"id": {id}})
		}
		b.do("POST", "/checkout", url.Values{})
		return b
	}
	segments := func(b *browser) string {
		_, js := b.do("GET", "/_tailor/me", nil, "Accept", "application/json")
		var me struct{ Segments []string }
		if err := json.Unmarshal([]byte(js), &me); err != nil {
			t.Fatal(err)
		}
		return strings.Join(me.Segments, ",")
	}
	a := buyer("red-sox-cap")
	time.Sleep(200 * time.Millisecond) // the order flushed, the profile refreshed
	if got := segments(a); strings.Contains(got, "likely-potato-head") {
		t.Fatalf("before anyone bought the Potato Head: %s", got)
	}
	segments(a) // remembered
	for range 4 {
		buyer("red-sox-cap", "red-sox-potato-head")
	}
	for range 3 {
		buyer("snowshoes")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := segments(a)
		if strings.Contains(got, "likely-potato-head") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("15 s after the orders that teach it: %s", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
