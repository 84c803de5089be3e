package slots_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/middleware/slots"
	"github.com/tailorhq/tailor/rules"
)

func TestParse(t *testing.T) {
	t.Parallel()
	set, err := slots.Parse([]byte(`[
	  {"name": "hero",
	   "variants": [
	     {"key": "thank-you", "segment": "customer", "priority": 30, "fields": {"title": "Thanks", "n": 2}},
	     {"key": "red-sox", "segments": ["red-sox-fan", "vip"], "priority": 20, "template": "sox"},
	     {"key": "docs", "condition": {"request.path": "/docs"}}
	   ],
	   "default": {"fields": {"title": "Welcome"}}}
	]`), slots.Filename("slots.json"))
	if err != nil {
		t.Fatal(err)
	}
	if set.Source() != "slots.json" || strings.Join(set.Slots(), ",") != "hero" {
		t.Errorf("Source %q, Slots %v", set.Source(), set.Slots())
	}
	sl, ok := set.Slot("hero")
	if !ok || len(sl.Variants) != 3 || sl.Default.Key != slots.DefaultKey || sl.Default.Fields["title"] != "Welcome" {
		t.Fatalf("Slot = %+v, %v", sl, ok)
	}
	v := sl.Variants[1]
	if v.Key != "red-sox" || v.Priority != 20 || v.Template != "sox" || strings.Join(v.Segments, ",") != "red-sox-fan,vip" {
		t.Errorf("variant = %+v", v)
	}
	if sl.Variants[0].Fields["n"] != 2.0 || sl.Variants[2].Condition == nil {
		t.Errorf("variants = %+v", sl.Variants)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	src := `{"slots": [
  {"name": "hero",
   "variants": [
     {"key": "a", "segment": "customr", "priority": "high"},
     {"key": "a", "segments": ["vip", 3]},
     {"key": "b", "condition": {"visits": {"$gtx": 1}}},
     {"key": "lonely", "colour": "red"}
   ],
   "default": {"key": "welcome", "segment": "vip"},
   "experiment": {"key": "t", "variants": [{"key": "a", "weight": -1}, {"key": "zzz", "weight": 1}],
                  "coverage": 2}},
  {"name": "hero", "default": {}},
  {"variants": [], "default": {"fields": []}}
]}`
	_, err := slots.Parse([]byte(src), slots.Filename("slots.json"),
		slots.Segments("customer", "vip", "red-sox-fan"))
	var errs rules.ConditionErrors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want rules.ConditionErrors", err)
	}
	got := err.Error()
	for _, want := range []string{
		`slots.json:4:30: /slots/0/variants/0/segment: unknown segment "customr"`,
		`slots.json:4:53: /slots/0/variants/0/priority: the priority is an integer, not a string`,
		`slots.json:5:6: /slots/0/variants/1/key: duplicate variant key "a"`,
		`slots.json:5:39: /slots/0/variants/1/segments/1: the segments element is a string, not a number`,
		`slots.json:6:44: /slots/0/variants/2/condition/visits/$gtx: `,
		`slots.json:7:24: /slots/0/variants/3/colour: unknown key "colour" in a variant`,
		`slots.json:7:6: /slots/0/variants/3: variant "lonely" has neither segments nor condition`,
		`slots.json:9:34: /slots/0/default/segment: the default variant has no segment`,
		`slots.json:10:80: /slots/0/experiment/variants/1/key: "zzz" is not a variant of the slot`,
		`slots.json:10:67: /slots/0/experiment/variants/0/weight: negative`,
		`slots.json:11:31: /slots/0/experiment/coverage: not in [0, 1]`,
		`slots.json:12:3: /slots/1/name: duplicate slot name "hero"`,
		`slots.json:13:3: /slots/2: a slot needs a "name"`,
		`slots.json:13:42: /slots/2/default/fields: the fields are an object, not a list`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q", want)
		}
	}
	if strings.Contains(got, `variant "b" has neither`) {
		t.Error("a variant whose condition is wrong is reported as never shown")
	}
	if t.Failed() {
		t.Log(got)
	}
	for _, e := range errs {
		if e.File != "slots.json" || e.Line < 1 || e.Column < 1 || !strings.HasPrefix(e.Path, "/slots") {
			t.Errorf("bad error place: %+v", e)
		}
	}
}

func TestParseSyntaxError(t *testing.T) {
	t.Parallel()
	_, err := slots.Parse([]byte("{\"slots\": [\n  {\"name\": \"hero\",}\n]}"), slots.Filename("s.json"))
	if err == nil || !strings.HasPrefix(err.Error(), "s.json:2:19: invalid JSON") {
		t.Errorf("err = %v", err)
	}
	_, err = slots.Parse([]byte(`{"slot": []}`))
	if err == nil || !strings.Contains(err.Error(), `1:2: /slot: unknown key "slot": want "slots"`) {
		t.Errorf("err = %v", err)
	}
	_, err = slots.Parse([]byte(strings.Repeat("[", 200) + strings.Repeat("]", 200)))
	if err == nil || !strings.Contains(err.Error(), "nests deeper") {
		t.Errorf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"slots": [{"name": "hero", "variants": [{"key": "a", "segment": "vip", "priority": 1, "fields": {"t": 1}}], "default": {}}]}`))
	f.Add([]byte(`[{"name": "x", "default": {}, "experiment": {"key": "e", "variants": [{"key": "default", "weight": 1}], "bandit": {"floor": 0.1}}}]`))
	f.Add([]byte(`{"slots": [{"variants": [{"condition": {"$or": []}}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := slots.Parse(data)
		if (set == nil) == (err == nil) {
			t.Fatalf("set %v, err %v", set, err)
		}
		if err != nil {
			var errs rules.ConditionErrors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("err = %#v", err)
			}
			for _, e := range errs {
				if e.Line < 1 || e.Column < 1 {
					t.Fatalf("bad place: %v", e)
				}
			}
		}
	})
}
