package integration_test

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/admin"
	"github.com/tailorhq/tailor/middleware/webhook"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/rules/experiment"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// adminScreenshot is where TestAdminInBrowser also saves the overview, for
// people to look at.
const adminScreenshot = "/tmp/tailor-admin-overview.png"

// adminSite is a personalised site with the dashboard at /_tailor/admin/
// behind basic auth, webhooks to a local receiver, and an experiment.
type adminSite struct {
	srv      *httptest.Server
	p        *middleware.Personalizer
	dash     *admin.Handler
	hooks    *webhook.Dispatcher
	user     string // a user id that one visitor identified as
	userVis  string // that visitor's id
	visitors []string
}

const adminUser, adminPassword = "admin", "correct horse battery staple"

func startAdminSite(t *testing.T) *adminSite {
	t.Helper()
	engine, err := rules.NewEngine(
		rules.Segment{Name: "customer", Description: "has bought something", Priority: 40, Rule: rules.Purchased(1)},
		rules.Segment{Name: "red-sox-fan", Description: "viewed Red Sox products at least twice", Priority: 30, Rule: rules.CategoryViews("red-sox", 2)},
		rules.Segment{Name: "returning", Description: "second visit or later", Priority: 20, Rule: rules.Visits(2)},
		rules.Segment{Name: "watercolourist", Description: "interested in watercolours", Priority: 10, Rule: rules.CategoryViews("watercolours", 1)},
	)
	if err != nil {
		t.Fatal(err)
	}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(receiver.Close)
	s := &adminSite{}
	s.p, err = middleware.New(middleware.Config{
		Keys: []middleware.KeyPair{middleware.GenerateKeyPair()}, Store: memory.New(store.Limits{}), Engine: engine,
		Logger: quietLogger(), WriteBehind: middleware.WriteBehindConfig{FlushInterval: 50 * time.Millisecond},
		VisitTimeout: 40 * time.Millisecond, // so that a pause of 50ms starts a second visit
	})
	if err != nil {
		t.Fatal(err)
	}
	hooks, err := webhook.New(webhook.Config{Personalizer: s.p, URL: receiver.URL + "/hooks", Secret: "webhook secret", Logger: quietLogger()})
	if err != nil {
		s.p.Close(context.Background())
		t.Fatal(err)
	}
	s.hooks = hooks
	t.Cleanup(func() { // the Personalizer first: its last changes are delivered
		s.p.Close(context.Background())
		hooks.Close(context.Background())
	})
	hero := &experiment.Experiment{Key: "hero", Variants: []experiment.Variant{{Key: "welcome", Weight: 1}, {Key: "red-sox", Weight: 1}}, Goals: []string{"purchase"}}
	s.dash, err = admin.New(admin.Config{
		Personalizer: s.p, Username: adminUser, Password: adminPassword, Webhooks: hooks,
		Experiments: admin.ExperimentFunc(func(context.Context) ([]experiment.Report, error) {
			return []experiment.Report{{Experiment: hero, Counts: map[experiment.Cell]experiment.Counts{
				{Variant: "welcome"}:                         {Visitors: 480, Conversions: 24},
				{Variant: "red-sox"}:                         {Visitors: 470, Conversions: 38},
				{Segment: "red-sox-fan", Variant: "welcome"}: {Visitors: 60, Conversions: 3},
				{Segment: "red-sox-fan", Variant: "red-sox"}: {Visitors: 58, Conversions: 12},
			}}}, nil
		}),
		SampleInterval: 100 * time.Millisecond, Location: time.UTC, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.dash.Close() })

	site := http.NewServeMux()
	site.HandleFunc("GET /products/{category}/{item}", func(w http.ResponseWriter, r *http.Request) {
		middleware.FromContext(r.Context()).Describe(r.PathValue("category"), r.PathValue("item"))
		fmt.Fprintln(w, "a product")
	})
	site.HandleFunc("GET /buy/{item}", func(w http.ResponseWriter, r *http.Request) {
		middleware.FromContext(r.Context()).Purchase(store.Item{ID: r.PathValue("item"), Price: 15})
	})
	site.HandleFunc("GET /login/{user}", func(w http.ResponseWriter, r *http.Request) {
		middleware.FromContext(r.Context()).Record(store.Event{Type: store.TypeIdentify, UserID: r.PathValue("user"),
			Traits: []byte(`{"email":"` + r.PathValue("user") + `@example.com","plan":"pro"}`)})
	})
	site.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, middleware.FromContext(r.Context()).ID())
	})
	root := http.NewServeMux()
	root.Handle(s.dash.Prefix(), s.dash) // outside the Personalizer: the dashboard is not a page view
	root.Handle("/", s.p.Handler(site))
	s.srv = httptest.NewServer(root)
	t.Cleanup(s.srv.Close)
	return s
}

// visit plays one visitor's requests and returns the visitor id.
func (s *adminSite) visit(t *testing.T, paths ...string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	id := ""
	for _, p := range append([]string{"/", "/"}, paths...) {
		if p == "pause" {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		req, _ := http.NewRequest("GET", s.srv.URL+p, nil)
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
		if p == "/" && id == "" {
			id = strings.TrimSpace(string(b))
		}
	}
	return id
}

// traffic makes visitors of every kind, in rounds, so that the charts have
// a history.
func (s *adminSite) traffic(t *testing.T, rounds int) {
	t.Helper()
	for r := range rounds {
		for i := range 5 {
			var paths []string
			switch i {
			case 0: // a Red Sox fan who buys
				paths = []string{"/products/red-sox/banner", "/products/red-sox/potato-head", "/buy/banner", "/"}
			case 1, 2: // Red Sox fans
				paths = []string{"/products/red-sox/banner", "/products/red-sox/cap", "/"}
			case 3: // a watercolourist who comes back
				paths = []string{"/products/watercolours/brushes", "pause", "/", "/"}
			case 4: // a customer
				paths = []string{"/buy/brushes", "/"}
			}
			if r == 0 && i == 0 {
				s.user = "u-fenway"
				paths = append(paths, "/login/"+s.user, "/")
			}
			id := s.visit(t, paths...)
			if r == 0 && i == 0 {
				s.userVis = id
			}
			s.visitors = append(s.visitors, id)
		}
		if err := s.p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(120 * time.Millisecond) // a measurement per round
	}
}

// adminGet fetches a dashboard page with the credentials, from Go.
func (s *adminSite) adminGet(t *testing.T, path string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", s.srv.URL+path, nil)
	req.SetBasicAuth(adminUser, adminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestAdminInBrowser: log in to the dashboard in Chromium, open every page,
// find a visitor by user id, export a segment, screenshot the overview, and
// check that no page loads anything from another origin.
func TestAdminInBrowser(t *testing.T) {
	ctx := newBrowser(t)
	s := startAdminSite(t)
	s.traffic(t, 6)
	// Wait for a measurement of every visitor.
	want := fmt.Sprintf(`id="visitors">%d<`, len(s.visitors))
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.adminGet(t, admin.DefaultPrefix), want); {
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard never measured %d visitors", len(s.visitors))
		}
		time.Sleep(50 * time.Millisecond)
	}
	base := s.srv.URL + admin.DefaultPrefix
	origin, _ := url.Parse(s.srv.URL)

	// Record every request the pages make, and every load that failed.
	var mu sync.Mutex
	var requests, failures []string
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			requests = append(requests, ev.Request.URL)
		case *network.EventLoadingFailed:
			if !ev.Canceled {
				failures = append(failures, fmt.Sprintf("%s: %s %s", ev.Type, ev.ErrorText, ev.BlockedReason))
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Call(c, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(c, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}

	// Without credentials: 401 and a basic challenge (checked from Go:
	// headless Chromium turns a challenge it cannot answer into a load error).
	if r, err := http.Get(base); err != nil || r.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("without credentials: %v %v", r, err)
	} else {
		r.Body.Close()
	}
	// Log in: the browser sends the basic credentials with every request.
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(adminUser+":"+adminPassword))
	if _, err := chromedp.Call(c, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
		t.Fatal(err)
	}

	// open navigates to a page, checks that it answered 200 and shows its
	// heading, and returns the text of sel.
	open := func(path, heading, sel string) string {
		t.Helper()
		resp, err := chromedp.Run(c, chromedp.NavigateResponse(base+path))
		if err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		if resp.Status != 200 {
			t.Fatalf("open %s: %d", path, resp.Status)
		}
		h1, err := chromedp.Run(c, chromedp.Text(chromedp.CSS("h1")))
		if err != nil || h1 != heading {
			t.Errorf("%s: heading %q (%v), want %q", path, h1, err, heading)
		}
		if sel == "" {
			return ""
		}
		text, err := chromedp.Run(c, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %s: %v", path, sel, err)
		}
		return text
	}

	// The overview: the counters, both charts, the segments; a screenshot.
	if got := open("", "Overview", "#visitors"); got != fmt.Sprint(len(s.visitors)) {
		t.Errorf("visitors kept: %q, want %d", got, len(s.visitors))
	}
	for _, sel := range []string{"#sizes-chart svg path", "#events-chart svg path", "#segments tbody tr"} {
		if err := chromedp.Do(c, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
			t.Errorf("overview: %s: %v", sel, err)
		}
	}
	lines, err := chromedp.Run(c, chromedp.Evaluate[int](`document.querySelectorAll("#sizes-chart svg path").length`))
	if err != nil || lines != 4 {
		t.Errorf("segment size chart: %d lines (%v), want 4", lines, err)
	}
	shot, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "admin-overview.png")
	for _, p := range []string{path, adminScreenshot} {
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Errorf("save the screenshot: %v", err)
		}
	}
	t.Logf("overview screenshot: %s (and %s), %d bytes", path, adminScreenshot, len(shot))

	// A segment, its members, and its CSV export fetched by the page.
	if got := open("segments/customer", "Segment customer", "#segment-name"); got != "customer" {
		t.Errorf("segment page name %q", got)
	}
	customers := 2 * 6 // the first and last kind of visitor, each round
	if n, err := chromedp.Run(c, chromedp.Evaluate[int](`document.querySelectorAll("#members tbody a.mono").length`)); err != nil || n != customers {
		t.Errorf("%d members listed (%v), want %d", n, err, customers)
	}
	href, err := chromedp.Run(c, chromedp.AttributeValue(chromedp.CSS("#export-csv"), "href"))
	if err != nil || !href.Exists {
		t.Fatalf("export link: %+v %v", href, err)
	}
	body, err := chromedp.Run(c, chromedp.Evaluate[string](`fetch(document.querySelector("#export-csv").href).then(r => {
		if (!r.ok) throw new Error("HTTP " + r.status);
		return r.text();
	})`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("fetch %s: %v", href.Value, err)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("export is not CSV: %v\n%s", err, body)
	}
	if len(recs) != customers+1 || recs[0][0] != "visitor_id" || recs[0][1] != "user_id" {
		t.Errorf("export: %d rows, header %v", len(recs)-1, recs[0])
	}
	// The customer who logged in is exported as a visitor, or as the user
	// their profile was merged into when the middleware merges profiles.
	userProfile, _ := store.UserProfileID(s.user)
	var exported []string
	for _, r := range recs[1:] {
		exported = append(exported, r[0])
		if !slices.Contains(s.visitors, r[0]) && r[0] != userProfile {
			t.Errorf("exported visitor %s is not one of the site's", r[0])
		}
		if (r[0] == s.userVis || r[0] == userProfile) && (r[1] != s.user || !strings.Contains(r[slices.Index(recs[0], "traits")], s.user+"@example.com")) {
			t.Errorf("export row of %s: %v", s.user, r)
		}
	}
	if !slices.Contains(exported, s.userVis) && !slices.Contains(exported, userProfile) {
		t.Errorf("the customer %s who logged in is not in the export", s.user)
	}

	// Find a visitor by user id, through the form.
	open("visitors", "Find a visitor", "")
	if err := chromedp.Do(c,
		chromedp.Click(chromedp.CSS(`form.search input[value="user"]`)),
		chromedp.SendKeys(chromedp.CSS("#find-q"), s.user),
		chromedp.Click(chromedp.CSS("#find")),
		chromedp.WaitVisible(chromedp.CSS("#visitor-id")),
	); err != nil {
		t.Fatal(err)
	}
	switch got, err := chromedp.Run(c, chromedp.Text(chromedp.CSS("#visitor-id"))); {
	case err != nil:
		t.Fatal(err)
	case got == userProfile: // the user's profile, with the visitor merged into it
		if aliases, err := chromedp.Run(c, chromedp.Text(chromedp.CSS("#aliases"))); err != nil || !strings.Contains(aliases, s.userVis) {
			t.Errorf("the user's profile does not list the visitor %s: %q %v", s.userVis, aliases, err)
		}
	case got != s.userVis:
		t.Errorf("found visitor %q, want %s or %s", got, s.userVis, userProfile)
	}
	in, err := chromedp.Run(c, chromedp.Text(chromedp.CSS("#in-segments")))
	if err != nil || !strings.HasPrefix(in, "In customer, red-sox-fan") || strings.Contains(in, "watercolourist") {
		t.Errorf("segments of the visitor: %q %v", in, err)
	}
	why, err := chromedp.Run(c, chromedp.Text(chromedp.CSS("#explanations")))
	if err != nil || !strings.Contains(why, "purchases.count >= 1") || !strings.Contains(why, "categories[red-sox]") {
		t.Errorf("explanations: %q %v", why, err)
	}

	// The other pages.
	if got := open("experiments", "Experiments", "#experiment-hero table"); !strings.Contains(got, "red-sox-fan") || !strings.Contains(got, "20.7%") {
		t.Errorf("experiments table: %q", got)
	}
	if n, err := chromedp.Run(c, chromedp.Evaluate[int](`document.querySelectorAll("#experiment-hero svg rect").length`)); err != nil || n != 4 {
		t.Errorf("experiment chart: %d bars (%v), want 4", n, err)
	}
	if got := open("rules", "Rules", "#rules"); !strings.Contains(got, "categories[watercolours] >= 1") {
		t.Errorf("rules table: %q", got)
	}
	if err := s.hooks.Close(context.Background()); err != nil { // deliver every webhook
		t.Fatal(err)
	}
	if got := open("webhooks", "Webhooks", "#deliveries"); !strings.Contains(got, "segment.entered") || !strings.Contains(got, "delivered") {
		t.Errorf("delivery log: %q", got)
	}
	if got := open("webhooks", "Webhooks", "#webhook-stats"); strings.Contains(got, "/hooks") {
		t.Errorf("the webhook target shows its path: %q", got)
	}

	// Every request of every page went to the dashboard's own origin, and
	// nothing was blocked.
	mu.Lock()
	defer mu.Unlock()
	if len(requests) < 10 {
		t.Errorf("only %d requests recorded", len(requests))
	}
	for _, r := range requests {
		u, err := url.Parse(r)
		if err != nil || u.Scheme != origin.Scheme || u.Host != origin.Host {
			t.Errorf("a page loaded %s, outside %s", r, s.srv.URL)
		}
	}
	for _, f := range failures {
		t.Errorf("a load failed: %s", f)
	}
}
