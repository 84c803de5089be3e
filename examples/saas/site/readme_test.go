package site_test

import (
	"os"
	"strings"
	"testing"
)

// TestREADME: every line of the code that the README shows in "On chi and
// templ" is a line of this package's source, so that the README's wiring
// stays the example's.
func TestREADME(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## On chi and templ")
	if !ok {
		t.Fatal(`README.md has no "## On chi and templ"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	src := map[string]bool{}
	for _, f := range []string{"site.go", "layout.templ", "pages.templ"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			src[strings.TrimSpace(line)] = true
		}
	}
	blocks := 0
	for _, part := range strings.Split(section, "```")[1:] {
		lang, code, _ := strings.Cut(part, "\n")
		if lang != "go" && lang != "templ" {
			continue // the text between two blocks
		}
		blocks++
		for line := range strings.SplitSeq(code, "\n") {
			if l := strings.TrimSpace(line); l != "" && !src[l] {
				t.Errorf("README's %s line %q is not in the example's source", lang, l)
			}
		}
	}
	if blocks != 3 {
		t.Errorf("found %d code blocks under On chi and templ, want 3", blocks)
	}
}
