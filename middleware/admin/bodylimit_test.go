package admin_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestPostTooLarge: a form larger than the dashboard accepts is refused as
// such (413, saying so), and changes nothing; before, its fields read as
// empty ("file: want ...", "the segments file is empty"), and a multipart
// body was spooled to disk whatever its size.
func TestPostTooLarge(t *testing.T) {
	d := newEditorDash(t, nil)
	before := d.draft(t)
	huge := `{"segments": [` + strings.Repeat(" ", 11<<20) + `]}`
	for _, path := range []string{"/_tailor/admin/definitions/validate", "/_tailor/admin/definitions/json"} {
		resp, body := d.do(t, "POST", path, "ed", url.Values{"file": {"segments"}, "text": {huge}}, nil)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "larger than") {
			t.Errorf("POST %s of 11 MiB: %d %.300s", path, resp.StatusCode, body)
		}
	}

	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("file", "segments")
	fw, _ := mw.CreateFormFile("upload", "big.bin")
	fw.Write(bytes.Repeat([]byte{'x'}, 40<<20))
	mw.Close()
	req, _ := http.NewRequest("POST", d.srv.URL+"/_tailor/admin/definitions/json", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", d.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.SetBasicAuth("ed", "ed-pw")
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("multipart POST of 40 MiB: %d", resp.StatusCode)
	}

	if after := d.draft(t); after.Content != before.Content {
		t.Errorf("the draft changed")
	}
	// A form of ordinary size goes through.
	resp, body := d.do(t, "POST", "/_tailor/admin/definitions/validate", "ed", url.Values{"file": {"segments"}, "text": {filesSegments}}, nil)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Errorf("validate of the files' segments: %d %s", resp.StatusCode, body)
	}
}
