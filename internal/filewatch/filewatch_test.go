package filewatch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
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
