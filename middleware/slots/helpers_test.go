package slots_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/slots"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// pathSegment is a segment that a request's path puts the visitor in:
// "/in/customer,returning" is in customer and returning.
func pathSegment(name string) rules.Segment {
	return rules.Segment{Name: name, Rule: rules.RuleFunc(func(in *rules.Input) (bool, error) {
		list, ok := strings.CutPrefix(in.Request.Path, "/in/")
		if !ok {
			return false, nil
		}
		for s := range strings.SplitSeq(list, ",") {
			if s == name {
				return true, nil
			}
		}
		return false, nil
	})}
}

var testSegments = []string{"customer", "red-sox-fan", "returning", "vip"}

// site is one instance of a site: a Personalizer over a store.
type site struct {
	t *testing.T
	p *middleware.Personalizer
}

func newSite(t *testing.T, st store.Store, keys []middleware.KeyPair) *site {
	t.Helper()
	var segs []rules.Segment
	for _, s := range testSegments {
		segs = append(segs, pathSegment(s))
	}
	engine, err := rules.NewEngine(segs...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := middleware.New(middleware.Config{Keys: keys, Store: st, Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return &site{t: t, p: p}
}

func newTestSite(t *testing.T) *site {
	return newSite(t, memory.New(store.Limits{}), []middleware.KeyPair{middleware.GenerateKeyPair()})
}

// browser is a client that sends back its cookie.
type browser struct {
	cookie *http.Cookie
}

// visit makes a request to path as b, running f in the wrapped handler.
func (s *site) visit(b *browser, path string, f func(w http.ResponseWriter, r *http.Request)) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("User-Agent", "Mozilla/5.0")
	if b != nil && b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	rec := httptest.NewRecorder()
	s.p.Handler(http.HandlerFunc(f)).ServeHTTP(rec, req)
	if b != nil {
		for _, c := range rec.Result().Cookies() {
			b.cookie = c
		}
	}
	return rec
}

// with runs f with the visitor of a request of b to path. A browser
// without cookie first visits "/", so that it is a returning visitor (new
// visitors' exposures are not recorded).
func (s *site) with(b *browser, path string, f func(v *middleware.Visitor)) {
	if b != nil && b.cookie == nil {
		s.visit(b, "/", func(http.ResponseWriter, *http.Request) {})
	}
	s.visit(b, path, func(w http.ResponseWriter, r *http.Request) { f(middleware.FromContext(r.Context())) })
}

// parseEngine returns an engine of the slots file data.
func parseEngine(data []byte, opts ...slots.ParseOption) (*slots.Engine, error) {
	e := new(slots.Engine)
	return e, e.Reload(data, opts...)
}
