package admin_test

import (
	"html"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/admin"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// previewed opens link on a site of p and returns the id of the profile
// the preview shows and its segments.
func previewed(t *testing.T, p *middleware.Personalizer, link string) (string, []string) {
	t.Helper()
	var v *middleware.Visitor
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { v = middleware.FromContext(r.Context()) }))
	req := httptest.NewRequest("GET", html.UnescapeString(link), nil)
	req.Header.Set("User-Agent", "Mozilla/5.0")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if v.Preview() == nil {
		t.Fatalf("%s is not a preview", link)
	}
	if v.Preview().Profile != v.Profile().ID {
		t.Errorf("preview of %q shows profile %q", v.Preview().Profile, v.Profile().ID)
	}
	return v.Preview().Profile, v.Segments()
}

var (
	previewLinkRE = regexp.MustCompile(`id="preview-link" class="button" href="([^"]+)"`)
	memberRowRE   = regexp.MustCompile(`<tr><td><a class="mono" href="` + prefix + `visitors/([0-9a-f]{32})">.*?</td></tr>`)
	previewAsRE   = regexp.MustCompile(`class="preview-as" href="([^"]+)">preview as this visitor</a>`)
)

// The segment page links to a preview as each member shown, and its
// preview is as its first member; an empty segment's shows an empty
// profile.
func TestSegmentPreviewLinks(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	seed(t, st, 9)
	d := newDash(t, st, nil)
	_, body := d.get(t, prefix+"segments/customer")
	rows := memberRowRE.FindAllStringSubmatch(body, -1)
	if len(rows) != 3 {
		t.Fatalf("%d member rows, want 3", len(rows))
	}
	for _, row := range rows {
		m := previewAsRE.FindStringSubmatch(row[0])
		if m == nil {
			t.Fatalf("no preview link in the row of %s: %s", row[1], row[0])
		}
		if id, segs := previewed(t, d.p, m[1]); id != row[1] || strings.Join(segs, ",") != "customer" {
			t.Errorf("the row of %s previews %q in %v", row[1], id, segs)
		}
	}
	m := previewLinkRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no segment preview link")
	}
	if id, _ := previewed(t, d.p, m[1]); id != rows[0][1] {
		t.Errorf("the segment's preview is as %q, want its first member %s", id, rows[0][1])
	}
	if !strings.Contains(body, "with the history of the member") {
		t.Error("the page does not say whose history the preview shows")
	}

	// No member of "returning": an empty profile, and the page says so.
	_, body = d.get(t, prefix+"segments/returning")
	m = previewLinkRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no preview link of an empty segment")
	}
	if id, segs := previewed(t, d.p, m[1]); id != "" || strings.Join(segs, ",") != "returning" {
		t.Errorf("empty segment's preview: profile %q in %v", id, segs)
	}
	if previewAsRE.MatchString(body) || !strings.Contains(body, "no member was found") {
		t.Error("empty segment: member preview links, or no word of the empty profile")
	}
}

// onlySource is a Source that cannot preview as a profile.
type onlySource struct{ admin.Source }

// A Source without PreviewLinkAs still gets the segment's preview link,
// with an empty profile, and no member links.
func TestSegmentPreviewWithoutPreviewAs(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	seed(t, st, 9)
	d := newDash(t, st, func(c *admin.Config) { c.Personalizer = onlySource{c.Personalizer} })
	_, body := d.get(t, prefix+"segments/customer")
	if n := len(memberRowRE.FindAllString(body, -1)); n != 3 {
		t.Fatalf("%d member rows, want 3", n)
	}
	if previewAsRE.MatchString(body) {
		t.Error("member preview links from a source that cannot make them")
	}
	m := previewLinkRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no segment preview link")
	}
	if id, _ := previewed(t, d.p, m[1]); id != "" {
		t.Errorf("preview as %q", id)
	}
}
