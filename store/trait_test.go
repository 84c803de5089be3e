package store

import (
	"bytes"
	"encoding/json"
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
