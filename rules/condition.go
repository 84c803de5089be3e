package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/tailorhq/tailor/internal/errlist"
	"github.com/tailorhq/tailor/internal/jsonpos"

	"github.com/tidwall/gjson"
)

// MaxConditionDepth is how deeply the arrays and objects of a condition may
// nest. A deeper condition is rejected whole, by EvalCondition as well as by
// CompileCondition, so that neither compiling nor evaluating a condition can
// exhaust the stack.
const MaxConditionDepth = 64

// ErrInvalidDocument is returned by EvalCondition when the document is not
// valid JSON.
var ErrInvalidDocument = errors.New("rules: document is not valid JSON")

// ErrConditionTooDeep is the Err of the ConditionError reported for a
// condition that nests deeper than MaxConditionDepth.
var ErrConditionTooDeep = fmt.Errorf("nests deeper than %d arrays and objects", MaxConditionDepth)

// A Condition is a compiled JSON condition: a MongoDB-style query over a JSON
// document, with the semantics of GrowthBook's targeting conditions as its
// JavaScript SDK evaluates them, so that a condition written for one
// evaluates the same in the other. It passes every case of that SDK's
// published evalCondition suite (spec 0.7.1). A Condition is
// immutable and safe for concurrent use.
//
// A condition is a JSON object. Each key is either a logical operator or a
// dot-separated attribute path, and every entry must hold:
//
//	{"traits.plan": "pro", "visits": {"$gte": 3}}
//
// # Attribute paths
//
// A path is split on "." only, and each part names an object key, an array
// index ("recent.0") or an array's length ("recent.length"). Keys may contain
// any character, including those that are special in gjson paths, which are
// escaped when the path is compiled. A path that does not resolve (a missing
// key, an index out of range, a part past a string or a number) gives null,
// so {"$exists": false}, {"$type": "null"}, {"$eq": null} and null match it.
// (Of duplicate keys in a document, the first counts; encoding/json never
// writes any.)
//
// # Values
//
// A value that is not an object of operators must equal the attribute: a
// scalar by type and value (5 never equals "5"), an array or an object by
// deep equality (order matters in arrays, not in objects). An object of
// operators, whose keys all start with "$", must pass every operator; the
// empty object passes.
//
// # Operators
//
// Logical, at the level of a condition: $and, $or, $nor (arrays of
// conditions; an empty $or passes, an empty $nor fails) and $not (a
// condition).
//
// Comparison: $eq and $ne compare scalars strictly (an array or object
// argument is never equal). $gt, $gte, $lt and $lte compare as JavaScript's
// relational operators do: two strings by UTF-16 code units ("10" < "9"),
// any other pair as numbers, where a missing attribute or null is 0, a
// boolean 0 or 1, a string its numeric value ({"$gt": 5} matches "8" and
// " 8 "; "" is 0; "eight" is NaN), an array the string of its elements
// joined by "," and an object "[object Object]"; NaN is ordered with
// nothing, so all four fail. So {"age": {"$lt": 18}} matches a document
// without an age. With StrictTypes they order only two numbers or two
// strings, and any other pair fails.
//
// Membership: $in and $nin (an array argument; an array attribute is in it
// when any element is, and a non-array argument fails both), $ini and $nini
// (the same, ignoring the case of strings), $all and $alli (the attribute
// is an array with a matching element for every value or operator object in
// the argument), $elemMatch (an element matches the operator object, or the
// condition on the element's fields; null elements are skipped), $size (the
// array's length matches a number or an operator object), $inGroup and
// $notInGroup (the attribute, or any element of an array attribute, is in
// the named saved group; see WithSavedGroups).
//
// Others: $not (the operator object or value does not match), $exists (a
// truthy argument wants a non-null attribute), $type ("string", "number",
// "boolean", "array", "object" or "null"), $regex and $regexi (an
// unanchored pattern in Go's RE2 syntax matched against a string attribute;
// $regexi ignores case; JavaScript-only syntax such as lookahead is an
// invalid pattern), and the version comparisons $veq, $vne, $vgt, $vgte, $vlt
// and $vlte, which compare version strings as GrowthBook does ("v1.2.3",
// pre-releases before releases, build metadata ignored).
//
// # Time and event history
//
// These operators are tailor's own. A duration is written as a string in
// Go's syntax ("72h", "90m") with an extra unit "d" of 24 hours ("7d",
// "1d12h"), and must be positive.
//
// $within and $olderThan take a duration and test an attribute holding an
// RFC 3339 time: {"lastSeen": {"$within": "7d"}} passes when lastSeen is at
// most 7 days before the time of evaluation (or after it), {"$olderThan":
// "30d"} when it is more than 30 days before. An attribute that is not such a
// time fails both.
//
// $count counts the elements of an array attribute, such as the profile's
// ring of recent events, and matches the count against a number or an
// operator object:
//
//	{"recent": {"$count": {
//		"where":  {"name": "purchase"},
//		"within": "90d",
//		"at":     "time",
//		"is":     {"$gte": 2}
//	}}}
//
// passes for visitors with at least two purchase events among their recent
// events in the last 90 days. Only "is" is required. "where" selects the
// elements to count, with the same rules as the argument of $elemMatch.
// "within" counts only elements whose time, the RFC 3339 time at the path
// "at" (default "time") inside the element, is within that duration of the
// time of evaluation. A missing or null attribute counts as an empty array;
// any other value that is not an array fails. Unlike $elemMatch, $count
// does not skip null elements.
//
// # Problems
//
// Like GrowthBook, evaluation never fails: an operator that tailor does not
// know (or $savedGroup, which it does not support) makes the condition fail
// even under $not or $nor, an invalid regular expression fails its
// operator, and a malformed part (a $not that is not an object, an $and that
// is not an array, a $regex that is not a string, a bad duration) fails the
// whole condition when evaluation reaches it. Entries are evaluated in the
// order they are written, and $and, $or and $nor stop at the first entry
// that decides them, as in GrowthBook's JavaScript SDK. CompileCondition
// reports all of these, and other mistakes that make an operator never
// match, as problems.
type Condition struct {
	root     condNode
	usesTime bool
	reads    Fields    // the request facts that document paths under "request" read
	src      *condJSON // the parsed condition, for explanations
}

// Match reports whether the JSON document doc satisfies c, with the current
// time for the time operators. It does not allocate for typical conditions.
// A doc that is not valid JSON matches as if its attributes were missing, as
// far as they cannot be read; use EvalCondition to check documents. A nil
// Condition matches nothing.
func (c *Condition) Match(doc []byte) bool {
	if c == nil {
		return false
	}
	var now time.Time
	if c.usesTime {
		now = time.Now()
	}
	return c.MatchAt(doc, now)
}

// MatchAt is Match with now as the time of evaluation.
func (c *Condition) MatchAt(doc []byte, now time.Time) bool {
	if c == nil {
		return false
	}
	// doc is only read, and no result outlives this call.
	s := ""
	if len(doc) > 0 {
		s = unsafe.String(unsafe.SliceData(doc), len(doc))
	}
	return c.root.eval(condEnv{now: now}, gjson.Parse(s)) == condPass
}

// EvalCondition reports whether the JSON document doc satisfies the JSON
// condition cond, evaluated as GrowthBook's JavaScript SDK evaluates
// targeting conditions (see Condition): parts of cond that CompileCondition reports as problems make
// it fail rather than return an error. The time operators use the current
// time.
//
// The error is a ConditionErrors when cond is not valid JSON or nests deeper
// than MaxConditionDepth, and ErrInvalidDocument when doc is not valid JSON.
//
// EvalCondition compiles cond on every call: to evaluate a condition many
// times, compile it once with CompileCondition.
func EvalCondition(cond, doc []byte, opts ...ConditionOption) (bool, error) {
	c, err := compileCondition(cond, opts)
	if c == nil {
		return false, err
	}
	if !gjson.ValidBytes(doc) {
		return false, ErrInvalidDocument
	}
	return c.Match(doc), nil
}

// CompileCondition compiles the JSON condition cond (see Condition for the
// language): it parses it, compiles regular expressions, resolves paths and
// durations, and collects every problem it finds rather than stopping at the
// first one.
//
// If cond is not valid JSON, or nests deeper than MaxConditionDepth, the
// Condition is nil and the error a ConditionErrors with one entry. If cond
// is valid JSON but has problems (an unknown operator, an argument of the
// wrong type, an invalid regular expression or duration, an unknown saved
// group, a duplicate key...), the error is a ConditionErrors listing them in
// the order of the source, and the Condition is not nil: it evaluates the
// problems as GrowthBook would, exactly as EvalCondition does. A caller that
// accepts only sound conditions rejects it; one that wants GrowthBook's
// lenient behaviour may keep it.
func CompileCondition(cond []byte, opts ...ConditionOption) (*Condition, error) {
	return compileCondition(cond, opts)
}

// A ConditionOption configures the compilation of a condition.
type ConditionOption func(*condConfig)

type condConfig struct {
	strictTypes bool
	groups      map[string][]any
	file        string
	line, col   int
	haveGroups  bool
}

// StrictTypes makes $gt, $gte, $lt and $lte order only two numbers, or two
// strings by UTF-16 code units: any other pair fails, a missing or null
// attribute, a boolean, and a number against a string included, and an
// argument that is neither a number nor a string is a problem. Without
// StrictTypes the operators compare as JavaScript's relational operators do,
// as GrowthBook's JavaScript SDK does (see Condition). Nothing else changes:
// $eq and $ne are strict either way.
func StrictTypes() ConditionOption {
	return func(c *condConfig) { c.strictTypes = true }
}

// NumericStrings asks for the default ordering, in which a number and a
// numeric string compare numerically ({"n": {"$gt": 5}} matches
// {"n": "8"}): it undoes a StrictTypes given before it.
//
// Deprecated: the default does this; NumericStrings is kept for callers
// that used it when the default was StrictTypes.
func NumericStrings() ConditionOption {
	return func(c *condConfig) { c.strictTypes = false }
}

// WithSavedGroups gives the saved groups that $inGroup and $notInGroup refer
// to by name: each is a list of JSON scalars (strings, numbers, booleans,
// nil), compared with the attribute as $in does. Arrays and objects in a
// group never match. A group that is not in groups is empty, and reported as
// a problem by CompileCondition. The lists are read during compilation only.
func WithSavedGroups(groups map[string][]any) ConditionOption {
	return func(c *condConfig) {
		c.groups = groups
		c.haveGroups = true
	}
}

// WithSource says that the condition was read from file, starting at the
// given line and column (both counted from 1), so that problems are reported
// at their place in that file.
func WithSource(file string, line, column int) ConditionOption {
	return func(c *condConfig) {
		c.file = file
		c.line = max(line, 1)
		c.col = max(column, 1)
	}
}

// A ConditionError is a problem found in a condition, or in a segments
// file (see Parse).
type ConditionError struct {
	// File is the file given by WithSource or Filename, if any.
	File string
	// Line and Column locate the problem, counting from 1; Column counts
	// bytes. They are relative to the condition unless WithSource was used.
	Line, Column int
	// Path is a JSON Pointer (RFC 6901) to the problem in the condition,
	// such as "/recent/$count/within", or in the segments file; "" is the
	// whole condition or file.
	Path string
	// Msg describes the problem.
	Msg string
	// Err is the underlying error, if any: a *json.SyntaxError, a
	// *syntax.Error from regexp/syntax, ErrConditionTooDeep...
	Err error
}

func (e *ConditionError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	fmt.Fprintf(&b, "%d:%d: ", e.Line, e.Column)
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns e.Err.
func (e *ConditionError) Unwrap() error { return e.Err }

// ConditionErrors lists the problems of a condition or of a segments file,
// in source order.
// errors.As finds each *ConditionError in it.
type ConditionErrors = errlist.List[*ConditionError]

// compileCondition is the one compiler behind EvalCondition and
// CompileCondition.
func compileCondition(cond []byte, opts []ConditionOption) (*Condition, error) {
	cfg := condConfig{line: 1, col: 1}
	for _, o := range opts {
		o(&cfg)
	}
	c := &condCompiler{src: cond, cfg: &cfg}
	v := c.parse(MaxConditionDepth)
	if v == nil {
		return nil, c.errors()
	}
	out := c.condition(v)
	if len(c.problems) > 0 {
		return out, c.errors()
	}
	return out, nil
}

// condition compiles the parsed condition v.
func (c *condCompiler) condition(v *condJSON) *Condition {
	c.usesTime, c.reads = false, 0
	root := c.doc(v)
	return &Condition{root: root, usesTime: c.usesTime, reads: c.reads, src: v}
}

// errors returns the problems as ConditionErrors, in source order.
func (c *condCompiler) errors() error {
	slices.SortStableFunc(c.problems, func(a, b condProblem) int { return a.off - b.off })
	errs := make(ConditionErrors, len(c.problems))
	for i, p := range c.problems {
		line, col := jsonpos.Position(c.src, p.off)
		if line == 1 {
			col += c.cfg.col - 1
		}
		line += c.cfg.line - 1
		errs[i] = &ConditionError{File: c.cfg.file, Line: line, Column: col, Path: p.path, Msg: p.msg, Err: p.err}
	}
	return errs
}
