package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/store/memory"
)

func TestCookieRoundTripTLS(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, nil)
	srv := httptest.NewTLSServer(p.Handler(echo))
	defer srv.Close()
	c := newClient(t, srv)

	resp, body := c.get("/")
	id, _, _ := strings.Cut(body, " ")
	if len(id) != 32 {
		t.Fatalf("visitor id %q, want 32 hex digits", id)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("got %d cookies, want 1", len(cookies))
	}
	ck := cookies[0]
	if ck.Name != "tailor" || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.MaxAge != 400*24*3600 {
		t.Errorf("cookie attributes: %+v", ck)
	}
	if strings.Contains(ck.Value, id) {
		t.Error("the cookie shows the visitor id in clear")
	}
	for i := range 3 {
		resp, body = c.get("/")
		if got, _, _ := strings.Cut(body, " "); got != id {
			t.Fatalf("returning visitor got id %q, want %q", got, id)
		}
		// On the return, the cookie is re-issued without the first page
		// view; after that a fresh valid cookie is left alone.
		if n := len(resp.Cookies()); (i == 0) != (n == 1) || n > 1 {
			t.Errorf("request %d: cookies %v", i+2, resp.Cookies())
		}
		if i == 0 && len(resp.Cookies()[0].Value) >= len(ck.Value) {
			t.Errorf("re-issued cookie is not shorter: %d bytes", len(resp.Cookies()[0].Value))
		}
	}
	if s := p.Stats(); s.Returned != 1 {
		t.Errorf("Returned = %d, want 1", s.Returned)
	}
	if s := p.Stats(); s.NewVisitors != 1 || s.RejectedCookies != 0 {
		t.Errorf("stats: %+v", s)
	}
}

func TestSecureOnlyOverTLSUnlessConfigured(t *testing.T) {
	t.Parallel()
	for _, secure := range []bool{false, true} {
		p := newP(t, nil, func(c *middleware.Config) { c.Cookie.Secure = secure })
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("User-Agent", browserUA)
		p.Handler(echo).ServeHTTP(rec, req)
		cs := rec.Result().Cookies()
		if len(cs) != 1 || cs[0].Secure != secure {
			t.Errorf("Secure=%v over plain HTTP: cookies %v", secure, cs)
		}
	}
}

func TestBadCookiesGetNewVisitor(t *testing.T) {
	t.Parallel()
	p := newP(t, nil, nil)
	h := p.Handler(echo)
	first := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("User-Agent", browserUA)
	h.ServeHTTP(first, req)
	good := first.Result().Cookies()[0].Value

	other := newP(t, nil, func(c *middleware.Config) { c.Keys = []middleware.KeyPair{middleware.GenerateKeyPair()} })
	foreignRec := httptest.NewRecorder()
	other.Handler(echo).ServeHTTP(foreignRec, req)
	foreign := foreignRec.Result().Cookies()[0].Value

	flip := []byte(good)
	flip[len(flip)/2] ^= 1
	for name, value := range map[string]string{
		"tampered":  string(flip),
		"truncated": good[:len(good)-5],
		"foreign":   foreign,
		"garbage":   "not-a-cookie",
		"huge":      strings.Repeat("A", 4000),
	} {
		t.Run(name, func(t *testing.T) {
			before := p.Stats().RejectedCookies
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("User-Agent", browserUA)
			req.AddCookie(&http.Cookie{Name: "tailor", Value: value})
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Fatalf("status %d, want 200", rec.Code)
			}
			if len(rec.Result().Cookies()) != 1 {
				t.Fatal("no new cookie issued")
			}
			if p.Stats().RejectedCookies != before+1 {
				t.Error("rejected cookie not counted")
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	st := memory.New(storeLimits)
	oldKeys, newKeys := middleware.GenerateKeyPair(), middleware.GenerateKeyPair()
	before := newP(t, st, func(c *middleware.Config) { c.Keys = []middleware.KeyPair{oldKeys} })
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("User-Agent", browserUA)
	before.Handler(echo).ServeHTTP(rec, req)
	oldCookie := rec.Result().Cookies()[0]
	id := strings.Fields(rec.Body.String())[0]

	rotated := newP(t, st, func(c *middleware.Config) { c.Keys = []middleware.KeyPair{newKeys, oldKeys} })
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("GET", "/", nil)
	req.Header.Set("User-Agent", browserUA)
	req.AddCookie(oldCookie)
	rotated.Handler(echo).ServeHTTP(rec, req)
	if got := strings.Fields(rec.Body.String())[0]; got != id {
		t.Fatalf("cookie under the older key: visitor %q, want %q", got, id)
	}
	cs := rec.Result().Cookies()
	if len(cs) != 1 {
		t.Fatal("cookie under the older key was not re-issued")
	}

	// The re-issued cookie works with the new key alone.
	after := newP(t, st, func(c *middleware.Config) { c.Keys = []middleware.KeyPair{newKeys} })
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("GET", "/", nil)
	req.Header.Set("User-Agent", browserUA)
	req.AddCookie(cs[0])
	after.Handler(echo).ServeHTTP(rec, req)
	if got := strings.Fields(rec.Body.String())[0]; got != id {
		t.Fatalf("re-issued cookie under the new key: visitor %q, want %q", got, id)
	}
	if after.Stats().RejectedCookies != 0 {
		t.Fatal("re-issued cookie was rejected")
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	_, err := middleware.New(middleware.Config{
		Keys:  []middleware.KeyPair{{Hash: make([]byte, 16), Block: make([]byte, 24)}},
		Store: memory.New(storeLimits),
	})
	if err == nil {
		t.Fatal("New accepted keys of the wrong length")
	}
	for _, want := range []string{"Config.Keys[0].Hash: 16 bytes", "Config.Keys[0].Block: 24 bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := middleware.New(middleware.Config{}); err == nil || !strings.Contains(err.Error(), "Config.Keys") || !strings.Contains(err.Error(), "Config.Store") {
		t.Errorf("empty config: %v", err)
	}
	if _, err := middleware.New(middleware.Config{Keys: []middleware.KeyPair{testKeys}, Store: memory.New(storeLimits), WriteBehind: middleware.WriteBehindConfig{FlushInterval: -1}}); err == nil || !strings.Contains(err.Error(), "Config.WriteBehind.FlushInterval") {
		t.Errorf("negative FlushInterval: %v", err)
	}
	// A store variable of a concrete type, never assigned: a nil pointer
	// in a non-nil interface.
	var st *memory.Store
	if _, err := middleware.New(middleware.Config{Keys: []middleware.KeyPair{testKeys}, Store: st}); err == nil || !strings.Contains(err.Error(), "Config.Store: required") {
		t.Errorf("nil *memory.Store: %v", err)
	}
}
