package collect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/collect"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

const writeKey = "wk_test_0123456789"

// site is a Personalizer with the collection endpoint mounted beside the
// site's handler, as an application does.
type site struct {
	t  testing.TB
	p  *middleware.Personalizer
	c  *collect.Collector
	st *memory.Store
	h  http.Handler
}

// newSite returns a site whose Personalizer's clock is now (time.Now if
// nil), configured by mod.
func newSite(t testing.TB, now func() time.Time, mod func(*collect.Config)) *site {
	t.Helper()
	st := memory.New(store.Limits{})
	p := newP(t, st, func(c *middleware.Config) { c.Now = now })
	cfg := collect.Config{WriteKeys: []string{writeKey}}
	if mod != nil {
		mod(&cfg)
	}
	c := newCollector(t, p, cfg)
	mux := http.NewServeMux()
	mux.Handle("/_tailor/", c)
	mux.Handle("/", p.Handler(echo))
	return &site{t: t, p: p, c: c, st: st, h: mux}
}

// req is a request to the site.
type req struct {
	method, path, body string
	header             map[string]string
	cookie             *http.Cookie
}

func (s *site) do(r req) *httptest.ResponseRecorder {
	s.t.Helper()
	if r.method == "" {
		r.method = "POST"
	}
	hr := httptest.NewRequest(r.method, "http://shop.example"+r.path, strings.NewReader(r.body))
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.cookie != nil {
		hr.AddCookie(r.cookie)
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, hr)
	return rec
}

// server sends body to the endpoint with the write key.
func (s *site) server(path, body string) *httptest.ResponseRecorder {
	s.t.Helper()
	return s.do(req{path: path, body: body, header: map[string]string{"Authorization": basic(writeKey)}})
}

func basic(key string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(key, "")
	return r.Header.Get("Authorization")
}

// visitor returns the cookie and id of a returning visitor.
func (s *site) visitor() (*http.Cookie, string) {
	s.t.Helper()
	rec := s.do(req{method: "GET", path: "/", header: map[string]string{"User-Agent": browserUA}})
	c := rec.Result().Cookies()[0]
	id, _, _ := strings.Cut(rec.Body.String(), " ")
	rec = s.do(req{method: "GET", path: "/", header: map[string]string{"User-Agent": browserUA}, cookie: c})
	return rec.Result().Cookies()[0], id
}

// browser sends body to the endpoint as the snippet does, from a page of
// the site.
func (s *site) browser(path, body string, c *http.Cookie) *httptest.ResponseRecorder {
	s.t.Helper()
	return s.do(req{path: path, body: body, cookie: c, header: map[string]string{
		"User-Agent": browserUA, "Sec-Fetch-Site": "same-origin", "Origin": "http://shop.example"}})
}

func (s *site) profile(id string) *store.Profile {
	s.t.Helper()
	prof, err := s.p.Profile(context.Background(), id)
	if err != nil {
		s.t.Fatalf("profile %s: %v", id, err)
	}
	return prof
}

func TestCollectEndpoints(t *testing.T) {
	t.Parallel()
	s := newSite(t, nil, nil)
	for _, tc := range []struct {
		name, path, body string
		want             string // the body
		check            func(t *testing.T)
	}{
		{"track", "/_tailor/v1/track", `{"userId":"ana","event":"Signed Up","properties":{"plan":"pro"},"messageId":"m1"}`,
			`{"success":true,"accepted":1}`, func(t *testing.T) {
				p := s.profile("user:ana")
				if p.Counts["Signed Up"] != 1 || string(p.Recent.At(0).Props) != `{"plan":"pro"}` || p.Recent.At(0).ID != "#s:m1" {
					t.Errorf("profile %+v", p)
				}
			}},
		{"order", "/_tailor/v1/track", `{"userId":"bo","event":"Order Completed","properties":{"revenue":30,"products":[
			{"product_id":"moneyball","category":"books","price":12.5,"quantity":2},{"id":"cap","category":"red-sox","price":"5"}]}}`,
			`{"success":true,"accepted":1}`, func(t *testing.T) {
				p := s.profile("user:bo")
				if p.Purchases.Count != 1 || p.Purchases.Revenue != 30 || p.Purchases.Items["moneyball"] != 2 || p.Purchases.Categories["red-sox"] != 1 {
					t.Errorf("purchases %+v", p.Purchases)
				}
			}},
		{"page", "/_tailor/v1/page", `{"anonymousId":"a-1","name":"Home","properties":{"url":"https://shop.example/products/x?y=1","category":"books","referrer":"https://News.example.org/a"}}`,
			`{"success":true,"accepted":1}`, func(t *testing.T) {
				p := s.profile("anon:a-1")
				if p.Pages["/products/x"] != 1 || p.Categories["books"] != 1 || p.Recent.At(0).Referrer != "news.example.org" {
					t.Errorf("profile %+v", p)
				}
			}},
		{"screen", "/_tailor/v1/screen", `{"userId":"cy","name":"Checkout"}`, `{"success":true,"accepted":1}`, func(t *testing.T) {
			if p := s.profile("user:cy"); p.Pages["Checkout"] != 1 {
				t.Errorf("pages %v", p.Pages)
			}
		}},
		{"identify", "/_tailor/v1/identify", `{"userId":"di","traits":{"crm_stage":"opportunity"}}`, `{"success":true,"accepted":1}`, func(t *testing.T) {
			if p := s.profile("user:di"); string(p.Traits) != `{"crm_stage":"opportunity"}` || p.UserID != "di" {
				t.Errorf("traits %s", p.Traits)
			}
		}},
		{"group", "/_tailor/v1/group", `{"userId":"di","groupId":"acme","traits":{"plan":"enterprise","id":"x"}}`, `{"success":true,"accepted":1}`, func(t *testing.T) {
			if p := s.profile("user:di"); string(p.Trait("group")) != `{"id":"acme","plan":"enterprise"}` {
				t.Errorf("traits %s", p.Traits)
			}
		}},
		{"alias", "/_tailor/v1/alias", `{"previousId":"old-ed","userId":"ed"}`, `{"success":true,"accepted":1}`, nil},
		{"batch", "/_tailor/v1/batch", `{"batch":[{"type":"track","userId":"fy","event":"email_opened","properties":{"campaign":"spring"}},
			{"type":"page","userId":"fy","properties":{"path":"/pricing"}}],"context":{"campaign":{"source":"newsletter"}}}`,
			`{"success":true,"accepted":2}`, func(t *testing.T) {
				p := s.profile("user:fy")
				if p.Counts["email_opened"] != 1 || p.Pages["/pricing"] != 1 || p.Recent.At(1).Source != "newsletter" {
					t.Errorf("profile %+v", p)
				}
			}},
		{"import", "/_tailor/v1/import", `{"batch":[{"type":"track","userId":"gu","event":"x"}]}`, `{"success":true,"accepted":1}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := s.server(tc.path, tc.body)
			if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != tc.want {
				t.Fatalf("%d %s, want 200 %s", rec.Code, rec.Body, tc.want)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if len(rec.Result().Cookies()) != 0 {
				t.Errorf("a server call got cookies: %v", rec.Result().Cookies())
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}

func TestCollectErrors(t *testing.T) {
	t.Parallel()
	s := newSite(t, nil, nil)
	big := `{"userId":"u","event":"e","properties":{"x":"` + strings.Repeat("a", 32<<10) + `"}}`
	many := `{"batch":[` + strings.Repeat(`{"type":"track","userId":"u","event":"e"},`, 2500) + `{"type":"track","userId":"u","event":"e"}]}`
	huge := `{"batch":[` + strings.Repeat(`{"type":"track","userId":"u","event":"e","properties":{"x":"`+strings.Repeat("a", 20<<10)+`"}},`, 25) + `{}]}`
	deep := `{"userId":"u","event":"e","properties":{"a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}}`
	for _, tc := range []struct {
		name, method, path, body string
		auth                     string // Authorization; "-" for none
		status                   int
		want                     string
	}{
		{"track without event", "", "/_tailor/v1/track", `{"userId":"u"}`, "", 400,
			`{"error":"invalid","field":"event","message":"required for track"}`},
		{"track with empty event", "", "/_tailor/v1/track", `{"userId":"u","event":""}`, "", 400,
			`{"error":"invalid","field":"event","message":"required for track"}`},
		{"no id", "", "/_tailor/v1/track", `{"event":"e"}`, "", 400,
			`{"error":"invalid","field":"userId","message":"userId or anonymousId is required"}`},
		{"alias without previousId", "", "/_tailor/v1/alias", `{"userId":"u"}`, "", 400,
			`{"error":"invalid","field":"previousId","message":"required for alias"}`},
		{"alias without userId", "", "/_tailor/v1/alias", `{"previousId":"p","anonymousId":"a"}`, "", 400,
			`{"error":"invalid","field":"userId","message":"required for alias"}`},
		{"group without groupId", "", "/_tailor/v1/group", `{"userId":"u"}`, "", 400,
			`{"error":"invalid","field":"groupId","message":"required for group"}`},
		{"userId of the wrong type", "", "/_tailor/v1/identify", `{"userId":{"a":1}}`, "", 400,
			`{"error":"invalid","field":"userId","message":"must be a string"}`},
		{"userId too long", "", "/_tailor/v1/identify", `{"userId":"` + strings.Repeat("u", 252) + `"}`, "", 400,
			`{"error":"invalid","field":"userId","message":"252 bytes; the limit is 251"}`},
		{"userId with a control character", "", "/_tailor/v1/identify", `{"userId":"a\nb"}`, "", 400,
			`{"error":"invalid","field":"userId","message":"holds a control character"}`},
		{"properties not an object", "", "/_tailor/v1/track", `{"userId":"u","event":"e","properties":[1]}`, "", 400,
			`{"error":"invalid","field":"properties","message":"must be an object"}`},
		{"traits not an object", "", "/_tailor/v1/identify", `{"userId":"u","traits":"x"}`, "", 400,
			`{"error":"invalid","field":"traits","message":"must be an object"}`},
		{"bad timestamp", "", "/_tailor/v1/track", `{"userId":"u","event":"e","timestamp":"yesterday"}`, "", 400,
			`{"error":"invalid","field":"timestamp","message":"not an ISO 8601 date and time"}`},
		{"bad price", "", "/_tailor/v1/track", `{"userId":"u","event":"Order Completed","properties":{"products":[{"id":"a","price":"cheap"}]}}`, "", 400,
			`{"error":"invalid","field":"properties.products[0].price","message":"must be a number"}`},
		{"bad quantity", "", "/_tailor/v1/track", `{"userId":"u","event":"purchase","properties":{"products":[{"id":"a"},{"id":"b","quantity":1.5}]}}`, "", 400,
			`{"error":"invalid","field":"properties.products[1].quantity","message":"must be a whole number from 0 to 1000000"}`},
		{"long messageId", "", "/_tailor/v1/track", `{"userId":"u","event":"e","messageId":"` + strings.Repeat("m", 201) + `"}`, "", 400,
			`{"error":"invalid","field":"messageId","message":"201 bytes; the limit is 200"}`},
		{"malformed JSON", "", "/_tailor/v1/track", `{"userId":"u",}`, "", 400,
			`{"error":"invalid","message":"malformed JSON at byte 15: invalid character '}' looking for beginning of object key string"}`},
		{"not an object", "", "/_tailor/v1/track", `[1,2]`, "", 400,
			`{"error":"invalid","message":"the body must be a JSON object"}`},
		{"too deep", "", "/_tailor/v1/track", deep, "", 400,
			`{"error":"invalid","message":"JSON nested deeper than 64 levels"}`},
		{"batch missing", "", "/_tailor/v1/batch", `{"context":{}}`, "", 400,
			`{"error":"invalid","field":"batch","message":"required"}`},
		{"batch not an array", "", "/_tailor/v1/batch", `{"batch":{}}`, "", 400,
			`{"error":"invalid","field":"batch","message":"must be an array"}`},
		{"batch all invalid", "", "/_tailor/v1/batch", `{"batch":[{"type":"track","userId":"u"},{"type":"nope","userId":"u"},3]}`, "", 400,
			`{"error":"invalid","field":"batch[0].event","message":"required for track","errors":[` +
				`{"error":"invalid","field":"batch[0].event","message":"required for track"},` +
				`{"error":"invalid","field":"batch[1].type","message":"\"nope\" is not identify, track, page, screen, group or alias"},` +
				`{"error":"invalid","field":"batch[2]","message":"must be a JSON object"}]}`},
		{"batch with one invalid event", "", "/_tailor/v1/batch", `{"batch":[{"type":"track","userId":"u","event":"a"},{"type":"track","userId":"u"},{"type":"track","userId":"u","event":"b"},{"userId":"u"}]}`, "", 200,
			`{"success":true,"accepted":2,"errors":[{"error":"invalid","field":"batch[1].event","message":"required for track"},` +
				`{"error":"invalid","field":"batch[3].type","message":"required: identify, track, page, screen, group or alias"}]}`},
		{"event too large", "", "/_tailor/v1/track", big, "", 413,
			fmt.Sprintf(`{"error":"too_large","message":"the body is %d bytes; the limit is 32 KB"}`, len(big))},
		{"batch event too large", "", "/_tailor/v1/batch", `{"batch":[{"type":"track","userId":"u","event":"ok"},` + big[:len(big)-1] + `,"type":"track"}]}`, "", 200,
			fmt.Sprintf(`{"success":true,"accepted":1,"errors":[{"error":"too_large","field":"batch[1]","message":"the event is %d bytes; the limit is 32 KB"}]}`, len(big)-1+len(`,"type":"track"}`))},
		{"batch too large", "", "/_tailor/v1/batch", huge, "", 413,
			fmt.Sprintf(`{"error":"too_large","message":"the body is %d bytes; the limit is 500 KB"}`, len(huge))},
		{"batch of too many events", "", "/_tailor/v1/batch", many, "", 413,
			`{"error":"too_large","field":"batch","message":"2501 events; the limit is 2500"}`},
		{"unknown write key", "", "/_tailor/v1/track", `{"userId":"u","event":"e"}`, basic("nope"), 401,
			`{"error":"unauthorized","message":"unknown or revoked write key"}`},
		{"unknown write key in the body", "", "/_tailor/v1/track", `{"userId":"u","event":"e","writeKey":"nope"}`, "-", 401,
			`{"error":"unauthorized","message":"unknown or revoked write key"}`},
		{"write key in the body", "", "/_tailor/v1/track", `{"userId":"u","event":"e","writeKey":"` + writeKey + `"}`, "-", 200,
			`{"success":true,"accepted":1}`},
		{"no key, not from the site", "", "/_tailor/v1/track", `{"userId":"u","event":"e"}`, "-", 401,
			`{"error":"unauthorized","message":"a write key is required for calls that do not come from this site's pages"}`},
		{"GET", "GET", "/_tailor/v1/track", ``, "", 405,
			`{"error":"method_not_allowed","message":"GET v1/track: only POST"}`},
		{"unknown endpoint", "", "/_tailor/v2/track", `{}`, "", 404,
			`{"error":"not_found","message":"no such endpoint: v2/track"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req{method: tc.method, path: tc.path, body: tc.body, header: map[string]string{"Authorization": basic(writeKey)}}
			switch tc.auth {
			case "-":
				r.header = nil
			case "":
			default:
				r.header["Authorization"] = tc.auth
			}
			rec := s.do(r)
			if rec.Code != tc.status || strings.TrimSpace(rec.Body.String()) != tc.want {
				t.Fatalf("got %d %s\nwant %d %s", rec.Code, rec.Body, tc.status, tc.want)
			}
		})
	}
	if rec := s.do(req{method: "GET", path: "/_tailor/v1/track"}); rec.Header().Get("Allow") != "POST" {
		t.Errorf("405 without Allow: %v", rec.Header())
	}
}

func TestCollectBrowser(t *testing.T) {
	t.Parallel()
	s := newSite(t, nil, nil)
	ck, id := s.visitor()
	other, otherID := s.visitor()
	for _, tc := range []struct {
		name, path, body string
		cookie           *http.Cookie
		header           map[string]string
		status           int
		want             string
	}{
		{"track", "/_tailor/v1/track", `{"event":"add_to_cart","properties":{"sku":"x"}}`, ck, nil, 200, `{"success":true,"accepted":1}`},
		{"own anonymousId", "/_tailor/v1/track", `{"anonymousId":"` + id + `","event":"add_to_cart"}`, ck, nil, 200, `{"success":true,"accepted":1}`},
		{"page", "/_tailor/v1/page", `{"properties":{"path":"/virtual"}}`, ck, nil, 200, `{"success":true,"accepted":1}`},
		{"another visitor", "/_tailor/v1/track", `{"anonymousId":"` + otherID + `","event":"x"}`, ck, nil, 403,
			`{"error":"forbidden","field":"anonymousId","message":"names another visitor than the one of the cookie"}`},
		{"a user", "/_tailor/v1/track", `{"userId":"ana","event":"x"}`, ck, nil, 403,
			`{"error":"forbidden","field":"userId","message":"names another user than the one of the cookie"}`},
		{"identify", "/_tailor/v1/identify", `{"userId":"ana","traits":{"crm_stage":"won"}}`, ck, nil, 403,
			`{"error":"forbidden","field":"type","message":"identify calls need a write key: traits and merges come from servers (see Personalizer.Identify)"}`},
		{"batch, one forbidden", "/_tailor/v1/batch", `{"batch":[{"type":"track","event":"a"},{"type":"track","event":"b","anonymousId":"` + otherID + `"}]}`, ck, nil, 200,
			`{"success":true,"accepted":1,"errors":[{"error":"forbidden","field":"batch[1].anonymousId","message":"names another visitor than the one of the cookie"}]}`},
		{"no cookie", "/_tailor/v1/track", `{"event":"x"}`, nil, nil, 200, `{"success":true,"accepted":0,"ignored":1}`},
		{"cross-site", "/_tailor/v1/track", `{"event":"x"}`, ck, map[string]string{"Sec-Fetch-Site": "cross-site"}, 401,
			`{"error":"unauthorized","message":"a write key is required for calls that do not come from this site's pages"}`},
		{"other origin", "/_tailor/v1/track", `{"event":"x"}`, ck, map[string]string{"Sec-Fetch-Site": "", "Origin": "https://evil.example"}, 401,
			`{"error":"unauthorized","message":"a write key is required for calls that do not come from this site's pages"}`},
		{"referer of the site", "/_tailor/v1/track", `{"event":"x"}`, ck, map[string]string{"Sec-Fetch-Site": "", "Origin": "", "Referer": "http://shop.example/products"}, 200,
			`{"success":true,"accepted":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req{path: tc.path, body: tc.body, cookie: tc.cookie, header: map[string]string{
				"User-Agent": browserUA, "Sec-Fetch-Site": "same-origin", "Origin": "http://shop.example"}}
			for k, v := range tc.header {
				r.header[k] = v
			}
			rec := s.do(r)
			if rec.Code != tc.status || strings.TrimSpace(rec.Body.String()) != tc.want {
				t.Fatalf("got %d %s\nwant %d %s", rec.Code, rec.Body, tc.status, tc.want)
			}
		})
	}
	p := s.profile(id)
	if p.Counts["add_to_cart"] != 2 || p.Counts["a"] != 1 || p.Counts["x"] != 1 || p.Pages["/virtual"] != 1 {
		t.Errorf("counts %v pages %v", p.Counts, p.Pages)
	}
	if q := s.profile(otherID); q.Counts["x"] != 0 || q.Counts["b"] != 0 {
		t.Errorf("the other visitor got events: %v", q.Counts)
	}
	_ = other
}

func TestCollectRetriesCountOnce(t *testing.T) {
	t.Parallel()
	s := newSite(t, nil, nil)
	body := `{"batch":[{"type":"track","userId":"u","event":"Order Completed","messageId":"o-1","properties":{"products":[{"id":"a","price":3}]}},
		{"type":"track","anonymousId":"a1","event":"x","messageId":"o-2"}]}`
	for range 3 {
		if rec := s.server("/_tailor/v1/batch", body); rec.Code != 200 {
			t.Fatal(rec.Code, rec.Body)
		}
		if err := s.p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if p, _ := s.st.Load(context.Background(), "user:u"); p.Purchases.Count != 1 || p.Purchases.Revenue != 3 {
		t.Errorf("purchases %+v", p.Purchases)
	}
	if p, _ := s.st.Load(context.Background(), "anon:a1"); p.Counts["x"] != 1 {
		t.Errorf("counts %v", p.Counts)
	}
}

func TestCollectTimestamps(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	s := newSite(t, func() time.Time { return now }, nil)
	// The client's clock is 10 minutes ahead: Segment corrects timestamps
	// by the difference between sentAt and the time of receipt.
	s.server("/_tailor/v1/batch", `{"sentAt":"2026-06-01T12:10:00Z","batch":[
		{"type":"track","userId":"t","event":"past","timestamp":"2026-06-01T11:10:00.5Z"},
		{"type":"track","userId":"t","event":"own","timestamp":"2026-06-01T12:05:00Z","sentAt":"2026-06-01T12:05:00Z"},
		{"type":"track","userId":"t","event":"none"}]}`)
	s.server("/_tailor/v1/track", `{"userId":"t","event":"future","timestamp":"2027-01-01T00:00:00Z"}`)
	want := map[string]time.Time{"past": now.Add(-time.Hour + 500*time.Millisecond), "own": now, "none": now, "future": now}
	for _, e := range s.profile("user:t").Recent.Events() {
		if !e.Time.Equal(want[e.Name]) {
			t.Errorf("%s at %v, want %v", e.Name, e.Time, want[e.Name])
		}
	}
}

func TestCollectRateLimit(t *testing.T) {
	t.Parallel()
	c := &clock{now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	s := newSite(t, c.Now, func(cfg *collect.Config) { cfg.KeyRate, cfg.BrowserRate = 5, 1 })
	batch := func(n int) string {
		return `{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"type":"track","userId":"u","event":"e"},`, n), ",") + `]}`
	}
	// A burst of two seconds' worth (10); what does not fit waits.
	for i, want := range []int{200, 429} {
		rec := s.server("/_tailor/v1/batch", batch(8))
		if rec.Code != want {
			t.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
		}
		if want == 429 {
			if got := strings.TrimSpace(rec.Body.String()); got != `{"error":"rate_limited","message":"too many events; retry after 2 seconds"}` {
				t.Errorf("body %s", got)
			}
			if ra := rec.Header().Get("Retry-After"); ra != "2" {
				t.Errorf("Retry-After %q", ra)
			}
		}
	}
	c.now = c.now.Add(2 * time.Second)
	if rec := s.server("/_tailor/v1/batch", batch(1)); rec.Code != 200 {
		t.Fatalf("after waiting: %d", rec.Code)
	}
	// Browsers are counted per address.
	ck, _ := s.visitor()
	for i, want := range []int{200, 200, 429} {
		if rec := s.browser("/_tailor/v1/track", `{"event":"e"}`, ck); rec.Code != want {
			t.Fatalf("browser request %d: %d", i, rec.Code)
		}
	}
	if s.p.Stats().RateLimited != 2 {
		t.Errorf("stats %+v", s.p.Stats())
	}
}

func TestWriteKeysRevocable(t *testing.T) {
	t.Parallel()
	s := newSite(t, nil, nil)
	if err := s.c.AddWriteKey("second-key"); err != nil {
		t.Fatal(err)
	}
	send := func(key string) int {
		return s.do(req{path: "/_tailor/v1/track", body: `{"userId":"u","event":"e"}`, header: map[string]string{"Authorization": basic(key)}}).Code
	}
	if send("second-key") != 200 || send(writeKey) != 200 {
		t.Fatal("keys refused")
	}
	if !s.c.RevokeWriteKey(writeKey) || s.c.RevokeWriteKey("never") {
		t.Error("RevokeWriteKey reports wrongly")
	}
	if send(writeKey) != 401 || send("second-key") != 200 {
		t.Error("revocation")
	}
	for _, bad := range []string{"", "a:b"} {
		if err := s.c.AddWriteKey(bad); err == nil {
			t.Errorf("AddWriteKey(%q) accepted", bad)
		}
	}
	_, err := collect.New(s.p, collect.Config{WriteKeys: []string{"ok", ""}, Path: "/t"})
	if err == nil || !strings.Contains(err.Error(), "Config.WriteKeys[1]: empty write key") || !strings.Contains(err.Error(), `Config.Path: "/t" must begin and end with /`) {
		t.Errorf("New: %v", err)
	}
}

func TestSnippet(t *testing.T) {
	t.Parallel()
	s := newSite(t, nil, nil)
	rec := s.do(req{method: "GET", path: "/_tailor/t.js", header: map[string]string{"User-Agent": browserUA}})
	body := rec.Body.Bytes()
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	if len(body) >= 2048 {
		t.Errorf("t.js is %d bytes, the limit is 2 KB", len(body))
	}
	for _, want := range []string{"sendBeacon", "data-track", "v1/track"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("t.js lacks %q", want)
		}
	}
	// Not a page view, and no cookie for it.
	if len(rec.Result().Cookies()) != 0 || s.p.Stats().NewVisitors != 0 {
		t.Errorf("t.js set a cookie: %v", rec.Result().Cookies())
	}
	if rec := s.do(req{method: "DELETE", path: "/_tailor/t.js"}); rec.Code != 405 {
		t.Errorf("DELETE t.js: %d", rec.Code)
	}
	// Under http.StripPrefix too.
	h := http.StripPrefix("/_tailor", s.c)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/_tailor/t.js", nil))
	if rec.Code != 200 || rec.Body.Len() != len(body) {
		t.Errorf("stripped: %d", rec.Code)
	}
}

func TestCollectIgnoresContentType(t *testing.T) {
	t.Parallel()
	// sendBeacon sends a string as text/plain.
	s := newSite(t, nil, nil)
	ck, id := s.visitor()
	r := httptest.NewRequest("POST", "http://shop.example/_tailor/v1/track", strings.NewReader(`{"event":"beacon"}`))
	r.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("User-Agent", browserUA)
	r.AddCookie(ck)
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, r)
	var got map[string]any
	if json.Unmarshal(rec.Body.Bytes(), &got); got["accepted"] != float64(1) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if s.profile(id).Counts["beacon"] != 1 {
		t.Error("not recorded")
	}
}

// A browser's messageId never stands for a server's: a keyless call that
// sends an id first does not make the server's order with that id a
// duplicate, and each side's retries still count once.
func TestCollectMessageIDsPerOrigin(t *testing.T) {
	t.Parallel()
	s := newSite(t, nil, nil)
	ck, id := s.visitor()
	browserCall := `{"event":"Clicked","messageId":"order-1"}`
	order := `{"anonymousId":"` + id + `","event":"Order Completed","messageId":"order-1","properties":{"revenue":30}}`
	for round := range 2 { // the second round retries every call
		if rec := s.browser("/_tailor/v1/track", browserCall, ck); rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"success":true,"accepted":1}` {
			t.Fatalf("browser, round %d: %d %s", round, rec.Code, rec.Body)
		}
		if rec := s.server("/_tailor/v1/track", order); rec.Code != 200 {
			t.Fatalf("server, round %d: %d %s", round, rec.Code, rec.Body)
		}
		// A server's messageId that looks like a browser's namespaced id.
		if rec := s.server("/_tailor/v1/track", `{"anonymousId":"`+id+`","event":"Server Clicked","messageId":"b:order-1"}`); rec.Code != 200 {
			t.Fatalf("server, round %d: %d %s", round, rec.Code, rec.Body)
		}
		if err := s.p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	p := s.profile(id)
	if p.Purchases.Count != 1 || p.Purchases.Revenue != 30 {
		t.Errorf("purchases %+v, want the server's order once", p.Purchases)
	}
	if p.Counts["Clicked"] != 1 || p.Counts["Server Clicked"] != 1 {
		t.Errorf("counts %v, want Clicked and Server Clicked once", p.Counts)
	}
	stored, err := s.st.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Purchases.Count != 1 || stored.Counts["Clicked"] != 1 || stored.Counts["Server Clicked"] != 1 {
		t.Errorf("stored: purchases %+v counts %v", stored.Purchases, stored.Counts)
	}
}

// TestCollectBrowserMayNotRecordServerEvents: calls without a write key
// may not record orders (and the rest of the order lifecycle), nor the
// site's Config.ServerEvents: they get 403 naming the event, counted in
// Stats.CollectRefused, and the profile is unchanged; the same calls with
// a write key are recorded.
func TestCollectBrowserMayNotRecordServerEvents(t *testing.T) {
	t.Parallel()
	s := newSite(t, nil, func(c *collect.Config) { c.ServerEvents = []string{"Signed Up", "Trial Started"} })
	ck, id := s.visitor()
	order := `"properties":{"revenue":500,"products":[{"id":"tv","price":500}]}`
	forbidden := func(field, event, why string) string {
		return `{"error":"forbidden","field":"` + field + `","message":"track \"` + event + `\" needs a write key: ` + why + `"}`
	}
	const purchase = "it records a purchase (send orders from your server)"
	const orderEvent = "order events come from servers"
	const serverEvent = "it is one of Config.ServerEvents"
	for _, tc := range []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"Order Completed", "/_tailor/v1/track", `{"event":"Order Completed",` + order + `}`, 403, forbidden("event", "Order Completed", purchase)},
		{"order completed", "/_tailor/v1/track", `{"event":"order completed",` + order + `}`, 403, forbidden("event", "order completed", purchase)},
		{"purchase", "/_tailor/v1/track", `{"event":"purchase",` + order + `}`, 403, forbidden("event", "purchase", purchase)},
		{"Order Refunded", "/_tailor/v1/track", `{"event":"Order Refunded","properties":{"revenue":-500}}`, 403, forbidden("event", "Order Refunded", orderEvent)},
		{"Order Updated", "/_tailor/v1/track", `{"event":"ORDER UPDATED"}`, 403, forbidden("event", "ORDER UPDATED", orderEvent)},
		{"Order Cancelled", "/_tailor/v1/track", `{"event":"Order Cancelled"}`, 403, forbidden("event", "Order Cancelled", orderEvent)},
		{"configured", "/_tailor/v1/track", `{"event":"signed up"}`, 403, forbidden("event", "signed up", serverEvent)},
		{"batch", "/_tailor/v1/batch", `{"batch":[{"type":"track","event":"Checkout Started","properties":{"revenue":500}},` +
			`{"type":"track","event":"Order Completed",` + order + `},{"type":"page","properties":{"path":"/thanks"}},{"type":"track","event":"Trial Started"}]}`, 200,
			`{"success":true,"accepted":2,"errors":[` + forbidden("batch[1].event", "Order Completed", purchase) + `,` + forbidden("batch[3].event", "Trial Started", serverEvent) + `]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.p.Stats().CollectRefused
			rec := s.browser(tc.path, tc.body, ck)
			if rec.Code != tc.status || strings.TrimSpace(rec.Body.String()) != tc.want {
				t.Fatalf("got %d %s\nwant %d %s", rec.Code, rec.Body, tc.status, tc.want)
			}
			if n := s.p.Stats().CollectRefused - before; n != uint64(strings.Count(tc.want, `"forbidden"`)) {
				t.Errorf("CollectRefused grew by %d", n)
			}
		})
	}
	// A browser whose visitor is not kept (no cookie yet) is told the
	// same; its other calls are dropped.
	if rec := s.browser("/_tailor/v1/batch", `{"batch":[{"type":"track","event":"x"},{"type":"track","event":"Order Completed"}]}`, nil); rec.Code != 200 ||
		strings.TrimSpace(rec.Body.String()) != `{"success":true,"accepted":0,"ignored":1,"errors":[`+forbidden("batch[1].event", "Order Completed", purchase)+`]}` {
		t.Errorf("without a cookie: %d %s", rec.Code, rec.Body)
	}
	p := s.profile(id)
	if p.Purchases.Count != 0 || p.Purchases.Revenue != 0 {
		t.Errorf("a browser call made purchases: %+v", p.Purchases)
	}
	for _, name := range []string{"Order Refunded", "ORDER UPDATED", "Order Cancelled", "signed up", "Trial Started", store.EventPurchase} {
		if p.Counts[name] != 0 {
			t.Errorf("a browser call recorded %q: %v", name, p.Counts)
		}
	}
	if p.Counts["Checkout Started"] != 1 || p.Pages["/thanks"] != 1 {
		t.Errorf("the allowed events of the batch are missing: counts %v pages %v", p.Counts, p.Pages)
	}

	// The same events from a server, about the same visitor.
	anon := `"anonymousId":"` + id + `",`
	if rec := s.server("/_tailor/v1/batch", `{"batch":[{"type":"track",`+anon+`"event":"Order Completed",`+order+`},`+
		`{"type":"track",`+anon+`"event":"Order Refunded"},{"type":"track",`+anon+`"event":"Signed Up"}]}`); rec.Code != 200 ||
		strings.TrimSpace(rec.Body.String()) != `{"success":true,"accepted":3}` {
		t.Fatalf("server: %d %s", rec.Code, rec.Body)
	}
	p = s.profile(id)
	if p.Purchases.Count != 1 || p.Purchases.Revenue != 500 || p.Counts["Order Refunded"] != 1 || p.Counts["Signed Up"] != 1 {
		t.Errorf("server events: purchases %+v counts %v", p.Purchases, p.Counts)
	}
}

// TestCollectBrowserEventsByDefault: without Config.ServerEvents, browser
// calls may track any event but orders.
func TestCollectBrowserEventsByDefault(t *testing.T) {
	t.Parallel()
	s := newSite(t, nil, nil)
	ck, id := s.visitor()
	for _, ev := range []string{"Signed Up", "Product Added", "Checkout Started", "Orders Viewed"} {
		if rec := s.browser("/_tailor/v1/track", `{"event":"`+ev+`"}`, ck); rec.Code != 200 {
			t.Errorf("%s: %d %s", ev, rec.Code, rec.Body)
		}
	}
	if rec := s.browser("/_tailor/v1/track", `{"event":"Order Completed"}`, ck); rec.Code != 403 {
		t.Errorf("Order Completed: %d %s", rec.Code, rec.Body)
	}
	if p := s.profile(id); p.Counts["Signed Up"] != 1 || p.Counts["Orders Viewed"] != 1 || p.Purchases.Count != 0 {
		t.Errorf("counts %v purchases %+v", p.Counts, p.Purchases)
	}
}

func TestServerEventsConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{[]string{"ok", ""}, "Config.ServerEvents[1]: empty event name"},
		{[]string{strings.Repeat("e", 201)}, "Config.ServerEvents[0]: 201 bytes; the limit is 200"},
	} {
		_, err := collect.New(newP(t, memory.New(store.Limits{}), nil), collect.Config{ServerEvents: tc.names})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.names, err, tc.want)
		}
	}
}

// TestRepeatedIdentifyMergesOnce: a server identify with the same visitor
// and user, sent again after the user's profile has applied more events
// with message ids than it remembers, does not merge the anonymous
// history a second time.
func TestRepeatedIdentifyMergesOnce(t *testing.T) {
	t.Parallel()
	s := newSite(t, nil, nil)
	_, id := s.visitor()
	order := fmt.Sprintf(`{"type":"track","event":"Order Completed","anonymousId":%q,"messageId":"o-1","properties":{"revenue":100}}`, id)
	if rec := s.server("/_tailor/v1/track", order); rec.Code != 200 {
		t.Fatalf("track: %d %s", rec.Code, rec.Body)
	}
	identify := func(mid string) {
		t.Helper()
		body := fmt.Sprintf(`{"type":"identify","userId":"ann","anonymousId":%q,"messageId":%q}`, id, mid)
		if rec := s.server("/_tailor/v1/identify", body); rec.Code != 200 {
			t.Fatalf("identify: %d %s", rec.Code, rec.Body)
		}
	}
	identify("login-1")
	for i := range 600 {
		body := fmt.Sprintf(`{"type":"track","event":"click","userId":"ann","messageId":"m-%d"}`, i)
		if rec := s.server("/_tailor/v1/track", body); rec.Code != 200 {
			t.Fatalf("track %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	identify("login-2")
	if err := s.p.Alias(context.Background(), id, "ann"); err != nil {
		t.Fatal(err)
	}
	if err := s.p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	u, err := s.st.Load(context.Background(), "user:ann")
	if err != nil {
		t.Fatal(err)
	}
	if u.Purchases.Count != 1 || u.Purchases.Revenue != 100 {
		t.Fatalf("after three merges of one visitor: %d orders, revenue %v", u.Purchases.Count, u.Purchases.Revenue)
	}
}

// TestCollectorInsideHandlerWarns: mounted inside Handler, the endpoint
// still answers, and says once, in the log, to mount it beside.
func TestCollectorInsideHandlerWarns(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var logged strings.Builder
	logger := slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(b)
	}), nil))
	p := newP(t, memory.New(store.Limits{}), func(c *middleware.Config) { c.Logger = logger })
	c := newCollector(t, p, collect.Config{WriteKeys: []string{writeKey}})
	mux := http.NewServeMux()
	mux.Handle("/_tailor/", c)
	h := p.Handler(mux)
	for range 2 {
		r := httptest.NewRequest("POST", "/_tailor/v1/track", strings.NewReader(`{"userId":"u","event":"e"}`))
		r.Header.Set("Authorization", basic(writeKey))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != 200 {
			t.Fatalf("inside Handler: %d %s", rec.Code, rec.Body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logged.String(), "mounted inside Personalizer.Handler"); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, logged.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
