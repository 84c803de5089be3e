// Package testenv finds the services that integration tests need.
//
// A test that needs a server calls Require. When the server is absent the
// test is skipped with a message saying what is missing, unless the
// environment variable TAILOR_INTEGRATION is "require" (as in CI), in which
// case it fails.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Default addresses of the local services.
const (
	RedisAddr   = "127.0.0.1:6379"
	PostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	Chromium    = "/usr/bin/chromium"
)

// Required reports whether missing services fail tests instead of skipping
// them.
func Required() bool { return os.Getenv("TAILOR_INTEGRATION") == "require" }

// Missing skips or fails t, saying what is missing and how to get it.
func Missing(t testing.TB, what string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s (TAILOR_INTEGRATION=require)", what)
	}
	t.Skipf("%s; skipping (set TAILOR_INTEGRATION=require to fail instead)", what)
}

// Redis returns the address of the local Redis server, or skips t.
// TAILOR_REDIS_ADDR overrides the default address.
func Redis(t testing.TB) string {
	t.Helper()
	addr := env("TAILOR_REDIS_ADDR", RedisAddr)
	if !dial(addr) {
		Missing(t, "no Redis server at "+addr+": start one with `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no`")
	}
	return addr
}

// Postgres returns the URL of the local PostgreSQL database, or skips t.
// TAILOR_POSTGRES_URL overrides the default URL.
func Postgres(t testing.TB) string {
	t.Helper()
	url := env("TAILOR_POSTGRES_URL", PostgresURL)
	if !dial("127.0.0.1:5432") && os.Getenv("TAILOR_POSTGRES_URL") == "" {
		Missing(t, "no PostgreSQL server at 127.0.0.1:5432: start one with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`")
	}
	return url
}

// Browser returns the path of Chromium, or skips t.
// TAILOR_CHROMIUM overrides the default path.
func Browser(t testing.TB) string {
	t.Helper()
	path := env("TAILOR_CHROMIUM", Chromium)
	if _, err := exec.LookPath(path); err != nil {
		Missing(t, "no Chromium at "+path+": install it with `apt-get install -y chromium`")
	}
	return path
}

// Command returns the path of the program name, or skips t.
func Command(t testing.TB, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "no "+name+" on PATH: "+install)
	}
	return path
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func dial(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
