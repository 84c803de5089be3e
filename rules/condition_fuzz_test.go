package rules

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzEvalCondition checks that no condition and no document makes
// compilation or evaluation panic or hang, that EvalCondition and a compiled
// Condition agree, and that problems are well placed. The corpus starts with
// the table cases.
func FuzzEvalCondition(f *testing.F) {
	for _, tc := range loadGrowthBookCases(f, growthbookCases) {
		f.Add(tc.cond, tc.doc)
	}
	for _, tc := range tailorCases {
		f.Add([]byte(tc.cond), []byte(tc.doc))
	}
	doc := condTestProfile(f, condTestNow, 30) // small, to keep the fuzzer fast
	for _, cond := range condTestTypical {
		f.Add([]byte(cond), doc)
	}
	f.Add([]byte(`{"a":`), []byte(`{"a":1}`))
	f.Add([]byte(`{}`), []byte(`{"a":`))
	f.Add([]byte(strings.Repeat(`{"$not":`, 70)+`{}`+strings.Repeat(`}`, 70)), []byte(`{}`))

	f.Fuzz(func(t *testing.T, cond, doc []byte) {
		ok, err := EvalCondition(cond, doc)
		c, cerr := CompileCondition(cond)
		if c == nil {
			var list ConditionErrors
			if !errors.As(cerr, &list) || len(list) != 1 {
				t.Fatalf("CompileCondition(%q) = nil, %v", cond, cerr)
			}
			if err == nil || ok {
				t.Fatalf("EvalCondition(%q) = %v, %v, but it does not compile: %v", cond, ok, err, cerr)
			}
			if json.Valid(cond) && condDepth(cond) <= MaxConditionDepth {
				t.Fatalf("CompileCondition(%q) = nil, %v, for valid JSON", cond, cerr)
			}
			return
		}
		if !json.Valid(cond) {
			t.Fatalf("CompileCondition(%q) succeeded on invalid JSON", cond)
		}
		if d := condDepth(cond); d > MaxConditionDepth {
			t.Fatalf("CompileCondition(%q) accepted depth %d", cond, d)
		}
		if cerr != nil {
			var list ConditionErrors
			if !errors.As(cerr, &list) || len(list) == 0 {
				t.Fatalf("CompileCondition(%q): %v is not a ConditionErrors", cond, cerr)
			}
			for _, e := range list {
				if e.Line < 1 || e.Column < 1 || e.Msg == "" || (e.Path != "" && e.Path[0] != '/') {
					t.Fatalf("CompileCondition(%q): bad problem %+v", cond, e)
				}
			}
		}
		// Any document, valid or not, can be matched.
		got := c.MatchAt(doc, condTestNow)
		if err != nil {
			if !errors.Is(err, ErrInvalidDocument) || ok {
				t.Fatalf("EvalCondition(%q, %q) = %v, %v", cond, doc, ok, err)
			}
			return
		}
		if !c.usesTime && got != ok {
			t.Fatalf("EvalCondition(%q, %q) = %v, but Condition.MatchAt = %v", cond, doc, ok, got)
		}
		if c.usesTime {
			_ = c.Match(doc)
			_ = c.MatchAt(doc, time.Time{})
		}
	})
}

// condDepth returns the nesting depth of the valid JSON b.
func condDepth(b []byte) int {
	depth, deepest := 0, 0
	inString, esc := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}
