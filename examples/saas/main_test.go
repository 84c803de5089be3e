package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRun: the command serves the site, prints the dashboard's password
// and the CRM's curl command with the write key, and stops cleanly when
// its context ends (checked by start's cleanup).
func TestRun(t *testing.T) {
	s := start(t)
	req, _ := http.NewRequest("GET", s.URL+"/pricing", nil)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `data-slot="cta"`) {
		t.Fatalf("GET /pricing: %s\n%s", resp.Status, body)
	}
	for _, want := range []string{
		"dashboard " + s.URL + "/_tailor/admin/ user admin password secret",
		"curl -u " + testWriteKey + ": " + s.URL + "/_tailor/v1/identify",
	} {
		// Printed after the line that start waits for: wait for it too.
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(s.log(), want) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(s.log(), want) {
			t.Errorf("the output does not say %q:\n%s", want, s.log())
		}
	}
}

// TestRandomSecrets: without a write key or a password, the run makes
// them up, different each time.
func TestRandomSecrets(t *testing.T) {
	a, b := random(), random()
	if len(a) < 20 || a == b {
		t.Fatalf("random: %q and %q", a, b)
	}
}
