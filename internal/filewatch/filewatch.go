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
	var (
		last    []byte
		read    bool
		lastErr string
	)
	check := func() {
		data, err := os.ReadFile(path)
		if err != nil {
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				changed(nil, err)
			}
			return
		}
		lastErr = ""
		if read && bytes.Equal(data, last) {
			return
		}
		last, read = data, true
		changed(data, nil)
	}
	check()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			check()
		}
	}
}
