package testenv

import (
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// An OwnRedis is a redis-server of a test's own, on a free loopback port,
// that the test may pause, stop, kill and start again without touching
// the shared server. It is killed when the test ends.
type OwnRedis struct {
	t       testing.TB
	bin     string
	dir     string
	port    int
	persist bool
	cmd     *exec.Cmd
}

// StartRedis starts an OwnRedis, or skips t (fails under
// TAILOR_INTEGRATION=require) when redis-server is not installed. With
// persist, it keeps an append-only file synced on every write, so that a
// restart keeps what was written; without, a restart starts empty.
func StartRedis(t testing.TB, persist bool) *OwnRedis {
	t.Helper()
	bin := Command(t, "redis-server", "apt-get install -y redis-server")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &OwnRedis{t: t, bin: bin, dir: t.TempDir(), port: port, persist: persist}
	r.Start()
	t.Cleanup(r.Kill)
	return r
}

// Addr returns the server's address.
func (r *OwnRedis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// Start starts the server again on its port, and waits until it accepts
// connections.
func (r *OwnRedis) Start() {
	r.t.Helper()
	aof := []string{"--appendonly", "no"}
	if r.persist {
		aof = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	args := append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--dir", r.dir,
		"--save", "", "--logfile", filepath.Join(r.dir, "redis.log")}, aof...)
	r.cmd = exec.Command(r.bin, args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if dial(r.Addr()) {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not start within 30s", r.Addr())
		}
	}
}

// Pause stops the server's process (SIGSTOP): it keeps its connections
// and answers nothing, as a hung server does. Kill or Stop end it.
func (r *OwnRedis) Pause() {
	r.t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		r.t.Fatal(err)
	}
}

// Stop shuts the server down gracefully (SIGTERM) and waits for it.
func (r *OwnRedis) Stop() {
	if r.cmd != nil {
		r.cmd.Process.Signal(syscall.SIGTERM)
		r.cmd.Wait()
		r.cmd = nil
	}
}

// Kill ends the server at once, paused or not.
func (r *OwnRedis) Kill() {
	if r.cmd != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}
