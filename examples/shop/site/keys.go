package site

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/tailorhq/tailor/middleware"
)

// keyFile is the JSON form of the cookie keys, newest first. To rotate,
// put a new pair first and keep the old ones after it for a while.
type keyFile struct {
	Keys []struct {
		Hash  []byte `json:"hash"`  // base64
		Block []byte `json:"block"` // base64
	} `json:"keys"`
}

// LoadOrCreateKeys reads the cookie keys from path, creating the file with
// a new key pair and mode 0600 if it does not exist.
func LoadOrCreateKeys(path string) ([]middleware.KeyPair, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k := middleware.GenerateKeyPair()
		var kf keyFile
		kf.Keys = append(kf.Keys, struct {
			Hash  []byte `json:"hash"`
			Block []byte `json:"block"`
		}{k.Hash, k.Block})
		out, _ := json.MarshalIndent(kf, "", "  ")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create cookie keys: %w", err)
		}
		if _, err := f.Write(append(out, '\n')); err != nil {
			f.Close()
			return nil, fmt.Errorf("write cookie keys %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("write cookie keys %s: %w", path, err)
		}
		return []middleware.KeyPair{k}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read cookie keys: %w", err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, fmt.Errorf("cookie keys %s: %w", path, err)
	}
	if len(kf.Keys) == 0 {
		return nil, fmt.Errorf("cookie keys %s: no keys", path)
	}
	keys := make([]middleware.KeyPair, len(kf.Keys))
	for i, k := range kf.Keys {
		keys[i] = middleware.KeyPair{Hash: k.Hash, Block: k.Block}
	}
	return keys, nil
}
