// Command shop serves the tailor demo shop on http://localhost:8080.
//
//	go run ./examples/shop [-addr localhost:8080] [-db tailor.db] [-store redis://... | postgres://...]
//
// Visitors are kept in a bbolt file (or in Redis or PostgreSQL with
// -store, for several instances), so a restarted shop still knows them;
// the cookie keys are created on the first run and kept beside it with
// mode 0600 (FILE.keys), and so is the dashboard's password (FILE.admin)
// unless -admin-password gives one. SIGINT or SIGTERM shut the shop down
// gracefully: the server drains, then every pending event is written.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tailorhq/tailor/examples/shop/site"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	db := flag.String("db", "tailor.db", "bbolt file that keeps visitors (cookie keys go in FILE.keys)")
	storeURL := flag.String("store", "", "keep visitors at `URL` (redis://... or postgres://...) instead of in the -db file")
	keys := flag.String("keys", "", "cookie keys file (default: the -db file's name + .keys)")
	visit := flag.Duration("visit-timeout", 30*time.Minute, "a visit ends after this long without a request")
	noDemo := flag.Bool("no-demo-history", false, "recommend from stored visitors only, without the made-up demo customers")
	segments := flag.String("segments", "", "segments `file` to use instead of the built-in one (watched for changes)")
	slotsFile := flag.String("slots", "", "slots `file` to use instead of the built-in one (watched for changes)")
	writeKey := flag.String("write-key", os.Getenv("TAILOR_WRITE_KEY"), "write key of server-to-server calls to /_tailor/v1/ (default $TAILOR_WRITE_KEY; none: only the shop's pages may send events)")
	adminPassword := flag.String("admin-password", "", "password of user admin (an editor) for /_tailor/admin/ (default: a random one, created on the first run, kept beside the cookie keys file as FILE.admin, printed at start-up)")
	viewerPassword := flag.String("viewer-password", "", "password of user viewer (read-only) for /_tailor/admin/ (default: a random one, kept as FILE.viewer, printed at start-up)")
	flag.Parse()
	cfg := site.Config{DB: *db, Store: *storeURL, Keys: *keys, VisitTimeout: *visit, NoDemoHistory: *noDemo,
		Segments: *segments, Slots: *slotsFile, AdminPassword: *adminPassword, ViewerPassword: *viewerPassword}
	if *writeKey != "" {
		cfg.WriteKeys = []string{*writeKey}
	}
	if err := run(*addr, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "shop:", err)
		os.Exit(1)
	}
}

func run(addr string, cfg site.Config) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg.Logger = log
	base := cfg.DB
	if cfg.Keys != "" {
		base = strings.TrimSuffix(cfg.Keys, ".keys")
	}
	adminFile, viewerFile := "", ""
	var err error
	if cfg.AdminPassword == "" {
		adminFile = base + ".admin"
		if cfg.AdminPassword, err = loadOrCreatePassword(adminFile); err != nil {
			return err
		}
	}
	if cfg.ViewerPassword == "" {
		viewerFile = base + ".viewer"
		if cfg.ViewerPassword, err = loadOrCreatePassword(viewerFile); err != nil {
			return err
		}
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	where := cfg.DB
	if cfg.Store != "" {
		where = cfg.Store[:strings.Index(cfg.Store, "://")+3] + "..."
	}
	log.Info("shop: serving", "url", "http://"+ln.Addr().String(), "store", where)
	// Printed, not logged: they are meant for the person who started the shop.
	if adminFile != "" {
		fmt.Fprintf(os.Stderr, "shop: admin dashboard http://%s/_tailor/admin/ user admin (editor) password %s (kept in %s; set -admin-password to choose)\n",
			ln.Addr(), cfg.AdminPassword, adminFile)
	}
	if viewerFile != "" {
		fmt.Fprintf(os.Stderr, "shop: admin dashboard http://%s/_tailor/admin/ user viewer (read-only) password %s (kept in %s; set -viewer-password to choose)\n",
			ln.Addr(), cfg.ViewerPassword, viewerFile)
	}

	select {
	case err = <-errc:
	case <-ctx.Done():
		log.Info("shop: shutting down")
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
		log.Info("shop: stopped; every event written")
	}
	return err
}

// loadOrCreatePassword returns the password kept in the file at path,
// creating the file with a random one (mode 0600) if there is none. The
// file appears whole or not at all (written aside, then linked), so that of
// two shops started at once on the same file, one creates it and the other
// reads the same password.
func loadOrCreatePassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		pw := strings.TrimSpace(string(b))
		if pw == "" {
			return "", fmt.Errorf("password file %s is empty: delete it to get a new password, or write one in it", path)
		}
		return pw, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("password file: %w", err)
	}
	r := make([]byte, 12)
	rand.Read(r)
	pw := base64.RawURLEncoding.EncodeToString(r)
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(pw + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(f.Name(), path) // CreateTemp made it 0600
	}
	if errors.Is(err, fs.ErrExist) {
		return loadOrCreatePassword(path)
	}
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	return pw, nil
}
