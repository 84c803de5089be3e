package filewatch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "f.json")
	if err := os.WriteFile(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	type call struct {
		data string
		err  bool
	}
	calls := make(chan call, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Poll(ctx, path, 5*time.Millisecond, func(data []byte, err error) {
			calls <- call{string(data), err != nil}
		})
	}()
	next := func(want call) {
		t.Helper()
		select {
		case got := <-calls:
			if got != want {
				t.Fatalf("changed(%q, err=%v), want (%q, err=%v)", got.data, got.err, want.data, want.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no call, want %+v", want)
		}
	}
	next(call{"one", false})
	// An unchanged file is not reported again; a new content is.
	time.Sleep(30 * time.Millisecond)
	if err := os.WriteFile(path, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	next(call{"two", false})
	// A missing file is reported once, then the file when it is back.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	next(call{"", true})
	time.Sleep(30 * time.Millisecond)
	if err := os.WriteFile(path, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The content is the one last read: nothing to report.
	time.Sleep(30 * time.Millisecond)
	if err := os.WriteFile(path, []byte("three"), 0o600); err != nil {
		t.Fatal(err)
	}
	next(call{"three", false})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Poll returned %v", err)
	}
	select {
	case c := <-calls:
		t.Fatalf("unexpected call %+v", c)
	default:
	}
}

// TestHalfWritten: a file rewritten in place (truncated, then written in
// chunks) is read between every step of the writer; only complete
// contents are reported, never the empty file or a prefix.
func TestHalfWritten(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "f.json")
	var got []string
	w := newWatcher(path)
	check := func() {
		w.check(func(data []byte, err error) {
			if err != nil {
				t.Fatalf("changed(err=%v)", err)
			}
			got = append(got, string(data))
		})
	}
	write := func(f func(*os.File) error) {
		t.Helper()
		file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if err := f(file); err != nil {
			t.Fatal(err)
		}
		if err := file.Close(); err != nil {
			t.Fatal(err)
		}
	}
	chunk := func(s string) func(*os.File) error {
		return func(f *os.File) error { _, err := f.WriteString(s); return err }
	}
	truncate := func(f *os.File) error { return f.Truncate(0) }

	write(chunk(`{"v": "one"}`))
	check()
	check()
	// The writer truncates, then writes in three chunks; the poller reads
	// after each step, then twice more once the writer is done.
	write(truncate)
	check()
	write(chunk(`{"v": `))
	check()
	write(chunk(`"two`))
	check()
	write(chunk(`"}`))
	check()
	check()
	// Rewritten in place with the content reported last: nothing new.
	write(truncate)
	check()
	write(chunk(`{"v": "two"}`))
	check()
	check()
	want := []string{`{"v": "one"}`, `{"v": "two"}`}
	if !slices.Equal(got, want) {
		t.Fatalf("reported %q, want %q", got, want)
	}
}

// TestStableAcrossReads drives a watcher with a fake read function: a
// content is reported once two reads in a row agree; an error is
// reported at once, and interrupts a content not yet confirmed.
func TestStableAcrossReads(t *testing.T) {
	t.Parallel()
	errGone := errors.New("gone")
	steps := []struct {
		data string
		err  error
		want string // "" for no call, "!" for an error call
	}{
		{data: "a"},
		{data: "a", want: "a"},
		{data: "a"},
		{data: ""}, // truncated
		{data: "b"},
		{data: "bb"},
		{data: "bb", want: "bb"},
		{data: "c"},
		{err: errGone, want: "!"},
		{err: errGone},
		{data: "c"},
		{data: "c", want: "c"},
		{data: "", want: ""},
		{data: "", want: "="}, // an empty file, stable: reported
	}
	w := newWatcher("f")
	for i, s := range steps {
		w.readFile = func(string) ([]byte, error) {
			if s.err != nil {
				return nil, s.err
			}
			return []byte(s.data), nil
		}
		var calls []string
		w.check(func(data []byte, err error) {
			switch {
			case err != nil:
				calls = append(calls, "!")
			case len(data) == 0:
				calls = append(calls, "=")
			default:
				calls = append(calls, string(data))
			}
		})
		var want []string
		if s.want != "" {
			want = []string{s.want}
		}
		if !slices.Equal(calls, want) {
			t.Fatalf("step %d (read %q, %v): calls %q, want %q", i, s.data, s.err, calls, want)
		}
	}
}
