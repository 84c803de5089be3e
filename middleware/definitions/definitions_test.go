package definitions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware/definitions"
	"github.com/tailorhq/tailor/middleware/slots"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

const segsV0 = `{"segments": [
  {"name": "returning", "rule": {"visits": {"min": 2}}}
]}`

const slotsV0 = `{"slots": [
  {"name": "hero", "variants": [{"key": "back", "segment": "returning", "fields": {"title": "Welcome back"}}],
   "default": {"key": "hello"}}
]}`

const segsPricing = `{"segments": [
  {"name": "returning", "rule": {"visits": {"min": 2}}},
  {"name": "pricing-curious", "description": "visited /pricing twice this week",
   "rule": {"pageVisited": {"path": "/pricing", "min": 2, "within": "7d"}}}
]}`

// instance is what one app instance of a site has: its engines and its
// Definitions over the shared store.
type instance struct {
	segs  *rules.Engine
	slots *slots.Engine
	defs  *definitions.Definitions
}

func open(t *testing.T, st store.Store, opts ...func(*definitions.Config)) *instance {
	t.Helper()
	in := &instance{segs: &rules.Engine{}, slots: &slots.Engine{}}
	if err := in.segs.Reload([]byte(segsV0), rules.Filename("segments.json")); err != nil {
		t.Fatal(err)
	}
	if err := in.slots.Reload([]byte(slotsV0), slots.EngineSegments(in.segs)); err != nil {
		t.Fatal(err)
	}
	cfg := definitions.Config{Store: st, Segments: in.segs, Slots: in.slots,
		Files:        definitions.Content{Segments: segsV0, Slots: slotsV0},
		PollInterval: time.Hour} // switches must come from announcements
	for _, o := range opts {
		o(&cfg)
	}
	d, err := definitions.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	in.defs = d
	return in
}

func names(e *rules.Engine) string {
	var n []string
	for _, s := range e.Segments() {
		n = append(n, s.Name)
	}
	return strings.Join(n, ",")
}

func TestPublishRestore(t *testing.T) {
	ctx := context.Background()
	st := memory.New(store.Limits{})
	a := open(t, st)
	if s := a.defs.Status(); s.Version != 0 || s.Err != nil {
		t.Fatalf("fresh store: status %+v, want version 0 (the files)", s)
	}
	if got := names(a.segs); got != "returning" {
		t.Fatalf("before any publication the engine serves %q, want the files' returning", got)
	}
	dr, err := a.defs.Draft(ctx)
	if err != nil || dr.Base != 0 || dr.Content.Segments != segsV0 {
		t.Fatalf("first draft: %+v, %v; want the files with base 0", dr, err)
	}

	v1, err := a.defs.Publish(ctx, definitions.Content{Segments: segsPricing, Slots: slotsV0}, 0, "ann", "pricing page visitors")
	if err != nil {
		t.Fatal(err)
	}
	if v1.Number != 1 || v1.By != "ann" || v1.Note != "pricing page visitors" || v1.Action != definitions.ActionPublish || v1.At.IsZero() {
		t.Fatalf("version 1: %+v", v1)
	}
	if got := names(a.segs); !strings.Contains(got, "pricing-curious") {
		t.Fatalf("after Publish returned the engine serves %q", got)
	}
	if s := a.defs.Status(); s.Version != 1 {
		t.Fatalf("status after publish: %+v", s)
	}

	// Publishing from a stale base is refused and changes nothing.
	_, err = a.defs.Publish(ctx, definitions.Content{Segments: segsV0}, 0, "bob", "stale")
	if !errors.Is(err, definitions.ErrConflict) {
		t.Fatalf("publish over a newer version: %v, want ErrConflict", err)
	}

	v2, err := a.defs.Restore(ctx, 0, "bob", "back to the files")
	if err != nil {
		t.Fatal(err)
	}
	if v2.Number != 2 || v2.Action != definitions.ActionRestore || v2.From != 0 || v2.By != "bob" {
		t.Fatalf("restore: %+v", v2)
	}
	if got := names(a.segs); got != "returning" {
		t.Fatalf("after restoring the files the engine serves %q", got)
	}
	v3, err := a.defs.Restore(ctx, 1, "ann", "again")
	if err != nil || v3.Number != 3 || v3.From != 1 {
		t.Fatalf("restore of version 1: %+v, %v", v3, err)
	}
	if got := names(a.segs); !strings.Contains(got, "pricing-curious") {
		t.Fatalf("after restoring version 1 the engine serves %q", got)
	}
	if _, err := a.defs.Restore(ctx, 9, "ann", ""); !errors.Is(err, definitions.ErrNoVersion) {
		t.Fatalf("restore of a version never published: %v, want ErrNoVersion", err)
	}

	h, err := a.defs.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var log []string
	for _, v := range h {
		log = append(log, fmt.Sprintf("%d %s %s %d %q", v.Number, v.Action, v.By, v.From, v.Note))
	}
	want := []string{`3 restore ann 1 "again"`, `2 restore bob 0 "back to the files"`, `1 publish ann 0 "pricing page visitors"`}
	if strings.Join(log, "\n") != strings.Join(want, "\n") {
		t.Fatalf("history:\n%s\nwant:\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
	}
	c, err := a.defs.Content(ctx, 2)
	if err != nil || c.Segments != segsV0 {
		t.Fatalf("content of version 2: %+v, %v", c, err)
	}
}

func TestInvalidIsRefusedWithPositions(t *testing.T) {
	ctx := context.Background()
	a := open(t, memory.New(store.Limits{}))
	bad := definitions.Content{Segments: "{\"segments\": [\n  {\"name\": \"x\", \"rule\": {\"pageVisited\": {\"path\": \"/p\", \"within\": \"7days\"}}}\n]}"}
	_, err := a.defs.Publish(ctx, bad, 0, "ann", "bad")
	var ce *rules.ConditionError
	if !errors.As(err, &ce) || ce.File != definitions.SegmentsFile || ce.Line != 2 || !strings.Contains(ce.Path, "within") {
		t.Fatalf("publish of a bad duration: %v; want a problem in segments.json at line 2, at .../within", err)
	}
	// Slots are checked against the segments of the same content.
	_, err = a.defs.Publish(ctx, definitions.Content{Segments: segsV0, Slots: strings.ReplaceAll(slotsV0, `"returning"`, `"returnin"`)}, 0, "ann", "typo")
	if !errors.As(err, &ce) || ce.File != definitions.SlotsFile {
		t.Fatalf("publish of a slot naming an unknown segment: %v; want a problem in slots.json", err)
	}
	if err := a.defs.SaveDraft(ctx, definitions.Draft{Content: bad}); err == nil {
		t.Fatal("SaveDraft of content that does not parse: no error")
	}
	if h, _ := a.defs.History(ctx); len(h) != 0 {
		t.Fatalf("refused publications left a history: %+v", h)
	}
}

func TestDraft(t *testing.T) {
	ctx := context.Background()
	a := open(t, memory.New(store.Limits{}))
	dr := definitions.Draft{Content: definitions.Content{Segments: segsPricing, Slots: slotsV0}, Base: 0, By: "ann"}
	if err := a.defs.SaveDraft(ctx, dr); err != nil {
		t.Fatal(err)
	}
	got, err := a.defs.Draft(ctx)
	if err != nil || got.Content != dr.Content || got.By != "ann" || got.At.IsZero() {
		t.Fatalf("saved draft read back: %+v, %v", got, err)
	}
	if _, err := a.defs.Publish(ctx, got.Content, got.Base, "ann", "go"); err != nil {
		t.Fatal(err)
	}
	got, err = a.defs.Draft(ctx)
	if err != nil || got.Base != 1 || got.Content.Segments != segsPricing {
		t.Fatalf("draft after publishing it: %+v, %v; want the published version 1", got, err)
	}
	got.Content = definitions.Content{Segments: segsV0}
	if err := a.defs.SaveDraft(ctx, got); err != nil {
		t.Fatal(err)
	}
	// A publication of other content leaves the draft alone.
	if _, err := a.defs.Publish(ctx, definitions.Content{Segments: segsPricing}, 1, "bob", "api"); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.defs.Draft(ctx); got.Content.Segments != segsV0 || got.Base != 1 {
		t.Fatalf("draft after publishing something else: %+v; want it kept, on its base 1", got)
	}
	if err := a.defs.DiscardDraft(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.defs.Draft(ctx); got.Content.Segments != segsPricing || got.Base != 2 {
		t.Fatalf("draft after discarding: %+v; want version 2's content", got)
	}
}

// waitVersion waits for in to serve version n, and returns how long it
// took.
func waitVersion(t *testing.T, in *instance, n int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for in.defs.Status().Version != n {
		if time.Since(start) > within {
			t.Fatalf("instance serves version %d, %v after version %d was published", in.defs.Status().Version, within, n)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// TestSecondInstance: a version published on one instance reaches another
// through the store's announcement (the poll is an hour), and a new
// instance starts on the current version.
func TestSecondInstance(t *testing.T) {
	ctx := context.Background()
	st := memory.New(store.Limits{})
	a, b := open(t, st), open(t, st)
	if _, err := a.defs.Publish(ctx, definitions.Content{Segments: segsPricing}, 0, "ann", "v1"); err != nil {
		t.Fatal(err)
	}
	waitVersion(t, b, 1, 10*time.Second)
	if got := names(b.segs); !strings.Contains(got, "pricing-curious") {
		t.Fatalf("second instance at version 1 serves %q", got)
	}
	if b.slots.Set().Len() != 0 {
		t.Fatalf("version 1 has no slots, the second instance serves %d", b.slots.Set().Len())
	}
	c := open(t, st)
	if s := c.defs.Status(); s.Version != 1 || !strings.Contains(names(c.segs), "pricing-curious") {
		t.Fatalf("an instance opened after version 1: status %+v, segments %q", s, names(c.segs))
	}
}

// TestConcurrentPublish: editors on several instances publish at once, each
// from the version they last saw; the versions are numbered without gaps
// or duplicates, every refusal is a conflict, and every instance ends on
// the last version.
func TestConcurrentPublish(t *testing.T) {
	ctx := context.Background()
	st := memory.New(store.Limits{})
	ins := []*instance{open(t, st), open(t, st), open(t, st)}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	published := 0
	for round := range 20 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		// Every base is read before any publishes: a base read after
		// another instance published would be a later one.
		bases := make([]int, len(ins))
		for i, in := range ins {
			bases[i] = in.defs.Status().Version
		}
		for i, in := range ins {
			base := bases[i]
			content := definitions.Content{Segments: segsV0}
			if r.IntN(2) == 0 {
				content = definitions.Content{Segments: segsPricing}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := in.defs.Publish(ctx, content, base, fmt.Sprintf("editor-%d", i), fmt.Sprint(round))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case !errors.Is(err, definitions.ErrConflict):
					t.Errorf("round %d, instance %d: %v", round, i, err)
				}
			}()
		}
		wg.Wait()
		// They all started from the same version: exactly one wins,
		// and more would be lost updates.
		if won != 1 {
			t.Fatalf("round %d: %d publications from the same base succeeded, want 1", round, won)
		}
		published += won
		for _, in := range ins {
			waitVersion(t, in, published, 10*time.Second)
		}
	}
	h, err := ins[0].defs.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != published {
		t.Fatalf("history holds %d versions, %d publications succeeded", len(h), published)
	}
	for i, v := range h {
		if v.Number != published-i {
			t.Fatalf("history entry %d is version %d, want %d", i, v.Number, published-i)
		}
	}
}

// TestUnloadableVersion: a version that parses where it was published but
// not on another instance (a plugin it lacks) leaves that instance on its
// version, saying why.
func TestUnloadableVersion(t *testing.T) {
	ctx := context.Background()
	st := memory.New(store.Limits{})
	reg := rules.NewRegistry()
	reg.Register("always", func(json.RawMessage) (rules.Rule, error) {
		return rules.RuleFunc(func(*rules.Input) (bool, error) { return true, nil }), nil
	})
	a := open(t, st, func(c *definitions.Config) { c.ParseOptions = []rules.ParseOption{rules.Plugins(reg)} })
	b := open(t, st)
	withPlugin := `{"segments": [{"name": "all", "rule": {"always": {}}}]}`
	if _, err := a.defs.Publish(ctx, definitions.Content{Segments: withPlugin}, 0, "ann", "plugin"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.defs.Status().Err == nil {
		if time.Now().After(deadline) {
			t.Fatal("the instance without the plugin never reported the version it cannot load")
		}
		time.Sleep(time.Millisecond)
	}
	if s := b.defs.Status(); s.Version != 0 || !strings.Contains(s.Err.Error(), "always") || names(b.segs) != "returning" {
		t.Fatalf("instance without the plugin: status %+v, segments %q; want version 0 kept, with the plugin's name in the error", s, names(b.segs))
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := definitions.Open(context.Background(), definitions.Config{PollInterval: -1})
	for _, want := range []string{"Config.Store", "Config.Segments", "Config.PollInterval"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open of an empty config: %v; want it to name %s", err, want)
		}
	}
}
