// Command wrap is the README's first example: an existing handler wrapped
// in tailor, on the embedded store, with two segments.
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store/bolt"
)

func main() {
	st, err := bolt.Open("tailor.db", bolt.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	keys, err := middleware.LoadOrCreateKeys("tailor.keys") // secret: keep it, and keep it safe
	if err != nil {
		log.Fatal(err)
	}
	engine, err := rules.NewEngine(
		rules.Segment{Name: "customer", Priority: 2, Rule: rules.Purchased(1)},
		rules.Segment{Name: "returning", Priority: 1, Rule: rules.Visits(2)},
	)
	if err != nil {
		log.Fatal(err)
	}
	p, err := middleware.New(middleware.Config{Keys: keys, Store: st, Engine: engine})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if middleware.FromContext(r.Context()).In("returning") {
			w.Write([]byte("Welcome back!\n"))
			return
		}
		w.Write([]byte("Hello!\n"))
	})
	srv := &http.Server{Addr: "localhost:8080", Handler: p.Handler(mux)}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	// After the server has drained: write what is pending to the store.
	closing, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(closing); err != nil {
		log.Print(err)
	}
}
