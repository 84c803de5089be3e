package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminPasswordKept: the first run creates the password file with
// mode 0600; later runs read the same password; a password written in the
// file is used; an empty file is an error that names it.
func TestAdminPasswordKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tailor.db.admin")
	pw, err := loadOrCreatePassword(path)
	if err != nil || len(pw) < 16 {
		t.Fatalf("first run: %q %v", pw, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file: %v %v, want mode 0600", fi, err)
	}
	again, err := loadOrCreatePassword(path)
	if err != nil || again != pw {
		t.Fatalf("second run: %q %v, want %q", again, err, pw)
	}
	if err := os.WriteFile(path, []byte("chosen one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := loadOrCreatePassword(path); err != nil || got != "chosen one" {
		t.Fatalf("written password: %q %v", got, err)
	}
	if err := os.WriteFile(path, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreatePassword(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("empty file: %v", err)
	}
	if _, err := loadOrCreatePassword(filepath.Join(t.TempDir(), "missing-dir", "x.admin")); err == nil {
		t.Fatal("a file that cannot be created: no error")
	}
}
