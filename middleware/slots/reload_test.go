package slots_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware/slots"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

func heroFile(title string) string {
	return fmt.Sprintf(`{"slots": [{"name": "hero",
	  "variants": [{"key": "red-sox", "segment": "red-sox-fan", "fields": {"title": "Go Sox"}}],
	  "default": {"key": "welcome", "fields": {"title": %q}}}]}`, title)
}

var positioned = regexp.MustCompile(`^slots\.json:\d+:\d+: `)

const heroPage = `{{with slot .Request "hero"}}<h1 {{.Attrs}}>{{.Fields.title}}</h1>{{end}}`

// TestReload: templates built on an engine show its new slots once it is
// reloaded; a bad file changes nothing and is reported with its position.
func TestReload(t *testing.T) {
	t.Parallel()
	opts := []slots.ParseOption{slots.Filename("slots.json"), slots.Segments(testSegments...)}
	set, err := parseEngine([]byte(heroFile("Welcome")), opts...)
	if err != nil {
		t.Fatal(err)
	}
	s := newTestSite(t)
	if got := render(t, s, set, "/", heroPage); !strings.Contains(got, ">Welcome<") {
		t.Fatalf("before: %s", got)
	}
	if err := set.Reload([]byte(heroFile("Hello again")), opts...); err != nil {
		t.Fatal(err)
	}
	if got := render(t, s, set, "/", heroPage); !strings.Contains(got, ">Hello again<") {
		t.Fatalf("after a reload: %s", got)
	}
	if st := set.Status(); st.Err != nil || set.Set().Len() != 1 || st.Source != "slots.json" {
		t.Fatalf("status %+v", st)
	}

	// Bad files: invalid JSON, and a segment the engine does not know.
	for _, bad := range []string{
		`{"slots": [`,
		strings.Replace(heroFile("x"), "red-sox-fan", "no-such-segment", 1),
	} {
		if err := set.Reload([]byte(bad), opts...); err == nil || !positioned.MatchString(err.Error()) {
			t.Fatalf("Reload(%s) = %v, want a positioned error", bad, err)
		}
		if st := set.Status(); st.Err == nil || set.Set().Len() != 1 {
			t.Fatalf("status after a bad file: %+v", st)
		}
		if got := render(t, s, set, "/", heroPage); !strings.Contains(got, ">Hello again<") {
			t.Fatalf("after a bad file: %s", got)
		}
	}
	if _, ok := set.Set().Slot("hero"); !ok || strings.Join(set.Set().Slots(), ",") != "hero" {
		t.Fatal("slots lost")
	}
	// The dashboard learns it through the engine's Tally.
	tally, err := slots.NewTally(set, slots.TallyConfig{Store: memory.New(store.Limits{})})
	if err != nil {
		t.Fatal(err)
	}
	if fs := tally.FileStatus(); fs.Source != "slots.json" || fs.Err == nil || fs.Loaded.IsZero() || fs.Attempted.Before(fs.Loaded) {
		t.Fatalf("FileStatus %+v", fs)
	}
}

// TestWatch: a slots file edited while the site runs is picked up.
func TestWatch(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "slots.json")
	if err := os.WriteFile(path, []byte(heroFile("Welcome")), 0o600); err != nil {
		t.Fatal(err)
	}
	set := new(slots.Engine)
	err := set.ReloadFile(path, slots.Segments(testSegments...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- set.Watch(ctx, path, 10*time.Millisecond, slots.Segments(testSegments...)) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v", err)
		}
	}()
	title := func() string {
		sl, _ := set.Set().Slot("hero")
		return fmt.Sprint(sl.Default.Fields["title"])
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (title %q, status %+v)", what, title(), set.Status())
			}
		}
	}
	if err := os.WriteFile(path, []byte(heroFile("Edited")), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("the edit", func() bool { return title() == "Edited" })
	if err := os.WriteFile(path, []byte(`{"slots": [{"name": }]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("the error", func() bool { return set.Status().Err != nil })
	if !strings.Contains(set.Status().Err.Error(), path+":1:") || title() != "Edited" {
		t.Fatalf("bad file: %v, title %q", set.Status().Err, title())
	}
	if set.Set().Source() != path || set.Status().Source != path {
		t.Errorf("Source() = %q, want %q", set.Set().Source(), path)
	}
}

// TestReloadKeepsBandit: a reloaded experiment's bandit starts from what
// the previous one learned, without waiting for the next count.
func TestReloadKeepsBandit(t *testing.T) {
	t.Parallel()
	st := memory.New(store.Limits{})
	for i := range 200 {
		exposed(t, st, fmt.Sprint("a", i), "welcome-back", "vip", 0, boolInt(i < 10))
		exposed(t, st, fmt.Sprint("b", i), "welcome-back-2", "vip", 0, boolInt(i < 60))
	}
	file := func(title string) []byte {
		return fmt.Appendf(nil, `{"slots": [{"name": "hero",
		  "variants": [{"key": "welcome-back", "segment": "returning", "fields": {"title": %q}},
		               {"key": "welcome-back-2", "fields": {"title": "Good to see you"}}],
		  "default": {"key": "welcome"},
		  "experiment": {"key": "hero-returning", "segment": "returning",
		    "variants": [{"key": "welcome-back", "weight": 1}, {"key": "welcome-back-2", "weight": 1}],
		    "goals": ["purchase", "signup"], "breakdown": ["vip"], "bandit": {"floor": 0.05}}}]}`, title)
	}
	set, err := parseEngine(file("Welcome back"))
	if err != nil {
		t.Fatal(err)
	}
	tally, err := slots.NewTally(set, slots.TallyConfig{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := tally.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w := set.BanditWeights("hero", "vip"); math.Abs(w[1]-0.95) > 1e-6 {
		t.Fatalf("weights before the reload: %v", w)
	}
	if err := set.Reload(file("Welcome back, friend")); err != nil {
		t.Fatal(err)
	}
	if w := set.BanditWeights("hero", "vip"); math.Abs(w[1]-0.95) > 1e-6 {
		t.Fatalf("weights after the reload: %v, want those learned", w)
	}
	// An experiment of another key starts afresh.
	if err := set.Reload([]byte(strings.Replace(string(file("x")), `"key": "hero-returning"`, `"key": "hero-v2"`, 1))); err != nil {
		t.Fatal(err)
	}
	if w := set.BanditWeights("hero", "vip"); math.Abs(w[1]-0.5) > 1e-9 {
		t.Fatalf("weights of a new experiment: %v", w)
	}
}

// TestReloadWithEngineSegments: a slots file reloaded after the segments
// file may name the segments that reload added.
func TestReloadWithEngineSegments(t *testing.T) {
	t.Parallel()
	engine := new(rules.Engine)
	if err := engine.Reload([]byte(`[{"name": "red-sox-fan", "rule": {"visits": {"min": 1}}}]`)); err != nil {
		t.Fatal(err)
	}
	opts := []slots.ParseOption{slots.Filename("slots.json"), slots.EngineSegments(engine)}
	set, err := parseEngine([]byte(heroFile("Welcome")), opts...)
	if err != nil {
		t.Fatal(err)
	}
	withVIP := strings.Replace(heroFile("Welcome"), `"segment": "red-sox-fan"`, `"segment": "vip"`, 1)
	if err := set.Reload([]byte(withVIP), opts...); err == nil || !strings.Contains(err.Error(), `unknown segment "vip"`) {
		t.Fatalf("Reload naming an unknown segment: %v", err)
	}
	if err := engine.Reload([]byte(`[{"name": "red-sox-fan", "rule": {"visits": {"min": 1}}}, {"name": "vip", "rule": {"visits": {"min": 9}}}]`)); err != nil {
		t.Fatal(err)
	}
	if err := set.Reload([]byte(withVIP), opts...); err != nil {
		t.Fatalf("Reload after the segments file added vip: %v", err)
	}
}
