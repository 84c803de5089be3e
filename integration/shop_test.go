package integration_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	shopBin   string
	buildErr  error
)

// buildShop builds examples/shop once per test binary.
func buildShop(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tailor-shop-")
		if err != nil {
			buildErr = err
			return
		}
		shopBin = filepath.Join(dir, "shop")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", shopBin, "../examples/shop")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = err
			shopBin = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build ./examples/shop: %v\n%s", buildErr, shopBin)
	}
	return shopBin
}

// shop is a running examples/shop process.
type shop struct {
	t    *testing.T
	cmd  *exec.Cmd
	URL  string
	logs *strings.Builder
	mu   *sync.Mutex
	done chan error
}

var servingRE = regexp.MustCompile(`url=(http://\S+)`)

// startShop runs the shop on a free loopback port with the database db.
func startShop(t *testing.T, db string, args ...string) *shop {
	t.Helper()
	bin := buildShop(t)
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-db", db}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &shop{t: t, cmd: cmd, logs: new(strings.Builder), mu: new(sync.Mutex), done: make(chan error, 1)}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logs.WriteString(line + "\n")
			s.mu.Unlock()
			if m := servingRE.FindStringSubmatch(line); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() { s.cmd.Process.Kill() })
	select {
	case s.URL = <-urlc:
	case err := <-s.done:
		t.Fatalf("shop exited at start: %v\n%s", err, s.Logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("shop did not start within 30s\n%s", s.Logs())
	}
	return s
}

func (s *shop) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// stop sends sig and waits for a clean exit.
func (s *shop) stop(sig syscall.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Fatalf("shop exited with %v after %v\n%s", err, sig, s.Logs())
		}
	case <-time.After(30 * time.Second):
		s.t.Fatalf("shop did not stop within 30s of %v\n%s", sig, s.Logs())
	}
	if !strings.Contains(s.Logs(), "every event written") {
		s.t.Fatalf("shop did not report a full flush at shutdown:\n%s", s.Logs())
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
