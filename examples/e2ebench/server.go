package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/tailorhq/tailor/examples/shop/site"
	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store/bolt"
)

// hello is the page every server serves.
const hello = "<!doctype html><title>Hello</title><p>Hello, visitor.</p>\n"

// runServer serves a page of kind on a loopback port until its standard
// input closes (the measuring process ended), after printing "listening
// ADDR" on standard output.
func runServer(kind, dir string) error {
	if dir == "" {
		return errors.New("-serve needs -dir")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mux := http.NewServeMux()
	var closer func(context.Context) error
	switch kind {
	case "bare":
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, hello)
		})
	case "scs":
		sm := scs.New() // the in-memory store
		sm.Lifetime = 24 * time.Hour
		mux.Handle("/login", sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sm.Put(r.Context(), "name", "visitor")
			io.WriteString(w, "ok\n")
		})))
		mux.Handle("/", sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = sm.GetString(r.Context(), "name") // read-only: nothing to save
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, hello)
		})))
	case "tailor":
		st, err := bolt.Open(filepath.Join(dir, "tailor.db"), bolt.Options{})
		if err != nil {
			return err
		}
		engine, err := rules.NewEngine(
			rules.Segment{Name: "customer", Priority: 50, Rule: rules.Purchased(1)},
			rules.Segment{Name: "red-sox-fan", Priority: 40, Rule: rules.CategoryViews("red-sox", 2)},
			rules.Segment{Name: "returning", Priority: 30, Rule: rules.Visits(2)},
			rules.Segment{Name: "cart-abandoner", Priority: 20, Rule: rules.And(rules.EventCount("add_to_cart", 1), rules.Not(rules.Purchased(1)))},
			rules.Segment{Name: "reader", Priority: 10, Rule: rules.Or(rules.CategoryViews("books", 3), rules.EventCount("page", 20))},
		)
		if err != nil {
			return err
		}
		p, err := middleware.New(middleware.Config{Keys: []middleware.KeyPair{middleware.GenerateKeyPair()},
			Store: st, Engine: engine, Logger: log})
		if err != nil {
			return err
		}
		closer = func(ctx context.Context) error { return errors.Join(p.Close(ctx), st.Close()) }
		mux.Handle("/", p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = middleware.FromContext(r.Context()).In("returning")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, hello)
		})))
		mux.HandleFunc("/_e2e/stats", func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(p.Stats())
		})
	case "shop":
		s, err := site.Open(site.Config{DB: filepath.Join(dir, "shop.db"), AdminPassword: newPassword(), Logger: log})
		if err != nil {
			return err
		}
		closer = s.Close
		mux.Handle("/", s.Handler())
	default:
		return fmt.Errorf("-serve %q: not bare, scs, tailor or shop", kind)
	}
	var mu sync.Mutex
	var prof *os.File
	mux.HandleFunc("POST /_e2e/profile/start", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		f, err := os.Create(filepath.Join(dir, kind+".pprof"))
		if err == nil {
			if err = pprof.StartCPUProfile(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		prof = f
	})
	mux.HandleFunc("POST /_e2e/profile/stop", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if prof == nil {
			http.Error(w, "no profile started", http.StatusConflict)
			return
		}
		pprof.StopCPUProfile()
		if err := prof.Close(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		prof = nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("listening %s\n", ln.Addr())
	ended := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(ended) }()
	select {
	case err = <-errc:
	case <-ended:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = errors.Join(err, srv.Shutdown(ctx))
	if closer != nil {
		err = errors.Join(err, closer(ctx))
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
