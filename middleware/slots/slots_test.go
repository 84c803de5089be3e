package slots_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/middleware"
	"github.com/tailorhq/tailor/middleware/slots"
	"github.com/tailorhq/tailor/rules"
)

func heroSlot() slots.Slot {
	return slots.Slot{
		Name: "hero",
		Variants: []slots.Variant{
			{Key: "welcome-back", Segments: []string{"returning"}, Priority: 10, Fields: map[string]any{"title": "Welcome back"}},
			{Key: "thank-you", Segments: []string{"customer"}, Priority: 30, Fields: map[string]any{"title": "Thank you"}},
			{Key: "red-sox", Segments: []string{"red-sox-fan", "vip"}, Priority: 20, Fields: map[string]any{"title": "Go Sox"}},
		},
		Default: slots.Variant{Key: "welcome", Fields: map[string]any{"title": "Welcome"}},
	}
}

func TestPick(t *testing.T) {
	t.Parallel()
	set, err := slots.NewEngine(heroSlot())
	if err != nil {
		t.Fatal(err)
	}
	s := newTestSite(t)
	tests := []struct {
		path, want string
	}{
		{"/", "welcome"},
		{"/in/returning", "welcome-back"},
		{"/in/red-sox-fan", "red-sox"},
		{"/in/vip", "red-sox"}, // any of the segments
		{"/in/returning,red-sox-fan", "red-sox"},
		{"/in/returning,red-sox-fan,customer", "thank-you"},
		{"/in/customer", "thank-you"},
	}
	for _, tt := range tests {
		s.with(nil, tt.path, func(v *middleware.Visitor) {
			c := set.Pick(v, "hero")
			if c.Variant != tt.want || c.Slot != "hero" {
				t.Errorf("%s: Pick = %q/%q, want hero/%q", tt.path, c.Slot, c.Variant, tt.want)
			}
			if c.Experiment != "" || c.Arm != "" {
				t.Errorf("%s: in experiment %q/%q", tt.path, c.Experiment, c.Arm)
			}
		})
	}

	if c := set.Pick(nil, "hero"); c.Variant != "welcome" || c.Fields["title"] != "Welcome" {
		t.Errorf("nil visitor: %+v", c)
	}
	if c := set.Pick(nil, "nope"); c.Variant != "" || c.Slot != "nope" {
		t.Errorf("unknown slot: %+v", c)
	}
}

func TestPickTiesKeepDeclarationOrder(t *testing.T) {
	t.Parallel()
	set, err := slots.NewEngine(slots.Slot{
		Name: "promo",
		Variants: []slots.Variant{
			{Key: "a", Segments: []string{"vip"}},
			{Key: "b", Segments: []string{"customer"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newTestSite(t)
	s.with(nil, "/in/customer,vip", func(v *middleware.Visitor) {
		if c := set.Pick(v, "promo"); c.Variant != "a" {
			t.Errorf("Pick = %q, want a", c.Variant)
		}
	})
	s.with(nil, "/", func(v *middleware.Visitor) {
		if c := set.Pick(v, "promo"); c.Variant != slots.DefaultKey {
			t.Errorf("Pick = %q, want %q", c.Variant, slots.DefaultKey)
		}
	})
}

func TestPickCondition(t *testing.T) {
	t.Parallel()
	set, err := slots.NewEngine(slots.Slot{
		Name: "docs",
		Variants: []slots.Variant{
			{Key: "docs-fan", Priority: 5, Condition: mustCondition(t, `{"request.path": {"$regex": "^/docs"}}`)},
			{Key: "docs-customer", Priority: 9, Segments: []string{"customer"},
				Condition: mustCondition(t, `{"request.path": {"$regex": "^/docs"}}`)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newTestSite(t)
	for path, want := range map[string]string{
		"/docs/x":      "docs-fan",
		"/in/customer": "default", // the condition fails
		"/":            "default",
	} {
		s.with(nil, path, func(v *middleware.Visitor) {
			if c := set.Pick(v, "docs"); c.Variant != want {
				t.Errorf("%s: Pick = %q, want %q", path, c.Variant, want)
			}
		})
	}
}

func mustCondition(t *testing.T, src string) *rules.Condition {
	t.Helper()
	c, err := rules.CompileCondition([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewSetErrors(t *testing.T) {
	t.Parallel()
	_, err := slots.NewSet(
		slots.Slot{Name: "a", Variants: []slots.Variant{{Key: "x", Segments: []string{"vip"}}, {Key: "x", Segments: []string{"vip"}}, {}}},
		slots.Slot{Name: "a"},
		slots.Slot{Name: "b", Variants: []slots.Variant{{Key: "lonely"}}},
		slots.Slot{Name: "c", Default: slots.Variant{Segments: []string{"vip"}}},
	)
	var errs slots.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want Errors", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`slot "a": variants[1].key: duplicate variant key "x"`,
		`slot "a": variants[2].key: a variant needs a key`,
		`duplicate slot name`,
		`slot "b": variants[0]: variant "lonely" has neither segments nor condition`,
		`slot "c": default: the default variant has no segments nor condition`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	var e *slots.Error
	if !errors.As(err, &e) {
		t.Error("errors.As finds no *Error")
	}
}

func TestPreviewChoosesVariant(t *testing.T) {
	t.Parallel()
	set := mustSet(t, expSlot([2]float64{1, 1}, 0, nil))
	s := newTestSite(t)
	link, err := s.p.PreviewLink("/in/returning", nil, map[string]string{"hero": "red-sox"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s.with(&browser{}, link, func(v *middleware.Visitor) {
		if c := set.Pick(v, "hero"); c.Variant != "red-sox" || c.Experiment != "" {
			t.Errorf("preview of red-sox: %+v", c)
		}
		if n := len(exposures(v)); n != 0 {
			t.Errorf("%d exposures recorded in a preview", n)
		}
	})
}
