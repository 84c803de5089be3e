package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// browser is a client with a cookie jar, as a visitor's browser.
type browser struct {
	t       *testing.T
	c       *http.Client
	base    string
	country string
}

func newBrowser(t *testing.T, base, country string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, c: &http.Client{Jar: jar}, base: base, country: country}
}

func (b *browser) do(method, path string, form url.Values) string {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0") // not a crawler
	if b.country != "" {
		req.Header.Set("X-Country", b.country)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("%s %s: %s\n%s", method, path, resp.Status, out)
	}
	return string(out)
}

func startSite(t *testing.T, segments string) *httptest.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := newSite(ctx, segments)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.handler())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		s.close()
	})
	return srv
}

func TestSiteFollowsTheWeather(t *testing.T) {
	srv := startSite(t, "")

	// A visitor from Norway, who did not say where they are: Oslo.
	nor := newBrowser(t, srv.URL, "NO")
	if page := nor.do("GET", "/", nil); !strings.Contains(page, "hot soup, delivered") || !strings.Contains(page, "<b>cold-here</b>") {
		t.Errorf("home from Norway:\n%s", page)
	}
	// They say they are in Madrid: the city trait wins over the country.
	if page := nor.do("POST", "/city", url.Values{"city": {"Madrid"}}); !strings.Contains(page, "iced tea") || !strings.Contains(page, `value="Madrid"`) {
		t.Errorf("home in Madrid:\n%s", page)
	}
	// Back in Oslo, they order a soup: a soup lover.
	nor.do("POST", "/city", url.Values{"city": {"oslo"}})
	if page := nor.do("POST", "/order", url.Values{"dish": {"tomato soup"}}); !strings.Contains(page, "your usual soup") {
		t.Errorf("home after a soup:\n%s", page)
	}
	why := nor.do("GET", "/why", nil)
	for _, want := range []string{
		"cold-here: in\n",
		"    pass temperature[oslo] (city from traits.city) = -3, want < 5\n",
		"hot-here: out (in cold-here instead)\n",
		"soup-lover: in\n",
		`    pass events[order] where {"dish":{"$regex":"soup$"}} = 1, want >= 1`,
		"4 segments from segments.json",
	} {
		if !strings.Contains(why, want) {
			t.Errorf("/why lacks %q:\n%s", want, why)
		}
	}

	// A visitor whose city is unknown gets the usual offer.
	anon := newBrowser(t, srv.URL, "")
	if page := anon.do("GET", "/", nil); !strings.Contains(page, "special: the chef") || !strings.Contains(page, "none yet") {
		t.Errorf("home without a city:\n%s", page)
	}
	if why := anon.do("GET", "/why", nil); !strings.Contains(why, "fail temperature (no city) = null, want < 5") {
		t.Errorf("/why without a city:\n%s", why)
	}
}

func TestSiteReloadsItsSegments(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "segments.json")
	write := func(s string) {
		if err := os.WriteFile(path+".tmp", []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	write(`[{"name": "hot-here", "rule": {"temperature": {"above": 20}}}]`)
	srv := startSite(t, path)
	b := newBrowser(t, srv.URL, "ES")
	if page := b.do("GET", "/", nil); !strings.Contains(page, "iced tea") {
		t.Errorf("home:\n%s", page)
	}
	write(`[{"name": "hot-here", "rule": {"temperature": {"above": "warm"}}}]`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		why := b.do("GET", "/why", nil)
		if strings.Contains(why, "the last reload failed") {
			if !strings.Contains(why, path+`:1:57: /0/rule/temperature/above: plugin "temperature": json: cannot unmarshal string into Go struct field temperatureArgs.above of type float64`) ||
				!strings.Contains(why, "hot-here: in") {
				t.Errorf("/why after a bad file:\n%s", why)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bad file was not noticed:\n%s", why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTemperaturePlugin(t *testing.T) {
	w := newStubWeather()
	reg := rules.NewRegistry()
	if err := reg.Register("temperature", temperatureFactory(w)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ src, want string }{
		{`{"below": 5}`, ""},
		{`{"above": 22, "cityTrait": "address.city", "refresh": "1m"}`, ""},
		{`{}`, `f.json:1:40: /0/rule/temperature: plugin "temperature": want one of "below" and "above", in °C`},
		{`{"below": 1, "above": 2}`, `want one of "below" and "above"`},
		{`{"below": "cold"}`, `f.json:1:50: /0/rule/temperature/below: plugin "temperature": json: cannot unmarshal string`},
		{`{"below": 1, "town": "x"}`, `f.json:1:40: /0/rule/temperature: plugin "temperature": json: unknown field "town"`},
		{`{"below": 1, "refresh": "soon"}`, `refresh: want a positive duration such as "15m", not "soon"`},
	} {
		_, err := rules.Parse([]byte(`[{"name": "s", "rule": {"temperature": `+tc.src+`}}]`), rules.Filename("f.json"), rules.Plugins(reg))
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.src, err, tc.want)
		}
	}

	set, err := rules.Parse([]byte(`[{"name": "cold", "rule": {"temperature": {"below": 5, "cityTrait": "address.city"}}}]`), rules.Plugins(reg))
	if err != nil {
		t.Fatal(err)
	}
	e := &rules.Engine{}
	e.Load(set)
	now := time.Date(2026, time.January, 10, 12, 0, 0, 0, time.UTC)
	p := store.New("v")
	p.Apply(store.Limits{}, store.Event{ID: "a:1", Type: store.TypeIdentify, Time: now, Traits: json.RawMessage(`{"address": {"city": "Paris"}}`)})
	in := func() *rules.Input { return &rules.Input{Profile: p, Request: rules.Facts{Country: "NO"}, Now: now} }
	var m rules.Memo
	at := func(d time.Duration, country string) *rules.Input {
		return &rules.Input{Profile: p, Request: rules.Facts{Country: country}, Now: now.Add(d)}
	}
	if segs, _ := e.ClassifyMemo(&m, in()); len(segs) != 0 {
		t.Errorf("Paris at 12°C: %v", segs)
	}
	// The weather changes: the engine re-evaluates after the refresh, and
	// whatever the country (the city comes from the trait).
	w.set("Paris", 2)
	if segs, classified := e.ClassifyMemo(&m, at(10*time.Minute, "NO")); classified || len(segs) != 0 {
		t.Errorf("before the refresh: %v, classified %v", segs, classified)
	}
	if _, classified := e.ClassifyMemo(&m, at(10*time.Minute, "SE")); !classified {
		t.Error("another country did not classify again")
	}
	if segs, classified := e.ClassifyMemo(&m, at(25*time.Minute, "SE")); !classified || len(segs) != 1 {
		t.Errorf("after the refresh: %v, classified %v", segs, classified)
	}
	if got := e.Classify(in()); len(got) != 1 {
		t.Errorf("Paris at 2°C: %v", got)
	}
	// Without the trait, the country's capital.
	if got := e.Classify(&rules.Input{Request: rules.Facts{Country: "NO"}, Now: now}); len(got) != 1 {
		t.Errorf("Oslo: %v", got)
	}
	if got := e.Classify(&rules.Input{Request: rules.Facts{Country: "EG"}, Now: now}); len(got) != 0 {
		t.Errorf("Cairo: %v", got)
	}
}
