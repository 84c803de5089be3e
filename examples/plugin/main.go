// Command plugin shows a rule plugin end to end: a "temperature" rule,
// registered with rules.Register, used by name in a segments file, and a
// site that changes its offer with the weather in the visitor's city.
//
//	go run ./examples/plugin [-addr localhost:8081] [-segments FILE]
//
// Open http://localhost:8081/, tell the site your city, and see why you
// are in your segments at /why. Without -segments the site uses its
// built-in segments.json; with it, the file is watched and reloaded when it
// changes (a bad file is reported at /why and the old segments kept). The
// weather comes from a stub that the example owns.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

//go:embed segments.json
var segmentsJSON []byte

// weather is where the "temperature" plugin reads temperatures.
var weather = newStubWeather()

func init() {
	// Plugins are registered before segments files are parsed. Register
	// panics if the name is taken: it is a programming error.
	rules.Register("temperature", temperatureFactory(weather))
}

func main() {
	addr := flag.String("addr", "localhost:8081", "address to listen on")
	segments := flag.String("segments", "", "segments `file` to load and watch (default: the built-in segments.json)")
	flag.Parse()
	if err := run(*addr, *segments); err != nil {
		fmt.Fprintln(os.Stderr, "plugin:", err)
		os.Exit(1)
	}
}

func run(addr, segments string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := newSite(ctx, segments)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.close()
		return err
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	slog.Info("serving", "url", "http://"+ln.Addr().String()+"/")
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = srv.Shutdown(sctx)
		cancel()
	}
	s.close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// site is the example site: a lunch shop whose offer follows the weather.
type site struct {
	engine *rules.Engine
	p      *middleware.Personalizer
	store  *memory.Store
}

// newSite loads the segments (the file, watched until ctx is done, or the
// built-in ones) and starts the personalizer.
func newSite(ctx context.Context, segments string) (*site, error) {
	e := &rules.Engine{}
	if segments == "" {
		if err := e.Reload(segmentsJSON, rules.Filename("segments.json")); err != nil {
			return nil, err
		}
	} else {
		if err := e.ReloadFile(segments); err != nil {
			return nil, err
		}
		go e.Watch(ctx, segments, 2*time.Second)
	}
	st := memory.New(store.Limits{})
	p, err := middleware.New(middleware.Config{
		Keys:          []middleware.KeyPair{middleware.GenerateKeyPair()},
		Store:         st,
		Engine:        e,
		CountryHeader: "X-Country", // set by a proxy or CDN you trust,
	})
	if err != nil {
		return nil, err
	}
	return &site{engine: e, p: p, store: st}, nil
}

func (s *site) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.p.Close(ctx)
	s.store.Close()
}

func (s *site) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("POST /city", s.setCity)
	mux.HandleFunc("POST /order", s.order)
	mux.HandleFunc("GET /why", s.why)
	return s.p.Handler(mux)
}

var homePage = template.Must(template.New("home").Parse(`<!doctype html>
<title>Lunch</title>
<h1>{{.Offer}}</h1>
<p>Your segments: {{range .Segments}}<b>{{.}}</b> {{else}}none yet{{end}} (<a href="/why">why?</a>)</p>
<form method="post" action="/city">Your city: <input name="city" value="{{.City}}"> <button>Save</button></form>
<form method="post" action="/order"><button name="dish" value="tomato soup">Order a tomato soup</button>
<button name="dish" value="salad">Order a salad</button></form>
`))

func (s *site) home(w http.ResponseWriter, r *http.Request) {
	v := middleware.FromContext(r.Context())
	offer := "Today's special: the chef's sandwich"
	switch {
	case v.In("soup-lover"):
		offer = "Cold out there: your usual soup is ready, second bowl free"
	case v.In("cold-here"):
		offer = "Cold out there: hot soup, delivered in 20 minutes"
	case v.In("hot-here"):
		offer = "Hot today: iced tea free with any salad"
	}
	city := ""
	if p := v.Profile(); p != nil {
		var t struct{ City string }
		json.Unmarshal(p.Traits, &t)
		city = t.City
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	homePage.Execute(w, struct {
		Offer    string
		Segments []string
		City     string
	}{offer, v.Segments(), city})
}

// setCity records the visitor's city as a trait: the temperature rule
// reads it from the next request on.
func (s *site) setCity(w http.ResponseWriter, r *http.Request) {
	v := middleware.FromContext(r.Context())
	city := strings.TrimSpace(r.FormValue("city"))
	if len(city) > 100 {
		http.Error(w, "city too long", http.StatusBadRequest)
		return
	}
	traits, _ := json.Marshal(map[string]any{"city": city})
	if city == "" {
		traits = []byte(`{"city": null}`)
	}
	if err := v.Record(store.Event{Type: store.TypeIdentify, Traits: traits}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *site) order(w http.ResponseWriter, r *http.Request) {
	v := middleware.FromContext(r.Context())
	if err := v.Track("order", map[string]string{"dish": r.FormValue("dish")}); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// why explains the visitor's segments, with the engine's status.
func (s *site) why(w http.ResponseWriter, r *http.Request) {
	v := middleware.FromContext(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	in := &rules.Input{Profile: v.Profile(), Request: v.Facts(), Now: time.Now()}
	for _, x := range s.engine.Explain(in) {
		state := "out"
		switch {
		case x.In:
			state = "in"
		case x.ExcludedBy != "":
			state = "out (in " + x.ExcludedBy + " instead)"
		}
		fmt.Fprintf(w, "%s: %s\n", x.Segment, state)
		for _, c := range x.Clauses {
			fmt.Fprintf(w, "    %s\n", c)
		}
	}
	st := s.engine.Status()
	fmt.Fprintf(w, "\n%d segments from %s, loaded %s\n", s.engine.Set().Len(), st.Source, st.Loaded.Format(time.RFC3339))
	if st.Err != nil {
		fmt.Fprintf(w, "the last reload failed, the segments above were kept:\n%v\n", st.Err)
	}
}
