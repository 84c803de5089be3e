package admin_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestPublishWhatWasReviewed: an editor opens the publish page and reviews
// its diff; another editor then changes the draft (same base); publishing
// from the page reviewed is refused, rather than publishing, under the
// first editor's name and note, a change that was not on the page.
func TestPublishWhatWasReviewed(t *testing.T) {
	const prefix = "/_tailor/admin/"
	d := newEditorDash(t, nil)
	resp, body := d.do(t, "POST", prefix+"definitions/segments/new", "ed", pricingForm(), nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", resp.StatusCode, body)
	}
	_, page := d.do(t, "GET", prefix+"definitions/publish", "ed", nil, nil)
	form := url.Values{"note": {"pricing campaign"}}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`).FindAllStringSubmatch(page, -1) {
		form.Set(m[1], m[2])
	}
	if form.Get("base") != "0" {
		t.Fatalf("the publish form's hidden fields: %v", form)
	}

	// Another editor takes the new segment out of the draft again.
	dr := d.draft(t)
	other := dr
	other.Content.Segments = filesSegments
	other.By = "someone else"
	if err := d.defs.SaveDraft(context.Background(), other); err != nil {
		t.Fatal(err)
	}

	resp, body = d.do(t, "POST", prefix+"definitions/publish", "ed", form, nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "changed since this page was shown") {
		t.Errorf("publishing a draft changed since it was reviewed: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if hist, _ := d.defs.History(context.Background()); len(hist) != 0 {
		t.Fatalf("published %+v, from a page that showed another draft", hist)
	}
	// The page shown again has the draft as it is now: publishing from
	// it goes through.
	_, page = d.do(t, "GET", prefix+"definitions/publish", "ed", nil, nil)
	form = url.Values{"note": {"reviewed"}}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`).FindAllStringSubmatch(page, -1) {
		form.Set(m[1], m[2])
	}
	if resp, body := d.do(t, "POST", prefix+"definitions/publish", "ed", form, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("publish after review: %d\n%s", resp.StatusCode, body)
	}
	if _, c, _ := d.defs.Current(context.Background()); c.Segments != other.Content.Segments {
		t.Errorf("published %s", c.Segments)
	}
}
