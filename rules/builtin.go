package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/tailorhq/tailor/store"
)

// builtin is a built-in rule: one evaluation function, run with a
// recorder to explain it.
type builtin struct {
	name string
	deps Dependencies
	f    func(in *Input, rec *condRecorder) (bool, error)
	// err is a problem with the arguments, found by the constructor:
	// NewSet reports it, Match returns it.
	err error
	// ref is the segment that an inSegment rule refers to, and pos where.
	ref string
	pos srcPos
	// touches is set when f tells, through Input.touch, the parts of the
	// profile whose change could change its answer (see Memo).
	touches bool
}

func (b *builtin) Match(in *Input) (bool, error) {
	if b.err != nil {
		return false, b.err
	}
	return b.f(in, nil)
}

// Dependencies returns what the rule depends on besides the profile.
func (b *builtin) Dependencies() Dependencies { return b.deps }

// Explain evaluates the rule and returns the facts it looked at.
func (b *builtin) Explain(in *Input) (bool, []Clause, error) {
	if b.err != nil {
		return false, []Clause{{Rule: b.name, Op: "invalid", Actual: strconv.Quote(b.err.Error())}}, b.err
	}
	rec := &condRecorder{rule: b.name}
	ok, err := b.f(in, rec)
	return ok, rec.clauses, err
}

func (b *builtin) String() string { return b.name }

// check returns the problem found by the constructor, if any.
func (b *builtin) check() error {
	if b.err != nil {
		return fmt.Errorf("%s: %w", b.name, b.err)
	}
	return nil
}

// profileRule returns a built-in that is false, saying so, for a visitor
// without a profile.
func profileRule(name string, f func(in *Input, rec *condRecorder) (bool, error)) *builtin {
	return &builtin{name: name, f: func(in *Input, rec *condRecorder) (bool, error) {
		if in.Profile == nil {
			rec.fact("profile", "=", "null", "a tracked visitor", false)
			return false, nil
		}
		return f(in, rec)
	}}
}

// touching marks b as telling the parts of the profile it depends on.
func touching(b *builtin) *builtin {
	b.touches = true
	return b
}

// atLeast returns n >= min for a count of the profile that events only
// ever increase (part), telling in that the answer may change when part
// does, unless it is true: then it stays true, whatever is applied to
// the same profile.
func atLeast(in *Input, n, min int, part store.Touch) bool {
	ok := n >= min
	if !ok {
		in.touch(part)
	}
	return ok
}

// Purchased matches visitors with at least min purchases.
func Purchased(min int) Rule {
	return touching(profileRule("purchased", func(in *Input, rec *condRecorder) (bool, error) {
		n := in.Profile.Purchases.Count
		ok := atLeast(in, n, min, store.TouchPurchases)
		rec.fact("purchases.count", ">=", itoa(n), itoa(min), ok)
		return ok, nil
	}))
}

// Visits matches visitors on their min-th visit or later.
func Visits(min int) Rule {
	return touching(profileRule("visits", func(in *Input, rec *condRecorder) (bool, error) {
		n := in.Visits()
		ok := atLeast(in, n, min, store.TouchVisits)
		rec.fact("visits", ">=", itoa(n), itoa(min), ok)
		return ok, nil
	}))
}

// EventCount matches visitors with at least min events named name ("page",
// "purchase", any track event's name), counted over the whole history.
// CountEvents counts within a window or with a property filter.
func EventCount(name string, min int) Rule {
	part := store.TouchCount(name)
	return touching(profileRule("eventCount", func(in *Input, rec *condRecorder) (bool, error) {
		n := in.Profile.Counts[name]
		ok := atLeast(in, n, min, part)
		if rec != nil {
			rec.fact("counts["+name+"]", ">=", itoa(n), itoa(min), ok)
		}
		return ok, nil
	}))
}

// CategoryViews matches visitors who viewed pages of category at least min
// times.
func CategoryViews(category string, min int) Rule {
	part := store.TouchCategory(category)
	return touching(profileRule("categoryViews", func(in *Input, rec *condRecorder) (bool, error) {
		n := in.Profile.Categories[category]
		ok := atLeast(in, n, min, part)
		if rec != nil {
			rec.fact("categories["+category+"]", ">=", itoa(n), itoa(min), ok)
		}
		return ok, nil
	}))
}

// InSegment matches visitors who are in the named segment of the same
// engine: its rule matches and no segment before it in its exclusive group
// took the visitor. The name must be that of a segment of the set; NewSet
// and Parse report unknown names and cycles of references (found in And,
// Or and Not; a reference inside a plugin's own rule is only resolved when
// it is evaluated). Evaluated outside an engine, it returns an error.
func InSegment(name string) Rule {
	return inSegment(name, srcPos{})
}

func inSegment(name string, pos srcPos) *builtin {
	// The segment it refers to is evaluated in the same evaluation, which
	// notes what that one depends on.
	b := &builtin{name: "inSegment", ref: name, pos: pos, touches: true}
	b.f = func(in *Input, rec *condRecorder) (bool, error) {
		ev := in.ev
		if ev == nil || ev.set == nil {
			return false, fmt.Errorf("inSegment %q: evaluated outside an engine", name)
		}
		i, ok := ev.set.index[name]
		if !ok {
			return false, fmt.Errorf("inSegment %q: no such segment", name)
		}
		in2 := ev.member(in, i)
		rec.fact("segment "+name, "=", strconv.FormatBool(in2), "true", in2)
		return in2, nil
	}
	if name == "" {
		b.err = errors.New("empty segment name")
	}
	return b
}

// combo is And, Or or Not.
type combo struct {
	op    string // "and", "or", "not"
	rules []Rule
}

// And matches when every rule matches (and when there are none).
func And(rs ...Rule) Rule { return &combo{op: "and", rules: rs} }

// Or matches when any rule matches.
func Or(rs ...Rule) Rule { return &combo{op: "or", rules: rs} }

// Not matches when r does not. An error in r stays an error.
func Not(r Rule) Rule { return &combo{op: "not", rules: []Rule{r}} }

// matchChild evaluates a rule combined in another: a rule that does not say
// what it depends on may change its answer at any time.
func matchChild(r Rule, in *Input) (bool, error) {
	if _, ok := r.(Dependent); !ok {
		in.ChangesAt(in.Now)
	}
	return r.Match(in)
}

func (c *combo) Match(in *Input) (bool, error) {
	switch c.op {
	case "and":
		for _, r := range c.rules {
			if ok, err := matchChild(r, in); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case "or":
		var first error
		for _, r := range c.rules {
			ok, err := matchChild(r, in)
			if ok && err == nil {
				return true, nil
			}
			if first == nil {
				first = err
			}
		}
		return false, first
	}
	ok, err := matchChild(c.rules[0], in)
	return !ok && err == nil, err
}

// Dependencies returns the union of the dependencies of the rules.
func (c *combo) Dependencies() Dependencies {
	var d Dependencies
	for _, r := range c.rules {
		e, _ := DependenciesOf(r)
		d = d.Union(e)
	}
	return d
}

// Explain evaluates every rule, even those that Match would skip, and
// returns their clauses under one for the combination.
func (c *combo) Explain(in *Input) (bool, []Clause, error) {
	out := []Clause{{Rule: c.op, Op: c.op}}
	var oks []bool
	var errs []error
	for _, r := range c.rules {
		if _, ok := r.(Dependent); !ok {
			in.ChangesAt(in.Now)
		}
		ok, cl, err := ExplainRule(r, in)
		for _, x := range cl {
			x.Depth++
			out = append(out, x)
		}
		oks, errs = append(oks, ok), append(errs, err)
	}
	// The result and the error are those of Match.
	ok, err := true, error(nil)
	switch c.op {
	case "and":
		for i := range oks {
			if errs[i] != nil || !oks[i] {
				ok, err = false, errs[i]
				break
			}
		}
	case "or":
		ok = false
		for i := range oks {
			if oks[i] && errs[i] == nil {
				ok, err = true, nil
				break
			}
			if err == nil {
				err = errs[i]
			}
		}
	default:
		ok, err = !oks[0] && errs[0] == nil, errs[0]
	}
	out[0].Result = ok
	return ok, out, err
}

func (c *combo) children() []Rule { return c.rules }

func (c *combo) check() error {
	if c.op == "not" && c.rules[0] == nil {
		return errors.New("not: no rule")
	}
	for i, r := range c.rules {
		if r == nil {
			return fmt.Errorf("%s: rule %d is nil", c.op, i)
		}
	}
	return nil
}

// condRule is a Condition used as a rule.
type condRule struct{ c *Condition }

// ConditionRule returns a rule that matches when the engine's document
// (see the package documentation) satisfies c. A nil c matches nothing.
func ConditionRule(c *Condition) Rule { return &condRule{c} }

// MustCondition compiles the JSON condition src into a rule, and panics if
// it has any problem. It is for conditions written in Go source; load
// conditions from elsewhere with Parse or CompileCondition.
func MustCondition(src string, opts ...ConditionOption) Rule {
	c, err := CompileCondition([]byte(src), opts...)
	if err != nil {
		panic("rules: MustCondition: " + err.Error())
	}
	return &condRule{c}
}

func (r *condRule) Match(in *Input) (bool, error) {
	return r.eval(in, nil), nil
}

func (r *condRule) eval(in *Input, rec *condRecorder) bool {
	if r.c == nil {
		return false
	}
	ev := in.eval()
	env := condEnv{now: in.Now, x: &ev.track, root: &ev.doc, rec: rec}
	return r.c.root.eval(env, gjson.Result{}) == condPass
}

// Dependencies returns the request facts that the condition reads, and
// whether it uses the time.
func (r *condRule) Dependencies() Dependencies {
	if r.c == nil {
		return Dependencies{}
	}
	return Dependencies{Request: r.c.reads, Time: r.c.usesTime}
}

// Explain evaluates the condition and returns a clause per operator.
func (r *condRule) Explain(in *Input) (bool, []Clause, error) {
	rec := &condRecorder{rule: "condition"}
	ok := r.eval(in, rec)
	return ok, rec.clauses, nil
}

// Trait matches visitors whose trait at path, a gjson path into the
// profile's traits ("plan", "crm.stage", "twitter.followers"), satisfies
// is: a value it must equal, such as "opportunity", or a map of condition
// operators, such as map[string]any{"$gte": 1000}, with the semantics of
// conditions (see Condition). A nil is means the trait exists. Problems
// with is (an unknown operator...) are reported by NewSet. A visitor
// without a profile does not match.
func Trait(path string, is any) Rule {
	if is == nil {
		is = map[string]any{"$exists": true}
	}
	var src []byte
	switch v := is.(type) {
	case json.RawMessage:
		src = v
	default:
		var err error
		if src, err = json.Marshal(is); err != nil {
			return &builtin{name: "trait", err: err}
		}
	}
	c := &condCompiler{src: src, cfg: &condConfig{line: 1, col: 1}}
	v := c.parse(MaxConditionDepth)
	if v == nil {
		return &builtin{name: "trait", err: c.errors()}
	}
	node, ops := c.fieldValue(v)
	r := traitRule(path, v, node, ops, c.usesTime)
	if len(c.problems) > 0 {
		r.err = c.errors()
	}
	if path == "" {
		r.err = errors.New("empty path")
	}
	return r
}

func traitRule(path string, arg *condJSON, node condNode, ops []condOp, usesTime bool) *builtin {
	b := touching(profileRule("trait", func(in *Input, rec *condRecorder) (bool, error) {
		in.touch(store.TouchTraits)
		tr := in.Profile.Traits
		var v gjson.Result
		if len(tr) > 0 {
			v = gjson.Get(unsafe.String(&tr[0], len(tr)), path)
		}
		env := condEnv{now: in.Now, x: &in.eval().track}
		if rec == nil {
			return node.eval(env, v) == condPass, nil
		}
		actual := condDisplay(v)
		if ops == nil {
			r := node.eval(env, v)
			rec.fact("traits."+path, "=", actual, condText(arg), r == condPass)
			return r == condPass, nil
		}
		res := condPass
		for _, o := range ops {
			r := o.node.eval(env, v)
			rec.fact("traits."+path, o.op, actual, condText(o.arg), r == condPass)
			res = condAnd(res, r)
		}
		return res == condPass, nil
	}))
	b.deps.Time = usesTime
	return b
}

func itoa(n int) string { return strconv.Itoa(n) }

// formatDuration formats d in the duration syntax of conditions: "7d",
// "1d12h", "36m", "90s".
func formatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	s := ""
	if d >= day {
		s = strconv.FormatInt(int64(d/day), 10) + "d"
		if d %= day; d == 0 {
			return s
		}
	}
	r := d.String()
	if strings.HasSuffix(r, "m0s") {
		r = strings.TrimSuffix(r, "0s")
	}
	if strings.HasSuffix(r, "h0m") {
		r = strings.TrimSuffix(r, "0m")
	}
	return s + r
}

func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'g', 4, 64)
}
