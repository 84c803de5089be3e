package middleware

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gorilla/securecookie"
)

// A KeyPair holds the keys of the visitor cookie: Hash signs it with
// HMAC-SHA256, Block encrypts it with AES-256.
type KeyPair struct {
	Hash  []byte `json:"hash"`  // 32 or 64 random bytes
	Block []byte `json:"block"` // 32 random bytes
}

// GenerateKeyPair returns a new random cookie key pair.
func GenerateKeyPair() KeyPair {
	return KeyPair{Hash: securecookie.GenerateRandomKey(32), Block: securecookie.GenerateRandomKey(32)}
}

// keyFile is the JSON form of the cookie keys, newest first, each key in
// base64: {"keys":[{"hash":"...","block":"..."}]}.
type keyFile struct {
	Keys []KeyPair `json:"keys"`
}

// LoadOrCreateKeys reads the cookie keys from the JSON file at path,
// newest first, creating the file with one new pair (mode 0600) if it does
// not exist. Keep the file secret and stable: new keys make every
// visitor's cookie unreadable, and so every visitor new. To rotate, put a
// new pair first and keep the old ones after it for at least a cookie's
// lifetime. Two processes that start at once on a fresh machine agree on
// the file: one creates it, the other reads it.
func LoadOrCreateKeys(path string) ([]KeyPair, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKeys(path)
	}
	if err != nil {
		return nil, fmt.Errorf("tailor: read cookie keys: %w", err)
	}
	return parseKeys(path, b)
}

// parseKeys reads the key file b, read from path.
func parseKeys(path string, b []byte) ([]KeyPair, error) {
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, fmt.Errorf("tailor: cookie keys %s: %w", path, err)
	}
	if len(kf.Keys) == 0 {
		return nil, fmt.Errorf("tailor: cookie keys %s: no keys", path)
	}
	for i, k := range kf.Keys {
		if n := len(k.Hash); n != 32 && n != 64 {
			return nil, fmt.Errorf("tailor: cookie keys %s: keys[%d].hash: %d bytes, want 32 or 64", path, i, n)
		}
		if n := len(k.Block); n != 32 {
			return nil, fmt.Errorf("tailor: cookie keys %s: keys[%d].block: %d bytes, want 32", path, i, n)
		}
	}
	return kf.Keys, nil
}

// createKeys writes a new key file at path, whole or not at all: the file
// is written aside and linked into place, which fails if another process
// did so first (then its keys are read). On a file system without hard
// links it is created in place, exclusively.
func createKeys(path string) ([]KeyPair, error) {
	k := GenerateKeyPair()
	out, _ := json.MarshalIndent(keyFile{Keys: []KeyPair{k}}, "", "  ")
	out = append(out, '\n')
	f, err := os.CreateTemp(filepath.Dir(path), ".tailor-keys-*")
	if err != nil {
		return nil, fmt.Errorf("tailor: create cookie keys: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(out)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("tailor: write cookie keys %s: %w", path, err)
	}
	err = os.Link(f.Name(), path)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		err = writeExclusive(path, out)
	}
	switch {
	case errors.Is(err, fs.ErrExist):
		// Another process made it first; or path is a link to nothing,
		// which is not ours to replace.
		b, rerr := os.ReadFile(path)
		if rerr != nil {
			return nil, fmt.Errorf("tailor: cookie keys %s exists but cannot be read (a link to a missing file?): %w", path, rerr)
		}
		return parseKeys(path, b)
	case err != nil:
		return nil, fmt.Errorf("tailor: create cookie keys %s: %w", path, err)
	}
	return []KeyPair{k}, nil
}

// writeExclusive creates path with b, failing if it exists.
func writeExclusive(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}
