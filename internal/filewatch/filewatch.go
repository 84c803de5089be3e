// Package filewatch polls a file for changes of its content, for the
// configuration files that tailor reloads while a site runs. Polling works
// the same on every system and with files that editors and deployment
// tools replace rather than rewrite.
package filewatch

import (
	"bytes"
	"context"
	"os"
	"time"
)

// DefaultInterval is the interval of Poll when it is not positive.
const DefaultInterval = 2 * time.Second

// Poll reads the file at path at once, then every interval until ctx is
// done, and returns ctx.Err(). It calls changed with the file's content
// when it differs from the content last read (so at once on the first
// read), and with the error when the file cannot be read, once until the
// error changes or the file is read again.
func Poll(ctx context.Context, path string, interval time.Duration, changed func(data []byte, err error)) error {
	if interval <= 0 {
		interval = DefaultInterval
	}
	w := newWatcher(path)
	w.check(changed)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			w.check(changed)
		}
	}
}

// watcher is the state of one Poll, between its checks. It is used by one
// goroutine.
type watcher struct {
	path     string
	readFile func(string) ([]byte, error) // os.ReadFile; tests interleave writes
	last     []byte
	read     bool
	lastErr  string
}

func newWatcher(path string) *watcher {
	return &watcher{path: path, readFile: os.ReadFile}
}

// check reads the file once and calls changed as Poll documents.
func (w *watcher) check(changed func(data []byte, err error)) {
	data, err := w.readFile(w.path)
	if err != nil {
		if msg := err.Error(); msg != w.lastErr {
			w.lastErr = msg
			changed(nil, err)
		}
		return
	}
	w.lastErr = ""
	if w.read && bytes.Equal(data, w.last) {
		return
	}
	w.last, w.read = data, true
	changed(data, nil)
}
