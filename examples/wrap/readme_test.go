package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADME: the README's first example is this program, as printed, so
// that it compiles and checks every error.
func TestREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## Wrap an existing handler")
	if !ok {
		t.Fatal(`README.md has no "## Wrap an existing handler"`)
	}
	_, block, ok := strings.Cut(rest, "```go\n")
	if !ok {
		t.Fatal("no Go block under Wrap an existing handler")
	}
	block, _, _ = strings.Cut(block, "```\n")
	// The program's doc comment is not printed in the README.
	_, prog, _ := strings.Cut(string(src), "package main\n")
	if want := "package main\n" + prog; block != want {
		t.Errorf("the README's example differs from examples/wrap/main.go:\n--- README\n%s\n--- main.go\n%s", block, want)
	}
}
