package admin_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/middleware/definitions"
)

// TestVersionPage: a version's page (linked from the draft bar and the
// audit log) shows the version, what restoring it changes, and the form
// that restores it; before, it failed to render ("no such template diff").
func TestVersionPage(t *testing.T) {
	const prefix = "/_tailor/admin/"
	d := newEditorDash(t, nil)
	dr := d.draft(t)
	c := definitions.Content{Segments: strings.Replace(filesSegments, `"customer"`, `"buyer"`, 1), Slots: ""}
	if _, err := d.defs.Publish(context.Background(), c, dr.Base, "ann", "rename"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"definitions/versions/0", []string{`id="diff"`, `id="restore-form"`, `id="version-segments"`}},
		{"definitions/versions/1", []string{`id="version"`, "rename", `id="version-segments"`}},
	} {
		resp, body := d.do(t, "GET", prefix+tc.path, "ed", nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d %.300s", tc.path, resp.StatusCode, body)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %s", tc.path, w)
			}
		}
	}
}
