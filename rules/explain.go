package rules

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// An Explanation says whether a visitor is in a segment, and why.
type Explanation struct {
	Segment     string `json:"segment"`
	Description string `json:"description,omitempty"`
	Priority    int    `json:"priority"`
	Group       string `json:"group,omitempty"`
	// In reports whether the visitor is in the segment: its rule matched
	// and no segment before it in its exclusive group took the visitor.
	In bool `json:"in"`
	// Matched reports whether the segment's rule matched.
	Matched bool `json:"matched"`
	// ExcludedBy names the segment of the same exclusive group that the
	// visitor is in instead, if any.
	ExcludedBy string `json:"excludedBy,omitempty"`
	// Err is why the rule could not be evaluated, if it could not. Its
	// JSON form is the message, as "error".
	Err error `json:"-"`
	// Clauses are the facts the rule looked at, in the order it did.
	Clauses []Clause `json:"clauses"`
}

// MarshalJSON encodes x with Err as its message.
func (x Explanation) MarshalJSON() ([]byte, error) {
	type plain Explanation
	var msg string
	if x.Err != nil {
		msg = x.Err.Error()
	}
	return json.Marshal(struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain(x), msg})
}

// A Clause is one test that a rule made: a condition's operator on an
// attribute, or a fact a built-in rule looked at.
type Clause struct {
	// Depth is how deep the clause is nested in And, Or and Not, or in a
	// condition's $and, $or, $nor and $not: the clauses of a combination
	// follow it, one level deeper.
	Depth int `json:"depth"`
	// Rule is the kind of rule that made the test: "condition", the name
	// of a built-in ("pageVisited", "and"...) or of a plugin.
	Rule string `json:"rule"`
	// Path is what was tested: a document path ("traits.plan") in a
	// condition, a fact such as "pages[/pricing] within 7d" in a built-in;
	// empty for combinations.
	Path string `json:"path,omitempty"`
	// Op is the operator: "$in", "$gte"... in conditions ("=" for a value
	// without operator), ">=", "in", "top"... in built-ins.
	Op string `json:"op"`
	// Actual is the value found, as JSON text ("null" when there is none),
	// shortened if long.
	Actual string `json:"actual,omitempty"`
	// Expected is the operator's argument, as JSON text.
	Expected string `json:"expected,omitempty"`
	// Result is the outcome of the test.
	Result bool `json:"result"`
}

// String formats c on one line, for logs and the inspector:
//
//	pass pages[/pricing] within 7d = 2, want >= 2
func (c Clause) String() string {
	var b strings.Builder
	b.WriteString(strings.Repeat("  ", c.Depth))
	if c.Result {
		b.WriteString("pass ")
	} else {
		b.WriteString("fail ")
	}
	if c.Path == "" && c.Actual == "" {
		b.WriteString(c.Op)
		if c.Expected != "" {
			b.WriteByte(' ')
			b.WriteString(c.Expected)
		}
		return b.String()
	}
	if c.Path != "" {
		b.WriteString(c.Path)
		b.WriteString(" = ")
	}
	b.WriteString(c.Actual)
	b.WriteString(", want ")
	if c.Op != "=" {
		b.WriteString(c.Op)
		b.WriteByte(' ')
	}
	b.WriteString(c.Expected)
	return b.String()
}

// An Explainer is a rule that can say why it matches or not.
type Explainer interface {
	Rule
	// Explain evaluates the rule as Match does, and returns the clauses
	// it tested. Clauses of rules it combines are one level deeper.
	Explain(in *Input) (bool, []Clause, error)
}

// ExplainRule evaluates r on in and returns the clauses it tested: those of
// an Explainer, or else one clause with r's result.
func ExplainRule(r Rule, in *Input) (bool, []Clause, error) {
	if x, ok := r.(Explainer); ok {
		return x.Explain(in)
	}
	ok, err := r.Match(in)
	c := Clause{Rule: fmt.Sprintf("%T", r), Op: "match", Result: ok && err == nil}
	if err != nil {
		c.Actual = strconv.Quote(err.Error())
	}
	return ok && err == nil, []Clause{c}, err
}

// condRecorder records clauses for an explanation.
type condRecorder struct {
	clauses []Clause
	depth   int
	rule    string // Clause.Rule of the clauses added
}

// add appends c at the current depth and returns its index.
func (r *condRecorder) add(c Clause) int {
	c.Depth = r.depth
	if c.Rule == "" {
		c.Rule = r.rule
	}
	r.clauses = append(r.clauses, c)
	return len(r.clauses) - 1
}

// fact records a fact of a built-in rule; r may be nil.
func (r *condRecorder) fact(path, op, actual, expected string, ok bool) {
	if r != nil {
		r.add(Clause{Path: path, Op: op, Actual: actual, Expected: expected, Result: ok})
	}
}

// maxShown is how many bytes of a value an explanation shows.
const maxShown = 200

// condDisplay returns v as JSON text for an explanation, shortened if long.
func condDisplay(v gjson.Result) string {
	switch {
	case v.Raw != "":
		return shorten(v.Raw)
	case v.Type == gjson.Number:
		return string(appendJSONFloat(nil, v.Num))
	case v.Type == gjson.String:
		return shorten(string(appendJSONString(nil, v.Str)))
	}
	return "null"
}

// shorten returns a copy of s, cut to maxShown bytes.
func shorten(s string) string {
	if len(s) <= maxShown {
		return strings.Clone(s)
	}
	i := maxShown
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// condText returns v as compact JSON text.
func condText(v *condJSON) string {
	if v == nil {
		return ""
	}
	return shorten(string(appendCondJSON(nil, v)))
}

func appendCondJSON(b []byte, v *condJSON) []byte {
	switch v.Kind {
	case condNull:
		return append(b, "null"...)
	case condBool:
		return strconv.AppendBool(b, v.Bool)
	case condNum:
		return appendJSONFloat(b, v.Num)
	case condStr:
		return appendJSONString(b, v.Str)
	case condArr:
		b = append(b, '[')
		for i, e := range v.Elems {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCondJSON(b, e)
		}
		return append(b, ']')
	}
	b = append(b, '{')
	for i, m := range v.Members {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, m.Key)
		b = append(b, ':')
		b = appendCondJSON(b, m.Val)
	}
	return append(b, '}')
}
