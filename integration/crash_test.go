package integration_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/bolt"
)

const crashFlush = 100 * time.Millisecond

// TestMain lets the test binary play the child of TestBoltCrash.
func TestMain(m *testing.M) {
	if db := os.Getenv("TAILOR_CRASH_CHILD"); db != "" {
		crashChild(db)
		return
	}
	os.Exit(m.Run())
}

// crashChild records page views as fast as it can, printing after each the
// number of events recorded so far, until it is killed.
func crashChild(db string) {
	st, err := bolt.Open(db, bolt.Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	p, err := middleware.New(middleware.Config{Keys: keys, Store: st, Logger: quietLogger(), WriteBehind: middleware.WriteBehindConfig{FlushInterval: crashFlush}})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	h := p.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	var cookies []*http.Cookie
	for i := 0; i < 10_000_000; i++ { // bounded; the parent kills us within seconds
		req := httptest.NewRequest("GET", "/p/"+strconv.Itoa(i%50), nil)
		req.Header.Set("User-Agent", ua)
		v := i % 20
		if v < len(cookies) {
			req.AddCookie(cookies[v])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if cs := rec.Result().Cookies(); len(cs) > 0 {
			if v < len(cookies) {
				cookies[v] = cs[0]
			} else {
				cookies = append(cookies, cs[0])
			}
		}
		s := p.Stats()
		fmt.Println("events", s.Events, s.Flushed, s.Flushes, s.FlushTime)
		time.Sleep(200 * time.Microsecond)
	}
}

// TestBoltCrash: a process recording events is killed with SIGKILL; the
// events it recorded more than one FlushInterval (plus the time a flush
// takes to commit) before it died are in the file.
func TestBoltCrash(t *testing.T) {
	db := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TAILOR_CRASH_CHILD="+db)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type mark struct {
		at     time.Time
		events int
	}
	marks := make(chan mark, 1<<16)
	var last atomic.Value
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 2 && f[0] == "events" {
				last.Store(sc.Text())
				n, _ := strconv.Atoi(f[1])
				select {
				case marks <- mark{time.Now(), n}:
				default:
				}
			} else {
				t.Errorf("child: %s", sc.Text())
			}
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Kill()
	killed := time.Now()
	cmd.Wait()

	// The flush that takes an event starts at most one FlushInterval after
	// it; its commit (one fsync) takes a few milliseconds.
	deadline := killed.Add(-crashFlush - 150*time.Millisecond)
	want := 0
	drain := true
	for drain {
		select {
		case m := <-marks:
			if m.at.Before(deadline) {
				want = m.events
			}
		default:
			drain = false
		}
	}
	if want == 0 {
		t.Fatal("the child recorded nothing in time")
	}
	st, err := bolt.Open(db, bolt.Options{})
	if err != nil {
		t.Fatalf("reopen after the crash: %v", err)
	}
	defer st.Close()
	got := 0
	st.Range(context.Background(), func(p *store.Profile) bool { got += p.Counts["page"]; return true })
	t.Logf("%d events recorded more than %v before the kill, %d in the file; last: %v", want, killed.Sub(deadline), got, last.Load())
	if got < want {
		t.Fatalf("%d events in the file, want at least %d", got, want)
	}
}
