package middleware_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

// TestHandlerBoundsLongPath sends a page view of a 200,002-byte path (net/http
// accepts up to 1 MB) and checks that the profile, cached and stored, keeps
// the path cut at Limits.PathBytes.
func TestHandlerBoundsLongPath(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	p := newP(t, st, nil)
	var cached *store.Profile
	srv := httptest.NewServer(p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		if r.URL.Query().Get("look") != "" {
			cached = v.Profile()
		}
		w.Write([]byte(v.ID()))
	})))
	defer srv.Close()
	c := newClient(t, srv)
	_, id := c.get("/")
	long := "/" + strings.Repeat("a", 200_001)
	for range 3 {
		c.get(long)
	}
	c.get("/?look=1")
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	stored, err := st.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	max := store.DefaultLimits.PathBytes
	for name, prof := range map[string]*store.Profile{"cached": cached, "stored": stored} {
		if prof.Pages[long[:max]] != 3 {
			t.Errorf("%s: the long path counted %d times under its first %d bytes, want 3", name, prof.Pages[long[:max]], max)
		}
		for k := range prof.Pages {
			if len(k) > max {
				t.Errorf("%s: a page path of %d bytes", name, len(k))
			}
		}
		for _, e := range prof.Recent.Events() {
			if len(e.Path) > max {
				t.Errorf("%s: an event of a path of %d bytes", name, len(e.Path))
			}
		}
		if size := prof.Size(); size > 64<<10 {
			t.Errorf("%s: profile of %d bytes", name, size)
		}
	}
}

// TestGoAPIBounds records events through Visitor.Record and Track with
// oversized strings and properties, and checks what the store keeps.
func TestGoAPIBounds(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	p := newP(t, st, nil)
	lim := store.DefaultLimits
	longName := strings.Repeat("n", 200)
	srv := httptest.NewServer(p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := middleware.FromContext(r.Context())
		if r.URL.Query().Get("track") != "" {
			err := v.Record(store.Event{
				Type: store.TypeTrack, Name: strings.Repeat("n", 1000), Referrer: strings.Repeat("r", 10_000),
				Source: strings.Repeat("s", 1000), Campaign: strings.Repeat("c", 1000),
				Props: json.RawMessage(`{"big":"` + strings.Repeat("p", 10_000) + `"}`),
			})
			if err != nil {
				t.Error(err)
			}
			if err := v.Track(longName, map[string]any{"big": strings.Repeat("q", 10_000), "small": 1}); err != nil {
				t.Error(err)
			}
		}
		w.Write([]byte(v.ID()))
	})))
	defer srv.Close()
	c := newClient(t, srv)
	_, id := c.get("/")
	c.get("/?track=1")
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	prof, err := st.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if prof.Counts[strings.Repeat("n", lim.StringBytes)] != 1 || prof.Counts[longName] != 1 {
		t.Errorf("counts %v", prof.Counts)
	}
	tracked := 0
	for _, e := range prof.Recent.Events() {
		if e.Type != store.TypeTrack {
			continue
		}
		tracked++
		if len(e.Name) > lim.StringBytes || len(e.Referrer) > lim.ReferrerBytes || len(e.Source) > lim.StringBytes ||
			len(e.Campaign) > lim.StringBytes || len(e.Props) > lim.PropsBytes {
			t.Errorf("event kept with name %d, referrer %d, source %d, campaign %d, props %d bytes",
				len(e.Name), len(e.Referrer), len(e.Source), len(e.Campaign), len(e.Props))
		}
	}
	// Track drops oversized properties itself: only Record's event is cut
	// by the fold.
	if tracked != 2 || prof.Truncated != 1 {
		t.Errorf("%d track events, %d truncated; want 2 and 1", tracked, prof.Truncated)
	}
}

// TestCostOfHugePages checks that the cache cost of a profile of 4 huge
// pages, as stored before paths were bounded, is near its real size.
func TestCostOfHugePages(t *testing.T) {
	t.Parallel()
	p := store.New("v")
	for i, c := range "abcd" {
		p.Apply(store.Limits{PathBytes: 1 << 20}, store.Event{ID: store.EventID("p", uint64(i+1)), Type: store.TypePage,
			Path: "/" + strings.Repeat(string(c), 200_001)})
	}
	enc, err := p.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := store.Unmarshal(enc)
	if err != nil {
		t.Fatal(err)
	}
	for name, prof := range map[string]*store.Profile{"folded": p, "decoded": dec} {
		if c := middleware.Cost(prof); c < int64(len(enc)) || c > 2*int64(len(enc)) {
			t.Errorf("%s: cost %d of a profile of %d bytes encoded", name, c, len(enc))
		}
	}
}
