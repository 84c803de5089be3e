// Package site is the demo of a software company, Relay (on-call alerts
// and status pages), whose site is personalised by tailor for the B2B
// story: a visitor who viewed the pricing page twice this week is offered
// a call with sales; a follower on X sees the community banner; a sales
// opportunity that the CRM pushes with a Segment identify call sees the
// case study of their industry; a lead who opens the newsletters sees the
// webinar. It is built on github.com/go-chi/chi/v5 and its pages are
// github.com/a-h/templ components. The command in the parent directory
// serves it.
package site

//go:generate go run github.com/a-h/templ/cmd/templ@v0.3.1118 generate

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/admin"
	"github.com/tailorhq/tailor/middleware/collect"
	"github.com/tailorhq/tailor/middleware/definitions"
	"github.com/tailorhq/tailor/middleware/slots"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/bolt"
)

// segmentsJSON defines the site's segments, one per story.
//
//go:embed segments.json
var segmentsJSON []byte

// slotsJSON declares the places of the pages that depend on the visitor:
// the call to action, the community banner, the case study and the
// webinar.
//
//go:embed slots.json
var slotsJSON []byte

//go:embed style.css
var styleCSS []byte

// emailEvents are the track events of the email tool, which the email
// rule reads: only servers (with a write key) may send them, so that a
// browser cannot make itself "email-engaged".
var emailEvents = []string{"email_sent", "email_delivered", "email_opened", "email_clicked"}

// Config configures the site.
type Config struct {
	// DB is the path of the bbolt file that keeps visitors. Required.
	DB string
	// Keys is the path of the cookie keys file. Default DB+".keys".
	Keys string
	// WriteKeys authenticate server-to-server calls of the collection
	// endpoint at /_tailor/v1/ (Segment's tracking API): the CRM's
	// identify calls, the email tool's events. Default none: only the
	// site's own pages may send events.
	WriteKeys []string
	// AdminPassword is the password of user "admin" (an editor) for the
	// dashboard at /_tailor/admin/. Required.
	AdminPassword string
	// FlushInterval is how often events are written. Default 1 second.
	FlushInterval time.Duration
	// Logger receives the site's and tailor's logs. Default slog.Default().
	Logger *slog.Logger
}

// Site is Relay's web site. Make it with Open, serve Handler, and Close it
// after the server has drained.
type Site struct {
	p       *middleware.Personalizer
	st      store.Store
	engine  *rules.Engine
	slots   *slots.Engine
	collect *collect.Collector
	admin   *admin.Handler
	defs    *definitions.Definitions
	log     *slog.Logger
}

// Open opens the database and returns the site.
func Open(cfg Config) (s *Site, err error) {
	if cfg.DB == "" {
		return nil, errors.New("site: Config.DB is required")
	}
	if cfg.AdminPassword == "" {
		return nil, errors.New("site: Config.AdminPassword is required")
	}
	if cfg.Keys == "" {
		cfg.Keys = cfg.DB + ".keys"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	keys, err := middleware.LoadOrCreateKeys(cfg.Keys)
	if err != nil {
		return nil, err
	}
	st, err := bolt.Open(cfg.DB, bolt.Options{})
	if err != nil {
		return nil, err
	}
	s = &Site{st: st, log: cfg.Logger, engine: &rules.Engine{Logger: cfg.Logger}, slots: &slots.Engine{Logger: cfg.Logger}}
	defer func() {
		if err != nil {
			s.Close(context.Background())
		}
	}()
	if err = s.engine.Reload(segmentsJSON, rules.Filename("segments.json")); err != nil {
		return nil, err
	}
	if err = s.slots.Reload(slotsJSON, slots.Filename("slots.json"), slots.EngineSegments(s.engine)); err != nil {
		return nil, err
	}
	// The store keeps the definitions, so that the dashboard's editor can
	// publish new versions; the embedded files are the first version.
	s.defs, err = definitions.Open(context.Background(), definitions.Config{Store: st, Segments: s.engine, Slots: s.slots,
		Files: definitions.Content{Segments: string(segmentsJSON), Slots: string(slotsJSON)}, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	s.p, err = middleware.New(middleware.Config{Keys: keys, Store: st, Engine: s.engine, Logger: cfg.Logger,
		WriteBehind: middleware.WriteBehindConfig{FlushInterval: cfg.FlushInterval}})
	if err != nil {
		return nil, err
	}
	s.collect, err = collect.New(s.p, collect.Config{WriteKeys: cfg.WriteKeys, ServerEvents: emailEvents})
	if err != nil {
		return nil, err
	}
	s.admin, err = admin.New(admin.Config{Personalizer: s.p, Username: "admin", Password: cfg.AdminPassword,
		Definitions: s.defs, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Close writes every pending event and closes the database. Call it after
// the server has drained. It is safe on a Site that Open gave up on.
func (s *Site) Close(ctx context.Context) error {
	var errs []error
	if s.admin != nil {
		errs = append(errs, s.admin.Close())
	}
	if s.defs != nil {
		errs = append(errs, s.defs.Close())
	}
	if s.p != nil {
		errs = append(errs, s.p.Close(ctx))
	}
	return errors.Join(append(errs, s.st.Close())...)
}

// Personalizer returns the site's Personalizer.
func (s *Site) Personalizer() *middleware.Personalizer { return s.p }

// Handler returns the site: its pages wrapped in tailor, and beside them
// (not page views, not personalised) the collection endpoint at
// /_tailor/v1/ with the snippet /_tailor/t.js, the dashboard at
// /_tailor/admin/ and the stylesheet.
func (s *Site) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(chimw.Recoverer)
	r.Handle("/_tailor/v1/*", s.collect)
	r.Get("/_tailor/t.js", s.collect.ServeHTTP)
	r.Handle(s.admin.Prefix()+"*", s.admin)
	r.Get("/style.css", style)

	r.Group(func(r chi.Router) {
		r.Use(s.p.Handler, s.emailLanding)
		r.Get("/", s.home)
		r.Get("/pricing", s.pricing)
		r.Get("/customers", s.customers)
		r.Get("/customers/{industry}", s.customer)
		r.Get("/community", s.community)
		r.Get("/webinar", s.webinar)
		r.Post("/webinar", s.registerWebinar)
		r.Get("/contact-sales", s.contactSales)
		r.Post("/contact-sales", s.requestCall)
		r.Get("/signin/x", s.signinXForm)
		r.Post("/signin/x", s.signinX)
		r.Post("/signin", s.signin)
		r.Post("/signout", s.signout)
		r.NotFound(s.notFound)
	})
	return r
}

func style(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(styleCSS)
}

// emailLanding records a click on a newsletter's link: a page reached with
// utm_medium=email and a utm_campaign is the track event "email_clicked"
// of that campaign, which the email rule (segment email-engaged) counts,
// as it counts the "email_opened" events that the email tool sends to the
// collection endpoint. The visitor is in the segment from the next page
// on: segments are classified at the start of a request.
func (s *Site) emailLanding(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method == http.MethodGet && q.Get("utm_medium") == "email" {
			if c := q.Get("utm_campaign"); c != "" && len(c) <= 100 {
				if err := middleware.FromContext(r.Context()).Track("email_clicked", map[string]any{"campaign": c}); err != nil {
					s.log.Warn("saas: record an email click", "err", err)
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// render writes a page: the component in the layout, with the community
// banner picked for the visitor. It renders into a buffer first, so that a
// failed render is a clean 500.
func (s *Site) render(w http.ResponseWriter, r *http.Request, status int, title string, body templ.Component) {
	pg := page{Title: title, Path: r.URL.Path, Community: s.slots.Pick(middleware.FromContext(r.Context()), "community")}
	var b bytes.Buffer
	if err := layout(pg).Render(templ.WithChildren(r.Context(), body), &b); err != nil {
		s.log.Error("saas: render", "path", r.URL.Path, "err", err)
		http.Error(w, "could not render the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// pick returns the content of a slot for the visitor of r.
func (s *Site) pick(r *http.Request, slot string) slots.Choice {
	return s.slots.Pick(middleware.FromContext(r.Context()), slot)
}

func (s *Site) home(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "On-call alerts and status pages",
		homePage(s.pick(r, "cta"), s.pick(r, "case-study"), s.pick(r, "webinar")))
}

func (s *Site) pricing(w http.ResponseWriter, r *http.Request) {
	middleware.FromContext(r.Context()).Describe("pricing", "")
	s.render(w, r, http.StatusOK, "Pricing", pricingPage(s.pick(r, "cta")))
}

func (s *Site) customers(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "Customers", customersPage(caseStudies))
}

func (s *Site) customer(w http.ResponseWriter, r *http.Request) {
	cs := caseStudyFor(chi.URLParam(r, "industry"))
	if cs == nil {
		s.notFound(w, r)
		return
	}
	middleware.FromContext(r.Context()).Describe("case-study", cs.Industry)
	s.render(w, r, http.StatusOK, cs.Company, customerPage(*cs))
}

func (s *Site) community(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "Community", communityPage())
}

func (s *Site) webinar(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "Webinar", webinarPage(r.URL.Query().Has("registered")))
}

// registerWebinar records the registration as the track event
// "webinar_registered".
func (s *Site) registerWebinar(w http.ResponseWriter, r *http.Request) {
	email, ok := formEmail(w, r)
	if !ok {
		return
	}
	if err := middleware.FromContext(r.Context()).Track("webinar_registered", map[string]any{"email": email}); err != nil {
		s.log.Warn("saas: record a webinar registration", "err", err)
	}
	http.Redirect(w, r, "/webinar?registered", http.StatusSeeOther)
}

func (s *Site) contactSales(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "Talk to sales", contactSalesPage(r.URL.Query().Has("sent")))
}

// requestCall records the request as the track event
// "sales_call_requested", with the team size given.
func (s *Site) requestCall(w http.ResponseWriter, r *http.Request) {
	email, ok := formEmail(w, r)
	if !ok {
		return
	}
	size := r.PostFormValue("size")
	switch size {
	case "1-10", "11-50", "51-200", "200+":
	default:
		http.Error(w, "form field size: want 1-10, 11-50, 51-200 or 200+", http.StatusBadRequest)
		return
	}
	if err := middleware.FromContext(r.Context()).Track("sales_call_requested", map[string]any{"email": email, "size": size}); err != nil {
		s.log.Warn("saas: record a call request", "err", err)
	}
	http.Redirect(w, r, "/contact-sales?sent", http.StatusSeeOther)
}

// signin is a demo sign-in: no password, the email is the user id. It ties
// the visitor to the user, whose profile has what the CRM sent about them.
func (s *Site) signin(w http.ResponseWriter, r *http.Request) {
	email, ok := formEmail(w, r)
	if !ok {
		return
	}
	s.identify(w, r, email, map[string]any{"email": email})
}

func (s *Site) signinXForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "Sign in with X", signinXPage())
}

// signinX stands in for the OAuth callback of "Sign in with X": a real one
// would read the handle and whether the user follows @relayhq from X's API;
// the demo takes them from the form. The user is "x:" + handle, with the
// traits twitter.handle and twitter.follows, which segment
// twitter-follower reads.
func (s *Site) signinX(w http.ResponseWriter, r *http.Request) {
	handle := strings.TrimPrefix(strings.TrimSpace(r.PostFormValue("handle")), "@")
	if !validHandle(handle) {
		http.Error(w, "form field handle: want an X handle, 1 to 15 letters, digits or underscores", http.StatusBadRequest)
		return
	}
	follows := r.PostFormValue("follows") == "on"
	s.identify(w, r, "x:"+strings.ToLower(handle), map[string]any{
		"twitter": map[string]any{"handle": "@" + handle, "follows": follows},
	})
}

func (s *Site) identify(w http.ResponseWriter, r *http.Request, user string, traits map[string]any) {
	if err := s.p.Identify(w, r, user, traits); err != nil && !errors.Is(err, middleware.ErrMergeQueued) {
		s.log.Warn("saas: sign-in failed", "err", err)
		http.Error(w, "sign-in failed, try again", http.StatusServiceUnavailable)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// signout signs the visitor out: the browser comes back as a new anonymous
// visitor; the user's profile stays for the next sign-in.
func (s *Site) signout(w http.ResponseWriter, r *http.Request) {
	s.p.SignOut(w, r)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Site) notFound(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusNotFound, "Not found", notFoundPage())
}

// formEmail returns the form field email, or answers 400 and false.
func formEmail(w http.ResponseWriter, r *http.Request) (string, bool) {
	email := strings.TrimSpace(r.PostFormValue("email"))
	if email == "" || len(email) > 200 || !strings.Contains(email, "@") {
		http.Error(w, "form field email: want an email address", http.StatusBadRequest)
		return "", false
	}
	return email, true
}

// validHandle reports whether h is an X handle: 1 to 15 letters, digits
// and underscores.
func validHandle(h string) bool {
	if h == "" || len(h) > 15 {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
