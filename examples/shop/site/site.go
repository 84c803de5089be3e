// Package site is the demo shop: a small store of books, Red Sox gear,
// Grateful Dead records, watercolour paints and winter gear, personalised
// by tailor. The command in the parent directory serves it.
package site

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/admin"
	"github.com/tailorhq/tailor/middleware/collect"
	"github.com/tailorhq/tailor/middleware/definitions"
	"github.com/tailorhq/tailor/middleware/metrics"
	"github.com/tailorhq/tailor/middleware/slots"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/rules/assoc"
	"github.com/tailorhq/tailor/store"
)

//go:embed templates/*.html
var templateFS embed.FS

// Config configures the shop.
type Config struct {
	// DB is the path of the bbolt file that keeps visitors, unless Store
	// names another store. The cookie keys are kept beside it, in
	// DB+".keys", unless Keys is set. Required unless Opened is set.
	DB string
	// Store, if set, names the store instead of DB: a redis:// or
	// postgres:// URL (several shop instances can then share it; give them
	// the same Keys file).
	Store string
	// Opened, if set, is an open store to keep visitors in, used instead
	// of the one DB or Store names: for a program that opens the store
	// itself, to share it between sites or to watch the calls the shop
	// makes (examples/scale does both). The site does not close it. Keys
	// is then required unless DB is set.
	Opened store.Store
	// Keys is the path of the cookie keys file. Default DB+".keys".
	Keys string
	// VisitTimeout ends a visit after this long without a request.
	// Default 30 minutes.
	VisitTimeout time.Duration
	// FlushInterval is how often events are written. Default 1 second.
	FlushInterval time.Duration
	// Segments is the path of a segments file to use instead of the
	// built-in one; it is watched, and reloaded when it changes (a bad
	// version is refused, and the last good one kept).
	Segments string
	// Slots is the path of a slots file to use instead of the built-in
	// one, watched and reloaded like Segments. The segments it names must
	// be in the segments loaded when it is (re)loaded.
	Slots string
	// WriteKeys authenticate server-to-server calls of the collection
	// endpoint at /_tailor/ (Segment's tracking API). Default none: only
	// the shop's own pages may send events.
	WriteKeys []string
	// AdminPassword is the password of user "admin" for the dashboard at
	// /_tailor/admin/, an editor of the definitions. Required.
	AdminPassword string
	// ViewerPassword, if set, is the password of user "viewer", who sees
	// the dashboard read-only.
	ViewerPassword string
	// NoDemoHistory starts the recommendation model with the stored
	// visitors only, without the made-up customers that give a fresh shop
	// something to recommend.
	NoDemoHistory bool
	Logger        *slog.Logger
}

// Site is the shop's http.Handler.
type Site struct {
	p          *middleware.Personalizer
	closeStore func() error
	model      atomic.Pointer[assoc.Model]
	follower   *assoc.Follower
	engine     *rules.Engine
	admin      *admin.Handler
	defs       *definitions.Definitions // nil: definitions from files
	collect    *collect.Collector
	metrics    *prometheus.Registry
	demo       bool
	log        *slog.Logger
	stop       context.CancelFunc
	tmpl       *template.Template
	mux        *http.ServeMux
	carts      carts
}

// Open opens the database and returns the shop. Close it when done.
func Open(cfg Config) (*Site, error) {
	if cfg.DB == "" && cfg.Opened == nil {
		return nil, errors.New("site: Config.DB is required")
	}
	if cfg.Keys == "" {
		if cfg.DB == "" {
			return nil, errors.New("site: Config.Keys is required with Config.Opened and no DB")
		}
		cfg.Keys = cfg.DB + ".keys"
	}
	keys, err := middleware.LoadOrCreateKeys(cfg.Keys)
	if err != nil {
		return nil, err
	}
	st, closeStore := cfg.Opened, func() error { return nil }
	if st == nil {
		dsn := cfg.Store
		if dsn == "" {
			dsn = cfg.DB
		}
		st, closeStore, err = openStore(context.Background(), dsn)
		if err != nil {
			return nil, err
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	engine := &rules.Engine{Logger: cfg.Logger}
	model, follower, err := newModel(context.Background(), st, !cfg.NoDemoHistory, engine, cfg.Logger)
	if err != nil {
		closeStore()
		return nil, err
	}
	s := &Site{closeStore: closeStore, mux: http.NewServeMux(), carts: carts{m: make(map[string][]string)},
		demo: !cfg.NoDemoHistory, log: cfg.Logger, follower: follower}
	s.model.Store(model)
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	opts := []rules.ParseOption{rules.Plugins(plugins(s.model.Load))}
	if cfg.Segments == "" {
		err = engine.Reload(segmentsJSON, append(opts, rules.Filename("segments.json"))...)
	} else {
		err = engine.ReloadFile(cfg.Segments, opts...)
	}
	if err != nil {
		stop()
		closeFollower(follower)
		closeStore()
		return nil, err
	}
	if cfg.Segments != "" {
		go engine.Watch(ctx, cfg.Segments, 2*time.Second, opts...)
	}
	s.engine = engine
	p, err := middleware.New(middleware.Config{
		Keys: keys, Store: st, Engine: engine, VisitTimeout: cfg.VisitTimeout, Logger: cfg.Logger,
		WriteBehind: middleware.WriteBehindConfig{FlushInterval: cfg.FlushInterval},
	})
	if err != nil {
		stop()
		closeFollower(follower)
		closeStore()
		return nil, err
	}
	s.collect, err = collect.New(p, collect.Config{WriteKeys: cfg.WriteKeys})
	var m *metrics.Metrics
	if err == nil {
		m, err = metrics.New(metrics.Config{Personalizer: p})
	}
	if err == nil {
		s.metrics = prometheus.NewRegistry()
		err = s.metrics.Register(m)
	}
	set := &slots.Engine{Logger: cfg.Logger}
	var tally *slots.Tally
	if err == nil {
		known := slots.EngineSegments(engine)
		if cfg.Slots == "" {
			err = set.Reload(slotsJSON, slots.Filename("slots.json"), known)
		} else if err = set.ReloadFile(cfg.Slots, known); err == nil {
			go set.Watch(ctx, cfg.Slots, 2*time.Second, known)
		}
	}
	if err == nil {
		if r, ok := st.(store.Ranger); ok {
			tally, err = slots.NewTally(set, slots.TallyConfig{Store: r})
		}
	}
	// With the built-in definitions, the store keeps them, and the
	// dashboard's editor publishes new versions; files stay files.
	_, docs := st.(store.Documents)
	_, leases := st.(store.Leaser)
	if err == nil && cfg.Segments == "" && cfg.Slots == "" && docs && leases {
		s.defs, err = definitions.Open(context.Background(), definitions.Config{Store: st, Segments: engine, Slots: set,
			ParseOptions: opts, Files: definitions.Content{Segments: string(segmentsJSON), Slots: string(slotsJSON)}, Logger: cfg.Logger})
	}
	if err == nil {
		ac := admin.Config{Personalizer: p, Username: "admin", Password: cfg.AdminPassword, Logger: cfg.Logger}
		if cfg.ViewerPassword != "" {
			ac.Users = []admin.User{{Name: "viewer", Password: cfg.ViewerPassword, Role: admin.Viewer}}
		}
		if s.defs != nil {
			ac.Definitions = s.defs
		}
		if tally != nil {
			ac.Experiments = tally
		}
		s.admin, err = admin.New(ac)
	}
	if err != nil {
		if s.defs != nil {
			s.defs.Close()
		}
		p.Close(context.Background())
		stop()
		closeFollower(follower)
		closeStore()
		return nil, err
	}
	tmpl := template.New("site").Funcs(middleware.FuncMap())
	tmpl.Funcs(set.FuncMap(slots.Templates(tmpl))).Funcs(template.FuncMap{
		"recommend":  s.recommend,
		"alsoBought": s.alsoBought,
		"ids":        ids[Product],
		"recIDs":     ids[recommended],
		"price":      func(f float64) string { return fmt.Sprintf("$%.2f", f) },
		"category":   CategoryName,
	})
	_, err = tmpl.ParseFS(templateFS, "templates/*.html")
	if err != nil {
		s.admin.Close()
		if s.defs != nil {
			s.defs.Close()
		}
		p.Close(context.Background())
		stop()
		closeFollower(follower)
		closeStore()
		return nil, err
	}
	s.p, s.tmpl = p, tmpl
	s.routes()
	return s, nil
}

func (s *Site) routes() {
	s.mux.HandleFunc("GET /{$}", s.home)
	s.mux.HandleFunc("GET /products", s.products)
	s.mux.HandleFunc("GET /pricing", s.pricing)
	s.mux.HandleFunc("GET /products/{id}", s.product)
	s.mux.HandleFunc("POST /cart", s.addToCart)
	s.mux.HandleFunc("GET /cart", s.cart)
	s.mux.HandleFunc("POST /checkout", s.checkout)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.logout)
	s.mux.HandleFunc("GET /_tailor/me", s.me)
}

// Handler returns the shop wrapped in tailor, with the collection endpoint
// at /_tailor/ (Segment's tracking API and the browser snippet t.js), the
// admin dashboard at /_tailor/admin/ (user admin) and Prometheus metrics at
// /metrics. Those are outside tailor's Handler, so they are not page views.
func (s *Site) Handler() http.Handler {
	root := http.NewServeMux()
	root.Handle("POST /_tailor/v1/", s.collect)
	root.Handle("GET /_tailor/t.js", s.collect)
	root.Handle(s.admin.Prefix(), s.admin)
	root.Handle("GET /metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{}))
	root.Handle("/", s.p.Handler(s.mux))
	return root
}

// Personalizer returns the shop's Personalizer, for programs that watch
// it: its Aggregates, its Stats.
func (s *Site) Personalizer() *middleware.Personalizer { return s.p }

// Close writes every pending event and closes the database. Call it after
// the server has drained.
func (s *Site) Close(ctx context.Context) error {
	s.stop()
	s.admin.Close()
	if s.defs != nil {
		s.defs.Close()
	}
	return errors.Join(closeFollower(s.follower), s.p.Close(ctx), s.closeStore())
}

// page is what every template gets.
type page struct {
	Request  *http.Request
	Title    string
	Products []Product
	Product  *Product
	Cart     []Product
	Total    float64
	Thanks   bool
	Me       any
}

func (s *Site) render(w http.ResponseWriter, r *http.Request, name string, status int, pg page) {
	pg.Request = r
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	if err := s.tmpl.ExecuteTemplate(&b, name, pg); err != nil {
		http.Error(w, "template error", http.StatusInternalServerError)
		slog.Error("shop: template", "name", name, "err", err)
		return
	}
	w.WriteHeader(status)
	w.Write([]byte(b.String()))
}

func (s *Site) home(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, "home.html", 200, page{Title: "Home", Products: featured(), Thanks: r.URL.Query().Has("thanks")})
}

func featured() []Product {
	var out []Product
	for _, c := range Categories {
		out = append(out, InCategory(c.ID)[0])
	}
	return out
}

func (s *Site) pricing(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, "pricing.html", 200, page{Title: "Prices and delivery"})
}

func (s *Site) products(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, "products.html", 200, page{Title: "All products", Products: Products})
}

func (s *Site) product(w http.ResponseWriter, r *http.Request) {
	p := ProductByID(r.PathValue("id"))
	if p == nil {
		s.render(w, r, "notfound.html", http.StatusNotFound, page{Title: "Not found"})
		return
	}
	v := middleware.FromContext(r.Context())
	v.Describe(p.Category, p.ID)
	s.render(w, r, "product.html", 200, page{Title: p.Name, Product: p, Products: InCategory(p.Category)})
}

func (s *Site) addToCart(w http.ResponseWriter, r *http.Request) {
	v := middleware.FromContext(r.Context())
	p := ProductByID(r.PostFormValue("id"))
	if p == nil {
		http.Error(w, "no such product: form field id", http.StatusBadRequest)
		return
	}
	s.carts.add(cartKey(v, r), p.ID)
	v.Record(store.Event{Type: store.TypeTrack, Name: "add_to_cart", Item: p.ID, Category: p.Category})
	http.Redirect(w, r, "/cart", http.StatusSeeOther)
}

func (s *Site) cart(w http.ResponseWriter, r *http.Request) {
	items := s.carts.get(cartKey(middleware.FromContext(r.Context()), r))
	pg := page{Title: "Cart"}
	for _, id := range items {
		if p := ProductByID(id); p != nil {
			pg.Cart = append(pg.Cart, *p)
			pg.Total += p.Price
		}
	}
	s.render(w, r, "cart.html", 200, pg)
}

func (s *Site) checkout(w http.ResponseWriter, r *http.Request) {
	v := middleware.FromContext(r.Context())
	ids := s.carts.take(cartKey(v, r))
	if len(ids) == 0 {
		http.Redirect(w, r, "/cart", http.StatusSeeOther)
		return
	}
	var items []store.Item
	for _, id := range ids {
		if p := ProductByID(id); p != nil {
			items = append(items, store.Item{ID: p.ID, Category: p.Category, Price: p.Price, Quantity: 1})
		}
	}
	v.Purchase(items...)
	http.Redirect(w, r, "/?thanks", http.StatusSeeOther)
}

// login is a demo sign-in: no password, the email is the user id. It ties
// the visitor to the user, so another browser that signs in with the same
// email gets the same profile.
func (s *Site) login(w http.ResponseWriter, r *http.Request) {
	email := strings.TrimSpace(r.PostFormValue("email"))
	if email == "" || len(email) > 200 || !strings.Contains(email, "@") {
		http.Error(w, "form field email: want an email address", http.StatusBadRequest)
		return
	}
	if err := s.p.Identify(w, r, email, map[string]any{"email": email}); err != nil {
		s.log.Warn("shop: sign-in failed", "err", err)
		http.Error(w, "sign-in failed, try again", http.StatusServiceUnavailable)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// me shows what tailor knows about the visitor.
func (s *Site) me(w http.ResponseWriter, r *http.Request) {
	v := middleware.FromContext(r.Context())
	v.SkipPageView()
	prof := v.Profile()
	me := struct {
		ID           string              `json:"id"`
		UserID       string              `json:"userId,omitempty"`
		New          bool                `json:"new"`
		Tracked      bool                `json:"tracked"`
		Segments     []string            `json:"segments"`
		Facts        rules.Facts         `json:"facts"`
		Profile      *store.Profile      `json:"profile"`
		Explanations []rules.Explanation `json:"explanations"`
	}{v.ID(), v.UserID(), v.New(), v.Tracked(), v.Segments(), v.Facts(), prof,
		s.engine.Explain(&rules.Input{Profile: prof, Request: v.Facts(), Now: time.Now()})}
	if me.Segments == nil {
		me.Segments = []string{}
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(me)
		return
	}
	var raw []byte
	if prof != nil {
		raw, _ = json.MarshalIndent(prof, "", "  ")
	}
	s.render(w, r, "me.html", 200, page{Title: "What tailor knows about you", Me: meView{
		ID: me.ID, UserID: me.UserID, Segments: me.Segments, Facts: factRows(me.Facts), Explanations: me.Explanations,
		Profile: string(raw), ProfileSize: len(raw),
	}})
}

// meView is what me.html shows.
type meView struct {
	ID, UserID   string
	Segments     []string
	Facts        []fact
	Explanations []rules.Explanation
	Profile      string // indented JSON, "" without a profile
	ProfileSize  int
}

// A fact is one row of the request's facts.
type fact struct{ Name, Value string }

// factRows returns the facts of the request that are set, for people.
func factRows(f rules.Facts) []fact {
	var out []fact
	add := func(name, v string) {
		if v != "" {
			out = append(out, fact{name, v})
		}
	}
	add("Page", f.Path)
	add("Came from", f.Referrer)
	add("Campaign source (utm_source)", f.Source)
	add("Campaign medium (utm_medium)", f.Medium)
	add("Campaign (utm_campaign)", f.Campaign)
	add("Device", f.Device)
	add("Country", f.Country)
	if f.New {
		add("First request", "yes: no cookie came with it")
	}
	return out
}

// logout signs the visitor out: the browser comes back as a new anonymous
// visitor (middleware.Personalizer.SignOut), without the user's segments
// or cart; the user's profile stays for the next sign-in.
func (s *Site) logout(w http.ResponseWriter, r *http.Request) {
	s.p.SignOut(w, r)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// cartKey identifies a cart: the visitor, or for untracked visitors the
// address (the demo keeps carts in memory).
func cartKey(v *middleware.Visitor, r *http.Request) string {
	if id := v.ID(); id != "" {
		return id
	}
	return "addr:" + r.RemoteAddr
}

// carts keeps shopping carts in memory, at most maxCarts of them.
type carts struct {
	mu sync.Mutex
	m  map[string][]string
}

const maxCarts, maxCartItems = 10_000, 50

func (c *carts) add(key, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= maxCarts {
		for k := range c.m { // forget an arbitrary cart
			delete(c.m, k)
			break
		}
	}
	if len(c.m[key]) < maxCartItems {
		c.m[key] = append(c.m[key], id)
	}
}

func (c *carts) get(key string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.m[key]...)
}

func (c *carts) take(key string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	items := c.m[key]
	delete(c.m, key)
	return items
}
