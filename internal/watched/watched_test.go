package watched

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type num struct {
	n    int
	file string
}

// parseNum parses a decimal number.
func parseNum(data []byte, file string) (*num, error) {
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, errors.New(file + ": not a number")
	}
	return &num{n, file}, nil
}

func TestHolderKeepsTheLastGoodValue(t *testing.T) {
	var h Holder[num]
	if h.Get() != nil || h.Status() != (Status{}) {
		t.Fatal("the zero Holder holds something")
	}
	h.Load(&num{n: 1}, "")
	st := h.Status()
	if h.Get().n != 1 || st.Source != "" || st.Loaded.IsZero() || st.Attempted != st.Loaded || st.Err != nil {
		t.Fatalf("after Load: %+v", st)
	}
	if err := h.Reload([]byte("2"), "a.txt", parseNum); err != nil || h.Get().n != 2 || h.Status().Source != "a.txt" {
		t.Fatalf("Reload: %v %+v", err, h.Status())
	}
	loaded := h.Status().Loaded
	err := h.Reload([]byte("x"), "b.txt", parseNum)
	st = h.Status()
	if err == nil || h.Get().n != 2 || st.Err != err || st.Source != "a.txt" || st.Loaded != loaded || !st.Attempted.After(loaded) && st.Attempted != loaded {
		t.Fatalf("a bad reload: %v %+v", err, st)
	}
	err = h.ReloadFile("num", filepath.Join(t.TempDir(), "missing"), parseNum)
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "num: ") || h.Get().n != 2 || h.Status().Err != err {
		t.Fatalf("a missing file: %v %+v", err, h.Status())
	}
	if h.Status().OnDisk {
		t.Fatalf("Reload of bytes says they were read from disk: %+v", h.Status())
	}
	file := filepath.Join(t.TempDir(), "n.txt")
	if err := os.WriteFile(file, []byte("4"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.ReloadFile("num", file, parseNum); err != nil || !h.Status().OnDisk || h.Status().Source != file {
		t.Fatalf("ReloadFile: %v %+v", err, h.Status())
	}
	h.Load(&num{n: 3}, "")
	if st := h.Status(); st.Err != nil || h.Get().n != 3 || st.OnDisk {
		t.Fatalf("Load clears the error and OnDisk: %+v", st)
	}
}

// syncBuffer is a log's output, read while Watch writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestHolderWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.txt")
	if err := os.WriteFile(path, []byte("1"), 0o600); err != nil {
		t.Fatal(err)
	}
	var h Holder[num]
	var logged syncBuffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Watch(ctx, "num", path, 5*time.Millisecond, log, parseNum) }()
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: status %+v, log %q", what, h.Status(), logged.String())
			}
		}
	}
	wait("first load", func() bool { v := h.Get(); return v != nil && v.n == 1 && v.file == path })
	os.WriteFile(path, []byte("oops"), 0o600)
	wait("bad file", func() bool { return h.Status().Err != nil })
	if h.Get().n != 1 {
		t.Error("a bad file replaced the good value")
	}
	wait("log", func() bool { return strings.Contains(logged.String(), "num: reload failed") })
	if s := logged.String(); !strings.Contains(s, "level=ERROR") || !strings.Contains(s, "not a number") || !strings.Contains(s, path) {
		t.Errorf("log: %q", s)
	}
	os.WriteFile(path, []byte("7"), 0o600)
	wait("fixed file", func() bool { return h.Get().n == 7 && h.Status().Err == nil })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Watch returned %v", err)
	}
}
