package openfeature_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/tailorhq/tailor/internal/testenv"

	"github.com/tailorhq/tailor/middleware"
	tailorof "github.com/tailorhq/tailor/middleware/openfeature"
	"github.com/tailorhq/tailor/middleware/slots"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/bolt"
	"github.com/tailorhq/tailor/store/memory"
	"github.com/tailorhq/tailor/store/redis"
)

const segmentsFile = `{"segments": [
  {"name": "pricing-curious", "description": "visited the pricing page twice this week", "priority": 50,
   "rule": {"pageVisited": {"path": "/pricing", "min": 2, "within": "7d"}}},
  {"name": "signed-up", "rule": {"eventCount": {"name": "signup", "min": 1}}},
  {"name": "newsletter", "rule": {"context": {"utmSource": "newsletter"}}}
]}`

const slotsFile = `{"slots": [
  {"name": "hero",
   "variants": [{"key": "talk-to-sales", "segment": "pricing-curious", "priority": 10}],
   "default": {"key": "welcome"}},
  {"name": "cta",
   "variants": [{"key": "blue"}, {"key": "green"}],
   "default": {"key": "plain"},
   "experiment": {"key": "cta-colour", "variants": [{"key": "blue", "weight": 1}, {"key": "green", "weight": 1}],
                  "coverage": 1}}
]}`

const flagsFile = `{"flags": {
  "sales-offer": {"type": "string", "default": "none",
    "rules": [{"segment": "signed-up", "value": "upgrade"},
              {"segments": ["newsletter", "pricing-curious"], "value": "call-us", "variant": "curious"}]},
  "discount": {"type": "float", "default": 0, "rules": [{"segment": "pricing-curious", "value": 0.1}]},
  "max-seats": {"type": "integer", "default": 5, "rules": [{"segment": "signed-up", "value": 50}]},
  "beta": {"type": "boolean", "default": false},
  "theme": {"type": "object", "default": {"colour": "grey"}, "rules": [{"segment": "pricing-curious", "value": {"colour": "gold"}}]}
}}`

// site is a Personalizer over a store, with the test's segments, slots and
// flags, and a provider registered under its own domain of the SDK.
type site struct {
	t        testing.TB
	p        *middleware.Personalizer
	engine   *rules.Engine
	slots    *slots.Engine
	provider *tailorof.Provider
	client   *of.Client
}

func memoryStore(t *testing.T) store.Store { return memory.New(store.Limits{}) }

func boltStore(t *testing.T) store.Store {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "tailor.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// redisStore returns a Redis store under a fresh key prefix, removed at the
// end of the test, or skips t without a server (see internal/testenv).
func redisStore(t *testing.T) store.Store {
	c, prefix := testenv.RedisPrefix(t, "openfeature")
	st, err := redis.New(c, redis.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var keys = []middleware.KeyPair{middleware.GenerateKeyPair()}

func newSite(t testing.TB, st store.Store) *site {
	t.Helper()
	engine := new(rules.Engine)
	if err := engine.Reload([]byte(segmentsFile)); err != nil {
		t.Fatal(err)
	}
	se := new(slots.Engine)
	if err := se.Reload([]byte(slotsFile), slots.EngineSegments(engine)); err != nil {
		t.Fatal(err)
	}
	flags, err := tailorof.ParseFlags([]byte(flagsFile), tailorof.Segments("pricing-curious", "signed-up", "newsletter"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := middleware.New(middleware.Config{Keys: keys, Store: st, Engine: engine,
		WriteBehind: middleware.WriteBehindConfig{FlushInterval: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	provider, err := tailorof.NewProvider(tailorof.Config{Personalizer: p, Slots: se, Flags: flags,
		PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := of.SetNamedProviderAndWait(t.Name(), provider); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { of.SetNamedProviderAndWait(t.Name(), of.NoopProvider{}) })
	return &site{t: t, p: p, engine: engine, slots: se, provider: provider, client: of.NewClient(t.Name())}
}

// browser is a client that sends back its cookie.
type browser struct{ cookie *http.Cookie }

// visit requests path as b through the site's Handler, running f in the
// wrapped handler.
func (s *site) visit(b *browser, path string, f func(w http.ResponseWriter, r *http.Request)) {
	s.t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("User-Agent", "Mozilla/5.0")
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	rec := httptest.NewRecorder()
	s.p.Handler(http.HandlerFunc(f)).ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		s.t.Fatalf("GET %s: %d", path, rec.Code)
	}
	for _, c := range rec.Result().Cookies() {
		b.cookie = c
	}
}

func nothing(http.ResponseWriter, *http.Request) {}

// pricingCurious returns a browser that visited /pricing twice (its
// requests from the third are in pricing-curious), and its visitor id.
func (s *site) pricingCurious() (*browser, string) {
	b := &browser{}
	s.visit(b, "/pricing", nothing)
	s.visit(b, "/pricing", nothing)
	var id string
	s.visit(b, "/", func(_ http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		if !v.In("pricing-curious") {
			s.t.Fatalf("after two visits of /pricing the visitor is in %v, want pricing-curious", v.Segments())
		}
		id = v.ID()
	})
	return b, id
}

func (s *site) flush() {
	s.t.Helper()
	if err := s.p.Flush(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

// stored returns the stored profile id, after a flush.
func (s *site) stored(id string) *store.Profile {
	s.t.Helper()
	s.flush()
	prof, err := s.p.Store().Load(context.Background(), id)
	if err != nil {
		s.t.Fatalf("Load %s: %v", id, err)
	}
	return prof
}

// eventually polls cond until it holds, failing after a generous deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
