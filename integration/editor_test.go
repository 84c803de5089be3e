package integration_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/admin"
	"github.com/tailorhq/tailor/middleware/definitions"
	"github.com/tailorhq/tailor/middleware/slots"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// editorScreenshot is where TestEditorInBrowser saves the segment editor
// showing a problem, for people to look at.
const editorScreenshot = "/tmp/tailor-admin-editor.png"

// TestEditorInBrowser drives the dashboard's editor in Chromium: the form
// shows only the chosen rule's arguments (the editor's script runs under
// the dashboard's CSP), saving "visited /pricing twice this week" puts it
// in the draft, the JSON editor lists a problem at its line and column as
// it is typed, and publishing with a note reaches the engine and the
// audit log.
func TestEditorInBrowser(t *testing.T) {
	ctx := newBrowser(t)
	st := memory.New(store.Limits{})
	segs := &rules.Engine{}
	if err := segs.Reload([]byte(`{"segments": [{"name": "customer", "rule": {"purchased": {}}}]}`)); err != nil {
		t.Fatal(err)
	}
	sl := &slots.Engine{}
	defs, err := definitions.Open(context.Background(), definitions.Config{Store: st, Segments: segs, Slots: sl,
		Files: definitions.Content{Segments: `{"segments": [{"name": "customer", "rule": {"purchased": {}}}]}`}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer defs.Close()
	p, err := middleware.New(middleware.Config{Keys: []middleware.KeyPair{middleware.GenerateKeyPair()}, Store: st, Engine: segs, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	dash, err := admin.New(admin.Config{Personalizer: p, Definitions: defs, Logger: quietLogger(),
		Users: []admin.User{{Name: "ed", Password: "ed-pw", Role: admin.Editor}}})
	if err != nil {
		t.Fatal(err)
	}
	defer dash.Close()
	mux := http.NewServeMux()
	mux.Handle(dash.Prefix(), dash)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	base := srv.URL + dash.Prefix()

	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Call(c, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("ed:ed-pw"))
	if _, err := chromedp.Call(c, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(c, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	eval := func(js string) bool {
		t.Helper()
		ok, err := chromedp.Run(c, chromedp.Evaluate[bool](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return ok
	}

	// The form: the script shows the chosen kind's arguments only.
	if err := chromedp.Do(c, chromedp.Navigate(base+"definitions/segments/new"), chromedp.WaitVisible(chromedp.CSS("#arg-pageVisited-path"))); err != nil {
		t.Fatal(err)
	}
	if !eval(`document.getElementById("kind-recency").hidden && !document.getElementById("kind-pageVisited").hidden`) {
		t.Errorf("the fieldsets of the other kinds are not hidden: editor.js did not run")
	}
	if err := chromedp.Do(c,
		chromedp.SetValue(chromedp.CSS("#seg-name"), "pricing-curious"),
		chromedp.SetValue(chromedp.CSS("#seg-description"), "visited /pricing twice this week"),
		chromedp.SetValue(chromedp.CSS("#arg-pageVisited-path"), "/pricing"),
		chromedp.SetValue(chromedp.CSS("#arg-pageVisited-min"), "2"),
		chromedp.SetValue(chromedp.CSS("#arg-pageVisited-within"), "7d"),
		chromedp.Click(chromedp.CSS("#save-form")),
		chromedp.WaitVisible(chromedp.CSS("#done")),
	); err != nil {
		t.Fatal(err)
	}
	if h1, err := chromedp.Run(c, chromedp.Text(chromedp.CSS("h1"))); err != nil || h1 != "Segment pricing-curious" {
		t.Errorf("after saving: %q %v", h1, err)
	}
	dr, err := defs.Draft(context.Background())
	if err != nil || !strings.Contains(dr.Content.Segments, `"pageVisited"`) || dr.By != "ed" {
		t.Fatalf("draft: %+v %v", dr, err)
	}

	// The JSON editor: a problem shows as it is typed, at its line.
	bad := "{\n  \"name\": \"pricing-curious\",\n  \"rule\": {\"pageVisited\": {\"path\": \"/pricing\", \"within\": \"7days\"}}\n}"
	if err := chromedp.Do(c,
		chromedp.SetValue(chromedp.CSS("#segment-json"), bad),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("segment-json").dispatchEvent(new Event("input"))`),
		chromedp.WaitVisible(chromedp.CSS("#json-problems li")),
	); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(c, chromedp.Text(chromedp.CSS("#json-problems li")))
	if err != nil || !strings.Contains(text, "segment line 3, column") || !strings.Contains(text, "/rule/pageVisited/within") {
		t.Errorf("live problem: %q %v", text, err)
	}
	if shot, err := chromedp.Run(c, chromedp.FullScreenshot(100)); err == nil {
		if err := os.WriteFile(editorScreenshot, shot, 0o644); err != nil {
			t.Errorf("save the screenshot: %v", err)
		}
		t.Logf("editor screenshot: %s, %d bytes", editorScreenshot, len(shot))
	}

	// Publish with a note: the engine serves it, the audit log says who.
	if err := chromedp.Do(c,
		chromedp.Navigate(base+"definitions/publish"),
		chromedp.WaitVisible(chromedp.CSS("#publish-note")),
		chromedp.SetValue(chromedp.CSS("#publish-note"), "pricing campaign"),
		chromedp.Click(chromedp.CSS("#publish-button")),
		chromedp.WaitVisible(chromedp.CSS("#version-1")),
	); err != nil {
		t.Fatal(err)
	}
	row, err := chromedp.Run(c, chromedp.Text(chromedp.CSS("#version-1")))
	if err != nil || !strings.Contains(row, "ed") || !strings.Contains(row, "pricing campaign") {
		t.Errorf("audit log row: %q %v", row, err)
	}
	if len(segs.Segments()) != 2 {
		t.Errorf("the engine serves %d segments", len(segs.Segments()))
	}
}
