package openfeature_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tailorof "github.com/tailorhq/tailor/middleware/openfeature"
	"github.com/tailorhq/tailor/rules"
)

func TestParseFlags(t *testing.T) {
	f, err := tailorof.ParseFlags([]byte(flagsFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Keys(), ","); got != "sales-offer,discount,max-seats,beta,theme" {
		t.Errorf("keys %s", got)
	}
	fl, ok := f.Flag("sales-offer")
	if !ok || fl.Type != tailorof.String || fl.Default != "none" || len(fl.Rules) != 2 ||
		strings.Join(fl.Rules[1].Segments, ",") != "newsletter,pricing-curious" || fl.Rules[1].Variant != "curious" {
		t.Errorf("sales-offer: %+v", fl)
	}
	if fl, _ := f.Flag("max-seats"); fl.Default != int64(5) || fl.Rules[0].Value != int64(50) {
		t.Errorf("max-seats: %+v", fl)
	}
	if fl, _ := f.Flag("discount"); fl.Default != 0.0 || fl.Rules[0].Value != 0.1 {
		t.Errorf("discount: %+v", fl)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string // one problem each, in order
	}{
		{"syntax", `{"flags": {"a": }}`, []string{"flags.json:1:17: invalid JSON"}},
		{"not an object", `[]`, []string{`flags.json:1:1: a flags file is an object, not a list`}},
		{"no flags", `{"flag": {}}`, []string{`flags.json:1:1: a flags file needs "flags"`, `flags.json:1:2: /flag: unknown key "flag" in a flags file`}},
		{"wrong types", `{"flags": {
  "a": {"type": "boolean", "default": "yes"},
  "b": {"type": "string", "default": "x", "rules": [{"segment": "vip", "value": 3}]},
  "c": {"type": "integer", "default": 1.5},
  "d": {"type": "decimal", "default": 1}
}}`, []string{
			`flags.json:2:39: /flags/a/default: the default of a boolean flag is a boolean, not a string`,
			`flags.json:3:81: /flags/b/rules/0/value: the value of a string flag is a string, not a number`,
			`flags.json:4:39: /flags/c/default: the default of an integer flag is a whole number within 64 bits, not 1.5`,
			`flags.json:5:17: /flags/d/type: unknown type "decimal"`,
		}},
		{"rules", `{"flags": {"a": {"type": "boolean", "default": false, "rules": [
  {"value": true},
  {"segment": "vip", "segments": ["x"], "value": true},
  {"segments": [], "value": true, "colour": 1},
  {"segment": "nobody", "value": true}
]}}}`, []string{
			`flags.json:2:3: /flags/a/rules/0: a rule needs "segment" or "segments"`,
			`flags.json:3:34: /flags/a/rules/1/segments: a rule has "segment" or "segments", not both`,
			`flags.json:4:16: /flags/a/rules/2/segments: the segments are a non-empty list`,
			`flags.json:4:35: /flags/a/rules/2/colour: unknown key "colour" in a rule`,
			`flags.json:5:15: /flags/a/rules/3/segment: unknown segment "nobody"`,
		}},
		{"reserved and missing", `{"flags": {"segment.vip": {"type": "boolean", "default": true}, "b": {"default": 1}, "c": {"type": "float"}}}`,
			[]string{
				`flags.json:1:27: /flags/segment.vip: flag "segment.vip": keys starting with "segment." are the segments' own flags`,
				`flags.json:1:70: /flags/b: flag "b" needs a "type"`,
				`flags.json:1:91: /flags/c: flag "c" needs a "default" value`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tailorof.ParseFlags([]byte(tc.src), tailorof.Filename("flags.json"), tailorof.Segments("vip", "x"))
			var list rules.ConditionErrors
			if !errors.As(err, &list) {
				t.Fatalf("error %v, want rules.ConditionErrors", err)
			}
			if len(list) != len(tc.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(list), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(list[i].Error(), w) {
					t.Errorf("problem %d:\n got %s\nwant %s...", i, list[i].Error(), w)
				}
			}
		})
	}
}

func TestParseFlagsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flags.json")
	if err := os.WriteFile(path, []byte(`{"flags": {"a": {"type": "boolean"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := tailorof.ParseFlagsFile(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":1:17: /flags/a: ") {
		t.Errorf("error %v, want it placed in %s", err, path)
	}
	if _, err := tailorof.ParseFlagsFile(path + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzParseFlags(f *testing.F) {
	f.Add([]byte(flagsFile))
	f.Add([]byte(`{"flags": {"a": {"type": "object", "default": [1, {"b": null}]}}}`))
	f.Fuzz(func(t *testing.T, src []byte) {
		fs, err := tailorof.ParseFlags(src)
		if (fs == nil) == (err == nil) {
			t.Fatalf("flags %v and error %v", fs, err)
		}
		for _, k := range fs.Keys() {
			fl, ok := fs.Flag(k)
			if !ok || fl.Key != k || strings.HasPrefix(k, tailorof.SegmentPrefix) {
				t.Fatalf("flag %q: %+v", k, fl)
			}
		}
	})
}
