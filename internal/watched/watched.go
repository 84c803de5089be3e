// Package watched holds a value parsed from a file that a site reloads
// while it runs (the segments of rules.Engine, the slots of slots.Engine):
// the value is replaced only by a valid one, the last good value stays when
// a reload fails, and Status says which is loaded and why the last attempt
// failed.
package watched

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/internal/filewatch"
)

// Status is the state of a Holder's value, for dashboards.
type Status struct {
	// Source is the file the current value was parsed from, or "" when it
	// was made in Go or parsed from bytes without a file name.
	Source string
	// OnDisk is true when the current value was read from the file Source
	// (ReloadFile, Watch); false when it was given as bytes (Reload, such
	// as a file embedded in the program), Source then only naming them.
	OnDisk bool
	// Loaded is when the current value was loaded.
	Loaded time.Time
	// Attempted is when a value was last loaded or reloaded,
	// successfully or not.
	Attempted time.Time
	// Err is why the last attempt failed, or nil if it succeeded: the
	// previous value was kept.
	Err error
}

// A Holder holds the current value of type T. Its zero value holds nil.
// It is safe for concurrent use; Get never blocks.
type Holder[T any] struct {
	cur atomic.Pointer[T]
	mu  sync.Mutex // guards st
	st  Status
}

// Get returns the current value.
func (h *Holder[T]) Get() *T { return h.cur.Load() }

// Load makes v, parsed from the file source (or ""), the current value.
func (h *Holder[T]) Load(v *T, source string) { h.load(v, source, false) }

func (h *Holder[T]) load(v *T, source string, onDisk bool) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cur.Store(v)
	h.st = Status{Source: source, OnDisk: onDisk, Loaded: now, Attempted: now}
}

// Fail records that an attempt to replace the value failed with err; the
// value stays.
func (h *Holder[T]) Fail(err error) {
	h.mu.Lock()
	h.st.Attempted, h.st.Err = time.Now(), err
	h.mu.Unlock()
}

// Status returns the state of the value.
func (h *Holder[T]) Status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.st
}

// A Parser parses a file's content into a value; file is the file's name,
// for problems and the value's source, or "".
type Parser[T any] func(data []byte, file string) (*T, error)

// Reload parses data, from file (or ""), and makes the result the current
// value if it is valid; otherwise it records the error, which it returns.
func (h *Holder[T]) Reload(data []byte, file string, parse Parser[T]) error {
	return h.reload(data, file, false, parse)
}

func (h *Holder[T]) reload(data []byte, file string, onDisk bool, parse Parser[T]) error {
	v, err := parse(data, file)
	if err != nil {
		h.Fail(err)
		return err
	}
	h.load(v, file, onDisk)
	return nil
}

// ReloadFile reads the file at path and reloads it as Reload does. A file
// that cannot be read is an error prefixed with pkg ("rules", "slots").
func (h *Holder[T]) ReloadFile(pkg, path string, parse Parser[T]) error {
	data, err := os.ReadFile(path)
	if err != nil {
		err = fmt.Errorf("%s: %w", pkg, err)
		h.Fail(err)
		return err
	}
	return h.reload(data, path, true, parse)
}

// Watch reloads the file at path whenever its content changes, checking
// every interval (filewatch.DefaultInterval if interval is not positive),
// until ctx is done; then it returns ctx.Err(). See filewatch.Poll for when
// a content counts as changed. A failed reload, or a file that cannot be
// read, leaves the value as it was: Status reports why, and so does log
// (slog.Default() if nil), at level Error, with pkg ("rules", "slots") in
// the message.
func (h *Holder[T]) Watch(ctx context.Context, pkg, path string, interval time.Duration, log *slog.Logger, parse Parser[T]) error {
	return filewatch.Poll(ctx, path, interval, func(data []byte, err error) {
		if err != nil {
			err = fmt.Errorf("%s: %w", pkg, err)
			h.Fail(err)
		} else {
			err = h.reload(data, path, true, parse)
		}
		if err != nil {
			if log == nil {
				log = slog.Default()
			}
			log.Error(pkg+": reload failed; the last good file stays loaded", "file", path, "err", err)
		}
	})
}
