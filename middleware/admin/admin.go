package admin

import (
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/webhook"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// DefaultPrefix is where the dashboard is mounted when Config.Prefix is
// empty.
const DefaultPrefix = "/_tailor/admin/"

// ContentSecurityPolicy is the policy of every response: nothing but the
// dashboard's own stylesheet, icon and script (the editor's, served by the
// dashboard itself) loads, no inline script runs, no other site may frame
// it.
const ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// A Source is what the dashboard shows: a *middleware.Personalizer.
type Source interface {
	// Store returns the store that profiles are read from; segment sizes,
	// member lists, searches and exports need a store.Ranger.
	Store() store.Store
	// Engine returns the engine whose segments are shown; nil for none.
	Engine() *rules.Engine
	// Stats returns the counters of the overview.
	Stats() middleware.Stats
	// Profile returns a visitor's profile with the events still pending,
	// for the inspector, or store.ErrNotFound.
	Profile(ctx context.Context, visitorID string) (*store.Profile, error)
	// PreviewLink returns a link that shows the site as some segments'
	// visitors see it.
	PreviewLink(target string, segments []string, variants map[string]string, ttl time.Duration) (string, error)
}

// Config configures the dashboard. Personalizer is required, and so is an
// authorizer (Users, Username and Password, BearerToken, RoleOf or
// Authorize) unless Insecure; every other field documents its zero value.
//
// Each authorizer gives the requests it lets in a Role: Users their own,
// Username and Password Editor, BearerToken and Authorize Viewer (they
// were made for reading: scripts that download exports, the site's staff),
// RoleOf the one it returns, and Insecure Editor.
type Config struct {
	// Personalizer is the one whose visitors, store and engine the
	// dashboard shows. Required.
	Personalizer Source

	// Authorize, if set, lets a request in as a Viewer when it returns
	// true; a request it refuses gets 403. Use it to plug in the site's
	// own sessions (check a staff role, say); RoleOf does that too, and
	// tells editors from viewers.
	Authorize func(r *http.Request) bool
	// RoleOf, if set, lets a request in when it returns Viewer or Editor,
	// with the name of the user (who their publications are by); NoRole
	// refuses it (403). Use it to plug in the site's own sessions.
	RoleOf func(r *http.Request) (name string, role Role)
	// Username and Password, if set, let in the requests with these HTTP
	// basic authentication credentials (compared in constant time) as an
	// Editor; others get 401 with a WWW-Authenticate challenge. Set both
	// or neither. Serve the dashboard over TLS: basic authentication sends
	// the password with every request.
	Username, Password string
	// Users, if set, are more basic authentication users, each with a
	// role: viewers and editors apart.
	Users []User
	// BearerToken, if set, lets in the requests with the header
	// "Authorization: Bearer <token>" (compared in constant time), for
	// scripts that download exports.
	BearerToken string
	// A request is let in when any configured authorizer accepts it.
	// New refuses a Config without authorizer unless Insecure is set:
	// then everyone is let in, for development on your own machine, and
	// every page says so in a banner.
	Insecure bool

	// Prefix is the path the dashboard is mounted at, with a slash at both
	// ends: mount the Handler with mux.Handle(prefix, h), without
	// http.StripPrefix, and outside Personalizer.Handler (so that the
	// dashboard's pages are not recorded as page views). Default
	// DefaultPrefix.
	Prefix string

	// Webhooks, if set, is shown on the webhooks page: its target,
	// counters and delivery log.
	Webhooks *webhook.Dispatcher
	// Experiments, if set, provides the experiments and their counts for
	// the experiments page.
	Experiments ExperimentSource
	// BacktestRate bounds the pace of a backtest of the editor, in
	// profiles read a second, so that the store keeps room for the site.
	// Default 50,000.
	BacktestRate int

	// Definitions, if set, is where the site's segments and slots are kept
	// as versioned documents (a *definitions.Definitions): the editor's
	// pages edit its draft, publish it and restore earlier versions. Nil:
	// the definitions come from files, and the editor only says so.
	Definitions Definitions

	// SampleInterval is how often segment sizes are kept for the charts
	// (pages read the store's counts whenever they are loaded, see the
	// package documentation), and measured, for a store that keeps no
	// counts. Default 1 minute.
	SampleInterval time.Duration
	// SampleLimit is the most profiles one measurement classifies, and
	// the most that a segment's member list or a search by user id reads.
	// Stores larger than that are measured on the first SampleLimit
	// profiles their Range yields, and the dashboard says so. Default
	// 10,000.
	SampleLimit int
	// History is how many measurements are kept (in memory, a few bytes
	// per segment each). Default 1,440: a day at the default interval.
	History int

	// Location is the time zone of the times shown. Default time.Local.
	Location *time.Location
	// Logger receives errors of the dashboard (a failed export, a failed
	// measurement). Default slog.Default().
	Logger *slog.Logger
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	var errs []error
	if c.Personalizer == nil {
		errs = append(errs, errors.New("Config.Personalizer: required"))
	}
	if (c.Username == "") != (c.Password == "") {
		errs = append(errs, errors.New("Config.Username, Config.Password: set both for basic authentication, or neither"))
	}
	if c.Authorize == nil && c.RoleOf == nil && c.Username == "" && len(c.Users) == 0 && c.BearerToken == "" && !c.Insecure {
		errs = append(errs, errors.New("Config.Authorize, Config.Username and Config.Password, or Config.BearerToken: "+
			"the dashboard shows visitors' data and needs an authorizer (Config.Users and Config.RoleOf are authorizers too; Config.Insecure lets anyone in, for development only)"))
	}
	errs = append(errs, checkUsers(c)...)
	if c.Prefix != "" && !strings.HasPrefix(c.Prefix, "/") {
		errs = append(errs, fmt.Errorf("Config.Prefix: %q does not start with a slash", c.Prefix))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"SampleInterval", int64(c.SampleInterval)}, {"SampleLimit", int64(c.SampleLimit)}, {"History", int64(c.History)},
		{"BacktestRate", int64(c.BacktestRate)}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("Config.%s: %d is negative", f.name, f.v))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("tailor/admin: invalid config: %w", errors.Join(errs...))
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(c.Prefix, "/") {
		c.Prefix += "/"
	}
	if c.SampleInterval == 0 {
		c.SampleInterval = time.Minute
	}
	if c.SampleLimit == 0 {
		c.SampleLimit = 10_000
	}
	if c.History == 0 {
		c.History = 1440
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// A Handler serves the dashboard. Make one with New, mount it at
// Config.Prefix, and Close it on shutdown.
type Handler struct {
	cfg     Config
	p       Source
	mux     *http.ServeMux
	pages   map[string]*template.Template
	hist    *history
	users   []hashedUser // Username and Password, and Users
	bearer  [32]byte     // SHA-256 of BearerToken
	csrf    *http.CrossOriginProtection
	bt      backtester   // nil: backtests are not available
	btClose func() error // stops bt's pass, if any

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// New returns the dashboard of cfg, or an error naming each invalid field.
// It starts measuring segment sizes in the background: Close stops it.
func New(cfg Config) (*Handler, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	h := &Handler{
		cfg:  cfg,
		p:    cfg.Personalizer,
		hist: newHistory(cfg.History),
		done: make(chan struct{}),
	}
	h.users, h.bearer = hashUsers(&cfg), sha256.Sum256([]byte(cfg.BearerToken))
	h.csrf = http.NewCrossOriginProtection()
	pages, err := parsePages(h.funcs())
	if err != nil {
		return nil, err
	}
	h.pages = pages
	if err := h.addEditorPages(); err != nil {
		return nil, err
	}
	if err := h.startBacktests(); err != nil {
		return nil, err
	}
	h.routes()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go h.sampleLoop(ctx)
	return h, nil
}

// Prefix returns the path the handler serves, with a slash at both ends:
// mount it there.
func (h *Handler) Prefix() string { return h.cfg.Prefix }

// Close stops the measurements. The handler keeps serving what it has.
func (h *Handler) Close() error {
	h.closeOnce.Do(func() {
		h.cancel()
		<-h.done
		if h.btClose != nil {
			h.btClose()
		}
	})
	return nil
}

//go:embed templates/*.html static/*
var files embed.FS

func (h *Handler) routes() {
	p := h.cfg.Prefix
	m := http.NewServeMux()
	m.HandleFunc("GET "+p+"{$}", h.overview)
	m.HandleFunc("GET "+p+"segments/{name}", h.segment)
	m.HandleFunc("GET "+p+"segments/{name}/export.csv", h.exportCSV)
	m.HandleFunc("GET "+p+"segments/{name}/export.ndjson", h.exportNDJSON)
	m.HandleFunc("GET "+p+"visitors", h.search)
	m.HandleFunc("GET "+p+"visitors/{id}", h.visitor)
	m.HandleFunc("GET "+p+"experiments", h.experiments)
	m.HandleFunc("GET "+p+"rules", h.rules)
	m.HandleFunc("GET "+p+"webhooks", h.webhooks)
	m.HandleFunc("GET "+p+"style.css", h.static("static/style.css", "text/css; charset=utf-8"))
	m.HandleFunc("GET "+p+"favicon.svg", h.static("static/favicon.svg", "image/svg+xml"))
	h.editorRoutes(m)
	m.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			h.errorPage(w, r, http.StatusMethodNotAllowed, "This page only reads: only the editor's forms change anything.")
			return
		}
		h.errorPage(w, r, http.StatusNotFound, "There is no such page.")
	})
	h.mux = m
}

// ServeHTTP serves a page of the dashboard to an authorized request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	if !strings.HasPrefix(r.URL.Path, h.cfg.Prefix) {
		http.NotFound(w, r)
		return
	}
	u, ok, challenge := h.authenticate(r)
	if !ok {
		if challenge != "" {
			hd.Set("WWW-Authenticate", challenge)
			http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
			return
		}
		http.Error(w, "403 Forbidden", http.StatusForbidden)
		return
	}
	r = withUser(r, u)
	if !h.guard(w, r) {
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) static(name, ctype string) http.HandlerFunc {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Cache-Control", "private, max-age=3600")
		w.Write(b)
	}
}
