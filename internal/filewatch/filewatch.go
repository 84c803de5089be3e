// Package filewatch polls a file for changes of its content, for the
// configuration files that tailor reloads while a site runs. Polling works
// the same on every system and with files that editors and deployment
// tools replace rather than rewrite.
//
// # Half-written files
//
// A reader may open a file while another process writes it: a file
// rewritten in place is first truncated, then written, possibly in
// chunks, and a read in between sees it empty or cut short. Poll
// therefore acts only on a content that two reads in a row, one interval
// apart, agree on. Writers should still write a temporary file in the
// same directory and rename it over the watched one, which readers see
// atomically; a file rewritten in place is read right as long as its
// writer takes less than one interval.
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
// when it differs from the content last reported and two reads in a row
// returned it (so after the first interval for the first content; see
// Half-written files), and with the error when the file cannot be read,
// at once, and once until the error changes or the file is read again.
// changed is called from Poll's goroutine, one call at a time.
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
	readFile func(string) ([]byte, error) // os.ReadFile; tests fake it
	last     []byte                       // the content last reported
	reported bool                         // whether last is set
	seen     []byte                       // the content of the previous read
	seenOK   bool                         // whether the previous read succeeded
	lastErr  string                       // the error last reported, "" after a read
}

func newWatcher(path string) *watcher {
	return &watcher{path: path, readFile: os.ReadFile}
}

// check reads the file once and calls changed as Poll documents: a
// content is reported when the previous read returned it too, so that a
// file caught between its writer's truncation and its last write is never
// reported.
func (w *watcher) check(changed func(data []byte, err error)) {
	data, err := w.readFile(w.path)
	if err != nil {
		w.seen, w.seenOK = nil, false
		if msg := err.Error(); msg != w.lastErr {
			w.lastErr = msg
			changed(nil, err)
		}
		return
	}
	w.lastErr = ""
	stable := w.seenOK && bytes.Equal(data, w.seen)
	w.seen, w.seenOK = data, true
	if !stable || (w.reported && bytes.Equal(data, w.last)) {
		return
	}
	w.last, w.reported = data, true
	changed(data, nil)
}
