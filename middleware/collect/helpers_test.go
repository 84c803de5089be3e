package collect_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/collect"
	"github.com/tailorhq/tailor/store"
)

const browserUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"

var testKeys = middleware.KeyPair{
	Hash:  []byte("0123456789abcdef0123456789abcdef"),
	Block: []byte("fedcba9876543210fedcba9876543210"),
}

// newP returns a Personalizer on st, closed at the end of the test.
func newP(t testing.TB, st store.Store, mod func(*middleware.Config)) *middleware.Personalizer {
	t.Helper()
	cfg := middleware.Config{Keys: []middleware.KeyPair{testKeys}, Store: st}
	if mod != nil {
		mod(&cfg)
	}
	p, err := middleware.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Logf("Close: %v", err)
		}
	})
	return p
}

// newCollector returns p's collection endpoint for cfg.
func newCollector(t testing.TB, p *middleware.Personalizer, cfg collect.Config) *collect.Collector {
	t.Helper()
	c, err := collect.New(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// echo answers with the visitor's id and segments.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	v := middleware.FromContext(r.Context())
	io.WriteString(w, v.ID())
	for _, s := range v.Segments() {
		io.WriteString(w, " "+s)
	}
})

// clock is a settable time source.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }
