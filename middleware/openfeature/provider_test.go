package openfeature_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/definitions"
	tailorof "github.com/tailorhq/tailor/middleware/openfeature"
	"github.com/tailorhq/tailor/rules/experiment"
	"github.com/tailorhq/tailor/store"
	"github.com/tailorhq/tailor/store/memory"
)

var stores = []struct {
	name string
	open func(*testing.T) store.Store
}{{"memory", memoryStore}, {"bolt", boltStore}, {"redis", redisStore}}

// want checks the details of an evaluation.
func want[T any](t *testing.T, d of.GenericEvaluationDetails[T], err error, value T, reason of.Reason, variant string) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", d.FlagKey, err)
	}
	if !equal(d.Value, value) || d.Reason != reason || d.Variant != variant {
		t.Errorf("%s = %v (reason %s, variant %q, error %s %s), want %v (%s, %q)",
			d.FlagKey, d.Value, d.Reason, d.Variant, d.ErrorCode, d.ErrorMessage, value, reason, variant)
	}
}

func equal(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func meta(t *testing.T, m of.FlagMetadata, key string) string {
	t.Helper()
	s, err := m.GetString(key)
	if err != nil {
		t.Errorf("metadata %q: %v (metadata %v)", key, err, m)
	}
	return s
}

func TestInRequest(t *testing.T) {
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) {
			s := newSite(t, sc.open(t))
			c := s.client
			b, id := s.pricingCurious()
			var arm string
			s.visit(b, "/", func(_ http.ResponseWriter, r *http.Request) {
				ctx, none := r.Context(), of.EvaluationContext{}
				d, err := c.BooleanValueDetails(ctx, "segment.pricing-curious", false, none)
				want(t, d, err, true, of.TargetingMatchReason, "in")
				if got := meta(t, d.FlagMetadata, "subject"); got != "request" {
					t.Errorf("subject %q, want request", got)
				}
				if x := meta(t, d.FlagMetadata, "explanation"); !strings.Contains(x, "pass pages[/pricing] within 7d = 2, want >= 2") {
					t.Errorf("explanation %q, want the clause on /pricing", x)
				}
				d, err = c.BooleanValueDetails(ctx, "segment.signed-up", true, none)
				want(t, d, err, false, of.DefaultReason, "out")
				if x := meta(t, d.FlagMetadata, "explanation"); !strings.Contains(x, "fail") {
					t.Errorf("explanation of a segment the visitor is not in: %q, want a failed clause", x)
				}

				sd, err := c.StringValueDetails(ctx, "sales-offer", "?", none)
				want(t, sd, err, "call-us", of.TargetingMatchReason, "curious")
				if got := meta(t, sd.FlagMetadata, "segment"); got != "pricing-curious" {
					t.Errorf("sales-offer decided by %q, want pricing-curious", got)
				}
				fd, err := c.FloatValueDetails(ctx, "discount", -1, none)
				want(t, fd, err, 0.1, of.TargetingMatchReason, "pricing-curious")
				id, err := c.IntValueDetails(ctx, "max-seats", -1, none)
				want(t, id, err, int64(5), of.DefaultReason, "default")
				bd, err := c.BooleanValueDetails(ctx, "beta", true, none)
				want(t, bd, err, false, of.DefaultReason, "default")
				od, err := c.ObjectValueDetails(ctx, "theme", nil, none)
				want[any](t, od, err, map[string]any{"colour": "gold"}, of.TargetingMatchReason, "pricing-curious")

				v := middleware.FromContext(ctx)
				sd, err = c.StringValueDetails(ctx, "hero", "?", none)
				want(t, sd, err, "talk-to-sales", of.TargetingMatchReason, "talk-to-sales")
				if page := s.slots.Pick(v, "hero").Variant; page != sd.Value {
					t.Errorf("hero flag %q, page shows %q", sd.Value, page)
				}
				// The flag picks first, as a page would, and records the exposure;
				// the page's pick then shows the same arm and records nothing more.
				sd, err = c.StringValueDetails(ctx, "cta", "?", none)
				arm = sd.Value
				want(t, sd, err, arm, of.SplitReason, arm)
				if arm != "blue" && arm != "green" {
					t.Errorf("cta = %q, want an arm of the experiment", arm)
				}
				if got := meta(t, sd.FlagMetadata, "experiment"); got != "cta-colour" {
					t.Errorf("experiment %q", got)
				}
				if page := s.slots.Pick(v, "cta").Variant; page != arm {
					t.Errorf("cta flag %q, page shows %q", arm, page)
				}
			})
			prof := s.stored(id)
			if n := prof.Counts[experiment.ExposureEvent]; n != 1 {
				t.Errorf("%d exposures recorded, want 1", n)
			}
			var trait struct{ Variant string }
			raw := gjsonGet(prof.Traits, "experiment:cta-colour")
			if err := json.Unmarshal([]byte(raw), &trait); err != nil || trait.Variant != arm {
				t.Errorf("exposure trait %s (%v), want variant %q", raw, err, arm)
			}
		})
	}
}

// gjsonGet returns the member key of the JSON object obj, as JSON.
func gjsonGet(obj json.RawMessage, key string) string {
	var m map[string]json.RawMessage
	json.Unmarshal(obj, &m)
	return string(m[key])
}

func TestOutsideRequest(t *testing.T) {
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) {
			st := sc.open(t)
			s := newSite(t, st)
			b, id := s.pricingCurious()
			s.flush()
			ctx := context.Background()
			check := func(t *testing.T, c *of.Client, key string) {
				t.Helper()
				ec := of.NewEvaluationContext(key, nil)
				d, err := c.BooleanValueDetails(ctx, "segment.pricing-curious", false, ec)
				want(t, d, err, true, of.TargetingMatchReason, "in")
				if got := meta(t, d.FlagMetadata, "subject"); got != "stored" {
					t.Errorf("subject %q, want stored", got)
				}
				if x := meta(t, d.FlagMetadata, "explanation"); !strings.Contains(x, "pass pages[/pricing]") {
					t.Errorf("explanation %q", x)
				}
				sd, err := c.StringValueDetails(ctx, "hero", "?", ec)
				want(t, sd, err, "talk-to-sales", of.TargetingMatchReason, "talk-to-sales")
				sd, err = c.StringValueDetails(ctx, "sales-offer", "?", ec)
				want(t, sd, err, "call-us", of.TargetingMatchReason, "curious")
			}
			t.Run("this instance", func(t *testing.T) { check(t, s.client, id) })
			t.Run("another instance", func(t *testing.T) {
				other := newSite(t, st) // a fresh cache: reads the store
				check(t, other.client, id)
			})

			s.visit(b, "/signin", func(w http.ResponseWriter, r *http.Request) {
				if err := s.p.Identify(w, r, "u-1", nil); err != nil {
					t.Fatal(err)
				}
			})
			s.flush()
			t.Run("user", func(t *testing.T) { check(t, s.client, "user:u-1") })
			t.Run("user on another instance", func(t *testing.T) {
				check(t, newSite(t, st).client, "user:u-1")
			})
			t.Run("merged visitor", func(t *testing.T) {
				// The visitor id now leads to the user's profile.
				check(t, newSite(t, st).client, id)
			})

			t.Run("unknown visitor", func(t *testing.T) {
				ec := of.NewEvaluationContext("0123456789abcdef0123456789abcdef", nil)
				d, err := s.client.BooleanValueDetails(ctx, "segment.pricing-curious", true, ec)
				want(t, d, err, false, of.DefaultReason, "out")
				if got := meta(t, d.FlagMetadata, "subject"); got != "unknown" {
					t.Errorf("subject %q, want unknown", got)
				}
				sd, err := s.client.StringValueDetails(ctx, "hero", "?", ec)
				want(t, sd, err, "welcome", of.DefaultReason, "welcome")
			})
		})
	}
}

func TestErrors(t *testing.T) {
	s := newSite(t, memoryStore(t))
	_, id := s.pricingCurious()
	ctx, ec := context.Background(), of.NewEvaluationContext(id, nil)
	for _, tc := range []struct {
		flag string
		eval func(flag string, ec of.EvaluationContext) (any, of.EvaluationDetails)
		code of.ErrorCode
	}{
		{"nope", boolEval(s.client), of.FlagNotFoundCode},
		{"segment.nope", boolEval(s.client), of.FlagNotFoundCode},
		{"segment.pricing-curious", stringEval(s.client), of.TypeMismatchCode},
		{"hero", boolEval(s.client), of.TypeMismatchCode},
		{"discount", stringEval(s.client), of.TypeMismatchCode},
		{"sales-offer", boolEval(s.client), of.TypeMismatchCode},
	} {
		v, d := tc.eval(tc.flag, ec)
		if d.Reason != of.ErrorReason || d.ErrorCode != tc.code {
			t.Errorf("%s: reason %s, code %s (%s), want ERROR %s", tc.flag, d.Reason, d.ErrorCode, d.ErrorMessage, tc.code)
		}
		if v != true && v != "default" {
			t.Errorf("%s: value %v, want the caller's default", tc.flag, v)
		}
	}
	for key, code := range map[string]of.ErrorCode{
		"":      of.TargetingKeyMissingCode,
		"user:": of.InvalidContextCode,
	} {
		d, _ := s.client.BooleanValueDetails(ctx, "segment.pricing-curious", true, of.NewEvaluationContext(key, nil))
		if d.Reason != of.ErrorReason || d.ErrorCode != code || d.Value != true {
			t.Errorf("targeting key %q: %v, reason %s, code %s, want the default, ERROR %s", key, d.Value, d.Reason, d.ErrorCode, code)
		}
	}
}

func boolEval(c *of.Client) func(string, of.EvaluationContext) (any, of.EvaluationDetails) {
	return func(flag string, ec of.EvaluationContext) (any, of.EvaluationDetails) {
		d, _ := c.BooleanValueDetails(context.Background(), flag, true, ec)
		return d.Value, d.EvaluationDetails
	}
}

func stringEval(c *of.Client) func(string, of.EvaluationContext) (any, of.EvaluationDetails) {
	return func(flag string, ec of.EvaluationContext) (any, of.EvaluationDetails) {
		d, _ := c.StringValueDetails(context.Background(), flag, "default", ec)
		return d.Value, d.EvaluationDetails
	}
}

func TestTrack(t *testing.T) {
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) {
			s := newSite(t, sc.open(t))
			b, id := s.pricingCurious()
			// In a request: the visitor of the context.
			s.visit(b, "/", func(_ http.ResponseWriter, r *http.Request) {
				s.client.Track(r.Context(), "signup", of.EvaluationContext{}, of.NewTrackingEventDetails(0).Add("plan", "pro"))
			})
			prof := s.stored(id)
			if prof.Counts["signup"] != 1 {
				t.Fatalf("counts %v, want one signup", prof.Counts)
			}
			last := lastEvent(prof)
			if last == nil || last.Name != "signup" || !strings.Contains(string(last.Props), `"plan":"pro"`) {
				t.Errorf("last event %+v, want signup with plan pro", last)
			}
			// The next request classifies them as signed up.
			s.visit(b, "/", func(_ http.ResponseWriter, r *http.Request) {
				if v, _ := s.client.StringValue(r.Context(), "sales-offer", "?", of.EvaluationContext{}); v != "upgrade" {
					t.Errorf("sales-offer after signup = %q, want upgrade", v)
				}
			})

			// Outside a request: the visitor of the targeting key.
			ctx := context.Background()
			s.client.Track(ctx, "upgrade", of.NewEvaluationContext(id, nil), of.NewTrackingEventDetails(49.5))
			prof = s.stored(id)
			if prof.Counts["upgrade"] != 1 {
				t.Fatalf("counts %v, want one upgrade", prof.Counts)
			}
			if last := lastEvent(prof); !strings.Contains(string(last.Props), `"value":49.5`) {
				t.Errorf("props %s, want the value", last.Props)
			}
			// A user without a profile yet gets one, as with TrackUser.
			s.client.Track(ctx, "signup", of.NewEvaluationContext("user:u-9", nil), of.NewTrackingEventDetails(0))
			uid, _ := store.UserProfileID("u-9")
			if prof := s.stored(uid); prof.Counts["signup"] != 1 {
				t.Errorf("user's counts %v, want one signup", prof.Counts)
			}
			v, _ := s.client.BooleanValue(ctx, "segment.signed-up", false, of.NewEvaluationContext("user:u-9", nil))
			if !v {
				t.Error("a user tracked as signed up is not in signed-up")
			}
			// A visitor id without a profile records nothing.
			unknown := "0123456789abcdef0123456789abcdef"
			s.client.Track(ctx, "signup", of.NewEvaluationContext(unknown, nil), of.NewTrackingEventDetails(0))
			s.flush()
			if _, err := s.p.Store().Load(ctx, unknown); err == nil {
				t.Error("Track for an unknown visitor id made a profile")
			}
		})
	}
}

// events collects the provider's configuration changes heard through the
// SDK.
type events struct {
	mu  sync.Mutex
	got [][]string
}

func (e *events) has(flag string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.ContainsFunc(e.got, func(keys []string) bool { return slices.Contains(keys, flag) })
}

func listen(c *of.Client) *events {
	e := &events{}
	cb := func(d of.EventDetails) {
		e.mu.Lock()
		e.got = append(e.got, d.FlagChanges)
		e.mu.Unlock()
	}
	c.AddHandler(of.ProviderConfigChange, &cb)
	return e
}

func TestReloadEvents(t *testing.T) {
	s := newSite(t, memoryStore(t))
	ev := listen(s.client)
	err := s.engine.Reload([]byte(strings.Replace(segmentsFile, `"newsletter"`, `"from-newsletter"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the segments' reload announced", func() bool {
		return ev.has("segment.from-newsletter") && ev.has("segment.newsletter")
	})
	// The new segment is a flag at once.
	_, id := s.pricingCurious()
	d, _ := s.client.BooleanValueDetails(context.Background(), "segment.from-newsletter", true, of.NewEvaluationContext(id, nil))
	if d.Reason != of.DefaultReason || d.Value {
		t.Errorf("new segment's flag: %v %s %s", d.Value, d.Reason, d.ErrorCode)
	}

	if err := s.slots.Reload([]byte(strings.Replace(slotsFile, `"name": "hero"`, `"name": "banner"`, 1))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the slots' reload announced", func() bool { return ev.has("banner") && ev.has("hero") })

	flags, err := tailorof.ParseFlags([]byte(`{"flags": {"gift": {"type": "boolean", "default": true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	s.provider.SetFlags(flags)
	eventually(t, "new flags announced", func() bool { return ev.has("gift") && ev.has("sales-offer") })
	if v, _ := s.client.BooleanValue(context.Background(), "gift", false, of.NewEvaluationContext(id, nil)); !v {
		t.Error("the new flag gift is not served")
	}

	// Shut down, the provider announces nothing; initialised again, it does.
	s.provider.Shutdown()
	s.provider.Shutdown() // twice is harmless
	if err := s.provider.Init(of.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	if err := s.engine.Reload([]byte(segmentsFile)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a reload after Init announced", func() bool {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		last := ev.got[len(ev.got)-1]
		return slices.Contains(last, "segment.newsletter") && slices.Contains(last, "segment.from-newsletter")
	})
}

type recordingHook struct {
	of.UnimplementedHook
	mu    sync.Mutex
	flags []string
}

func (h *recordingHook) After(_ context.Context, hc of.HookContext, d of.InterfaceEvaluationDetails, _ of.HookHints) error {
	h.mu.Lock()
	h.flags = append(h.flags, hc.FlagKey()+"="+string(d.Reason))
	h.mu.Unlock()
	return nil
}

func TestHooksAndMetadata(t *testing.T) {
	s := newSite(t, memoryStore(t))
	_, id := s.pricingCurious()
	h := &recordingHook{}
	p, err := tailorof.NewProvider(tailorof.Config{Personalizer: s.p, Hooks: []of.Hook{h}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Metadata().Name != "tailor" {
		t.Errorf("metadata %+v", p.Metadata())
	}
	domain := t.Name() + "/hooks"
	if err := of.SetNamedProviderAndWait(domain, p); err != nil {
		t.Fatal(err)
	}
	defer of.SetNamedProviderAndWait(domain, of.NoopProvider{})
	c := of.NewClient(domain)
	if c.Metadata().Domain() != domain {
		t.Fatal("client of another domain")
	}
	c.Boolean(context.Background(), "segment.pricing-curious", false, of.NewEvaluationContext(id, nil))
	h.mu.Lock()
	defer h.mu.Unlock()
	if !slices.Equal(h.flags, []string{"segment.pricing-curious=TARGETING_MATCH"}) {
		t.Errorf("the provider's hook heard %v", h.flags)
	}
}

func TestNewProvider(t *testing.T) {
	if _, err := tailorof.NewProvider(tailorof.Config{}); err == nil || !strings.Contains(err.Error(), "Personalizer") {
		t.Errorf("without a Personalizer: %v", err)
	}
}

// lastEvent returns the most recent track event of prof.
func lastEvent(prof *store.Profile) *store.Event {
	for i := prof.Recent.Len() - 1; i >= 0; i-- {
		if e := prof.Recent.At(i); e.Type == store.TypeTrack {
			return e
		}
	}
	return nil
}

// Evaluations run while the segments, slots and flags are replaced, and the
// provider is shut down and initialised again: each sees one whole set.
func TestConcurrentReloads(t *testing.T) {
	s := newSite(t, memoryStore(t))
	_, id := s.pricingCurious()
	s.flush()
	other, err := tailorof.ParseFlags([]byte(`{"flags": {"sales-offer": {"type": "string", "default": "other"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := tailorof.ParseFlags([]byte(flagsFile))
	stop := make(chan struct{})
	var reloader, wg sync.WaitGroup
	reloader.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s.engine.Reload([]byte(segmentsFile))
			s.slots.Reload([]byte(slotsFile))
			if i%2 == 0 {
				s.provider.SetFlags(other)
			} else {
				s.provider.SetFlags(first)
			}
			if i%10 == 0 {
				s.provider.Shutdown()
				s.provider.Init(of.EvaluationContext{})
			}
		}
	})
	ec := of.NewEvaluationContext(id, nil)
	for range 4 {
		wg.Go(func() {
			for range 200 {
				v, err := s.client.StringValue(context.Background(), "sales-offer", "?", ec)
				if err != nil || (v != "call-us" && v != "other") {
					t.Errorf("sales-offer = %q, %v during reloads", v, err)
					return
				}
				if v, err := s.client.StringValue(context.Background(), "hero", "?", ec); err != nil || v != "talk-to-sales" {
					t.Errorf("hero = %q, %v during reloads", v, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	reloader.Wait()
}

// BenchmarkSegmentFlag measures a segment's flag for a stored visitor named
// by the targeting key (a cached profile), with and without its explanation.
func BenchmarkSegmentFlag(b *testing.B) {
	for _, noExplanation := range []bool{false, true} {
		b.Run(fmt.Sprintf("NoExplanation=%v", noExplanation), func(b *testing.B) {
			s := newSite(b, memory.New(store.Limits{}))
			_, id := s.pricingCurious()
			s.flush()
			p, err := tailorof.NewProvider(tailorof.Config{Personalizer: s.p, NoExplanation: noExplanation})
			if err != nil {
				b.Fatal(err)
			}
			if err := of.SetNamedProviderAndWait(b.Name(), p); err != nil {
				b.Fatal(err)
			}
			defer of.SetNamedProviderAndWait(b.Name(), of.NoopProvider{})
			c := of.NewClient(b.Name())
			ec := of.NewEvaluationContext(id, nil)
			ctx := context.Background()
			for b.Loop() {
				d, _ := c.BooleanValueDetails(ctx, "segment.pricing-curious", false, ec)
				if !d.Value {
					b.Fatal("not in the segment")
				}
				if _, err := d.FlagMetadata.GetString("explanation"); (err == nil) == noExplanation {
					b.Fatalf("explanation: %v, with NoExplanation %v", err, noExplanation)
				}
			}
		})
	}
}

// A version published through middleware/definitions on one instance is
// announced by the providers of both instances sharing the store.
func TestPublishedVersionAnnounced(t *testing.T) {
	st := memoryStore(t)
	ctx := context.Background()
	var instances []*site
	var heard []*events
	var defs []*definitions.Definitions
	for range 2 {
		s := newSite(t, st)
		d, err := definitions.Open(ctx, definitions.Config{Store: st, Segments: s.engine, Slots: s.slots,
			Files: definitions.Content{Segments: segmentsFile, Slots: slotsFile}, PollInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		instances, heard, defs = append(instances, s), append(heard, listen(s.client)), append(defs, d)
	}
	_, id := instances[0].pricingCurious()
	instances[0].flush()
	// Let the announcements of Open's loads pass, then count from here.
	time.Sleep(100 * time.Millisecond)
	before := make([]int, len(heard))
	for i, e := range heard {
		e.mu.Lock()
		before[i] = len(e.got)
		e.mu.Unlock()
	}
	published := strings.Replace(segmentsFile, `"min": 2`, `"min": 3`, 1)
	if _, err := defs[0].Publish(ctx, definitions.Content{Segments: published, Slots: slotsFile}, 0, "ann", "three visits"); err != nil {
		t.Fatal(err)
	}
	for i, s := range instances {
		// Two visits of /pricing are no longer enough.
		eventually(t, fmt.Sprintf("instance %d serving the published segments", i), func() bool {
			v, _ := s.client.BooleanValue(ctx, "segment.pricing-curious", true, of.NewEvaluationContext(id, nil))
			return !v
		})
		eventually(t, fmt.Sprintf("instance %d announcing them", i), func() bool {
			heard[i].mu.Lock()
			defer heard[i].mu.Unlock()
			return slices.ContainsFunc(heard[i].got[before[i]:], func(keys []string) bool {
				return slices.Contains(keys, "segment.pricing-curious")
			})
		})
	}
}
