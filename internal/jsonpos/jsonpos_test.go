package jsonpos

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	src := []byte("{\"a\": [1, \"x\\u0041\", true, null],\n \"b/c\": {\"d\": -2.5e1}, \"e\": 1e999}")
	v, errs := Parse(src, 10)
	if v == nil || len(errs) > 0 {
		t.Fatalf("Parse: %v %v", v, errs)
	}
	a := v.Member("a")
	if a.Kind != Array || len(a.Elems) != 4 || a.Elems[0].Num != 1 || a.Elems[1].Str != "xA" || !a.Elems[2].Bool || a.Elems[3].Kind != Null {
		t.Errorf("a: %+v", a)
	}
	if got := string(src[a.Off:a.End]); got != `[1, "x\u0041", true, null]` {
		t.Errorf("a's text: %q", got)
	}
	d := v.Member("b/c").Member("d")
	if d.Kind != Number || d.Num != -25 || string(src[d.Off:d.End]) != "-2.5e1" {
		t.Errorf("d: %+v", d)
	}
	if line, col := Position(src, d.Off); line != 2 || col != 15 {
		t.Errorf("d at %d:%d, want 2:15", line, col)
	}
	if e := v.Member("e"); !math.IsInf(e.Num, 1) {
		t.Errorf("1e999 = %v, want +Inf", e.Num)
	}
	if v.Member("nope") != nil {
		t.Error("a missing member is not nil")
	}
}

func TestDuplicateKeys(t *testing.T) {
	src := `{"x": {"a": 1, "b": 2, "a": 3}}`
	v, errs := Parse([]byte(src), 10)
	if v == nil || len(errs) != 1 {
		t.Fatalf("Parse: %v %v", v, errs)
	}
	x := v.Member("x")
	if len(x.Members) != 2 || x.Members[0].Key != "a" || x.Members[0].Val.Num != 3 {
		t.Errorf("x: first place and last value wanted: %+v", x.Members)
	}
	if e := errs[0]; e.Off != strings.LastIndex(src, `"a"`) || e.Pointer != "/x/a" || e.Msg != "duplicate key: the last value counts" {
		t.Errorf("problem: %+v", e)
	}
	// Many members are indexed: the same answers.
	var b strings.Builder
	b.WriteString("{")
	for i := range 20 {
		b.WriteString(`"k` + string(rune('a'+i)) + `": ` + string(rune('0'+i%10)) + ", ")
	}
	b.WriteString(`"kc": 7}`)
	v, errs = Parse([]byte(b.String()), 10)
	if len(v.Members) != 20 || v.Member("kc").Num != 7 || v.Member("kt").Num != 9 || len(errs) != 1 {
		t.Errorf("indexed: %d members, kc %v, %v", len(v.Members), v.Member("kc").Num, errs)
	}
}

func TestParseErrors(t *testing.T) {
	v, errs := Parse([]byte("{\"a\":\n [1,]}"), 10)
	var se *json.SyntaxError
	if v != nil || len(errs) != 1 || !errors.As(errs[0], &se) || errs[0].Off != 10 ||
		!strings.HasPrefix(errs[0].Msg, "invalid JSON: invalid character ']'") {
		t.Errorf("syntax: %v %+v", v, errs)
	}
	v, errs = Parse([]byte(`{"a": [[{"b": 1}]]}`), 3)
	if v != nil || len(errs) != 1 || !errors.Is(errs[0], ErrTooDeep) || errs[0].Off != 8 || errs[0].Pointer != "/a/0/0" ||
		errs[0].Msg != "nests deeper than 3 arrays and objects" {
		t.Errorf("too deep: %v %+v", v, errs)
	}
	if v, errs := Parse([]byte(`{"a": [[{"b": 1}]]}`), 4); v == nil || len(errs) > 0 {
		t.Errorf("at the limit: %v", errs)
	}
}

func TestPointer(t *testing.T) {
	var p Pointer
	if p.String() != "" {
		t.Errorf("empty: %q", p.String())
	}
	p.Push("a/b")
	p.Push("~c")
	p.Push("0")
	if p.String() != "/a~1b/~0c/0" {
		t.Errorf("got %q", p.String())
	}
	p.Pop()
	if p.String() != "/a~1b/~0c" {
		t.Errorf("after Pop: %q", p.String())
	}
}

func TestPosition(t *testing.T) {
	src := []byte("ab\ncd\n")
	for _, tc := range []struct{ off, line, col int }{{0, 1, 1}, {2, 1, 3}, {3, 2, 1}, {4, 2, 2}, {6, 3, 1}, {99, 3, 1}, {-1, 1, 1}} {
		if l, c := Position(src, tc.off); l != tc.line || c != tc.col {
			t.Errorf("Position(%d) = %d:%d, want %d:%d", tc.off, l, c, tc.line, tc.col)
		}
	}
}

// FuzzParse checks that Parse accepts what encoding/json accepts, within
// the depth, agrees with it on the values, and places every value at its
// text.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"a": [1, "x", true, null, {}]}`, `[]`, `"\u00e9"`, `{"a":1,"a":2}`, `1e999`, `[[[[]]]]`, `{"a": ` + "\n" + `-0.5}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		v, errs := Parse(src, 8)
		if !json.Valid(src) {
			if v != nil || len(errs) != 1 || errs[0].Err == nil {
				t.Fatalf("invalid JSON parsed: %v %v", v, errs)
			}
			return
		}
		if v == nil {
			if len(errs) == 0 || !errors.Is(errs[len(errs)-1], ErrTooDeep) {
				t.Fatalf("valid JSON failed: %v", errs)
			}
			return
		}
		var walk func(v *Value)
		walk = func(v *Value) {
			if v.Off < 0 || v.End > len(src) || v.Off >= v.End {
				t.Fatalf("bad place %d-%d", v.Off, v.End)
			}
			if !json.Valid(src[v.Off:v.End]) {
				t.Fatalf("value text %q is not JSON", src[v.Off:v.End])
			}
			var want any
			if err := json.Unmarshal(src[v.Off:v.End], &want); err == nil {
				switch v.Kind {
				case Bool:
					if want != v.Bool {
						t.Fatalf("%q: %v", src[v.Off:v.End], v.Bool)
					}
				case Number:
					if want != v.Num {
						t.Fatalf("%q: %v", src[v.Off:v.End], v.Num)
					}
				case Array:
					if len(want.([]any)) != len(v.Elems) {
						t.Fatalf("%q: %d elements", src[v.Off:v.End], len(v.Elems))
					}
				case Object:
					if len(want.(map[string]any)) != len(v.Members) {
						t.Fatalf("%q: %d members", src[v.Off:v.End], len(v.Members))
					}
				}
			}
			for _, e := range v.Elems {
				walk(e)
			}
			for _, m := range v.Members {
				if src[m.Off] != '"' {
					t.Fatalf("key %q not at a quote", m.Key)
				}
				walk(m.Val)
			}
		}
		walk(v)
	})
}
