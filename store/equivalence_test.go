package store

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// traitByMap is what Profile.Trait answered before it read traits with
// gjson: the value of key in the traits decoded as a map.
func traitByMap(traits []byte, key string) json.RawMessage {
	if len(traits) == 0 {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(traits, &m) != nil {
		return nil
	}
	return m[key]
}

func FuzzTrait(f *testing.F) {
	for _, c := range []struct{ traits, key string }{
		{`{"plan":"pro"}`, "plan"},
		{`{"plan":"pro","plan":"free"}`, "plan"},
		{`{"a\"b": 1, "tz": "Europe/Paris"}`, `a"b`},
		{`{"crm": {"stage": "opportunity"}}`, "crm"},
		{`{ "x" : [1, 2] , "y":null}`, "y"},
		{`{"\u00e9t\u00e9": true}`, "été"},
		{`[1,2]`, "0"},
		{`{"a":1`, "a"},
		{`{}`, ""},
		{`{"":5}`, ""},
		{`{"k":"v"} trailing`, "k"},
	} {
		f.Add([]byte(c.traits), c.key)
	}
	f.Fuzz(func(t *testing.T, traits []byte, key string) {
		p := &Profile{Traits: traits}
		got, want := p.Trait(key), traitByMap(traits, key)
		if !bytes.Equal(got, want) {
			t.Fatalf("Trait(%q) of %q = %q, want %q", key, traits, got, want)
		}
	})
}

// splitByParseUint is what SplitID answered when it read the sequence
// number with strconv.ParseUint.
func splitByParseUint(id string) (string, uint64, bool) {
	if id != "" && id[0] == '#' {
		return "", 0, false
	}
	i := strings.LastIndexByte(id, ':')
	if i <= 0 || i == len(id)-1 || id[i+1] == '0' || id[i+1] == '+' {
		return "", 0, false
	}
	n, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil {
		return "", 0, false
	}
	return id[:i], n, true
}

func FuzzSplitID(f *testing.F) {
	for _, s := range []string{"p:1", "p:0", "p:01", "a:b:12", "p:+1", "p:-1", "p:1_0", "p:18446744073709551615",
		"p:18446744073709551616", "p:99999999999999999999", "#p:1", ":1", "p:", "p:1x", "p:٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		p, n, ok := SplitID(id)
		wp, wn, wok := splitByParseUint(id)
		if p != wp || n != wn || ok != wok {
			t.Fatalf("SplitID(%q) = %q, %d, %v; want %q, %d, %v", id, p, n, ok, wp, wn, wok)
		}
	})
}

// TestTouchesAsApplied checks that Touches names the keys as Apply counts
// them: a category longer than the limit is counted cut.
func TestTouchesAsApplied(t *testing.T) {
	long := strings.Repeat("c", DefaultLimits.StringBytes+50)
	e := Event{ID: "x:1", Type: TypePage, Path: "/a", Category: long, Item: long}
	p := New("v")
	p.KeepTouches()
	want := p.Touches(Limits{}, &e)
	p.Apply(Limits{}, e)
	got, ok := p.TouchedSince(0)
	if !ok || got&^want != 0 {
		t.Fatalf("Apply touched %b, which Touches (%b) does not name", got, want)
	}
}
