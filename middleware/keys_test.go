package middleware_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tailorhq/tailor/middleware"
)

func TestLoadOrCreateKeys(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tailor.keys")
	first, err := middleware.LoadOrCreateKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || len(first[0].Hash) != 32 || len(first[0].Block) != 32 {
		t.Fatalf("created keys %+v", first)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode %v, want 0600", mode)
	}
	again, err := middleware.LoadOrCreateKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(again[0].Hash) != string(first[0].Hash) || string(again[0].Block) != string(first[0].Block) {
		t.Fatal("the keys read back differ from those created")
	}
	// The keys work: New accepts them.
	if _, err := middleware.New(middleware.Config{Keys: again}); err == nil || strings.Contains(err.Error(), "Keys") {
		t.Errorf("New with the loaded keys (no store): %v", err)
	}
}

func TestLoadOrCreateKeysRefusesBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct{ name, content, want string }{
		{"syntax", `{"keys":[`, "unexpected end of JSON input"},
		{"empty", `{"keys":[]}`, "no keys"},
		{"short", `{"keys":[{"hash":"AAAA","block":"AAAA"}]}`, "keys[0].hash: 3 bytes"},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := middleware.LoadOrCreateKeys(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s and saying %q", tc.name, err, path, tc.want)
		}
		if b, _ := os.ReadFile(path); string(b) != tc.content {
			t.Errorf("%s: the bad file was changed", tc.name)
		}
	}
	if _, err := middleware.LoadOrCreateKeys(filepath.Join(dir, "no-such-dir", "k")); err == nil {
		t.Error("a key file in a missing directory was accepted")
	}
	// A link to a missing file (a secret mount between two versions) is
	// not replaced: an error names it, at once.
	link := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "missing"), link); err != nil {
		t.Fatal(err)
	}
	if _, err := middleware.LoadOrCreateKeys(link); err == nil || !strings.Contains(err.Error(), link) {
		t.Errorf("a dangling link: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "missing")); err == nil {
		t.Error("the link's target was created")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".tailor-keys-*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

// Processes that start at once on a fresh machine agree on one key file.
func TestLoadOrCreateKeysConcurrently(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tailor.keys")
	const n = 8
	got := make([][]middleware.KeyPair, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := middleware.LoadOrCreateKeys(path)
			if err != nil {
				t.Error(err)
			}
			got[i] = k
		}()
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if len(got[i]) != 1 || len(got[0]) != 1 || string(got[i][0].Hash) != string(got[0][0].Hash) {
			t.Fatalf("caller %d got other keys than caller 0", i)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("%d files beside the key file: temporary files were left", len(entries)-1)
	}
}
