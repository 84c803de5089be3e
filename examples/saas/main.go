// Command saas serves Relay, the demo of a software company's site
// personalised by tailor, on http://localhost:8081. The site is built on
// chi and templ (see package site).
//
//	go run ./examples/saas [-addr localhost:8081] [-db saas.db] [-write-key KEY] [-admin-password PW]
//
// Visitors are kept in a bbolt file, and the cookie keys beside it
// (FILE.keys, mode 0600), so a restarted site still knows them. Without
// -write-key (or $TAILOR_WRITE_KEY) and -admin-password, random ones are
// made for the run, and printed at start-up with a curl command that plays
// the CRM. SIGINT or SIGTERM shut the site down gracefully: the server
// drains, then every pending event is written.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tailorhq/tailor/examples/saas/site"
)

func main() {
	addr := flag.String("addr", "localhost:8081", "address to listen on")
	db := flag.String("db", "saas.db", "bbolt file that keeps visitors (cookie keys go in FILE.keys)")
	writeKey := flag.String("write-key", os.Getenv("TAILOR_WRITE_KEY"), "write key of server-to-server calls to /_tailor/v1/ (default $TAILOR_WRITE_KEY, else a random one for this run, printed)")
	adminPassword := flag.String("admin-password", "", "password of user admin for /_tailor/admin/ (default: a random one for this run, printed)")
	flag.Parse()
	if err := run(context.Background(), *addr, site.Config{DB: *db, WriteKeys: []string{*writeKey}, AdminPassword: *adminPassword}, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "saas:", err)
		os.Exit(1)
	}
}

// run serves the site on addr until ctx is done or SIGINT or SIGTERM comes,
// logging to out. Empty write key and admin password are made up.
func run(ctx context.Context, addr string, cfg site.Config, out io.Writer) error {
	log := slog.New(slog.NewTextHandler(out, nil))
	cfg.Logger = log
	if len(cfg.WriteKeys) == 0 || cfg.WriteKeys[0] == "" {
		cfg.WriteKeys = []string{random()}
	}
	if cfg.AdminPassword == "" {
		cfg.AdminPassword = random()
	}
	s, err := site.Open(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.Close(context.Background())
		return err
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	log.Info("saas: serving", "url", url, "db", cfg.DB)
	// Printed, not logged: they are meant for the person who started it.
	fmt.Fprintf(out, "saas: dashboard %s/_tailor/admin/ user admin password %s\n", url, cfg.AdminPassword)
	fmt.Fprintf(out, "saas: play the CRM (then sign in as ada@example.com):\n"+
		"  curl -u %s: %s/_tailor/v1/identify -H 'Content-Type: application/json' \\\n"+
		"    -d '{\"userId\": \"ada@example.com\", \"traits\": {\"crm\": {\"stage\": \"opportunity\"}, \"industry\": \"fintech\"}}'\n",
		cfg.WriteKeys[0], url)

	select {
	case err = <-errc:
	case <-ctx.Done():
		log.Info("saas: shutting down")
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdown); serr != nil {
		err = errors.Join(err, serr)
	}
	if cerr := s.Close(shutdown); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err == nil {
		log.Info("saas: stopped; every event written")
	}
	return err
}

// random returns 16 random bytes in base64url: a made-up key or password.
func random() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
