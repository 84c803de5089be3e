package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxFileDepth is how deeply the arrays and objects of a segments file may
// nest: a condition in a file may nest as deeply as MaxConditionDepth.
const maxFileDepth = MaxConditionDepth + 16

// A ParseOption configures Parse.
type ParseOption func(*parseConfig)

type parseConfig struct {
	file   string
	reg    *Registry
	groups map[string][]any
}

// Filename names the file being parsed, for the problems that Parse
// reports and for Set.Source.
func Filename(name string) ParseOption {
	return func(c *parseConfig) { c.file = name }
}

// Plugins makes Parse look plugins up in r instead of the default
// registry that Register fills.
func Plugins(r *Registry) ParseOption {
	return func(c *parseConfig) { c.reg = r }
}

// SavedGroups gives saved groups for $inGroup and $notInGroup (see
// WithSavedGroups), besides those of the file's "savedGroups": the file's
// win.
func SavedGroups(groups map[string][]any) ParseOption {
	return func(c *parseConfig) { c.groups = groups }
}

// ParseFile reads and parses the segments file at path.
func ParseFile(path string, opts ...ParseOption) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return Parse(data, append(opts, Filename(path))...)
}

// parseConfigOf returns the configuration that opts make.
func parseConfigOf(opts []ParseOption) parseConfig {
	cfg := parseConfig{reg: defaultRegistry}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// Parse parses a segments file: a JSON object whose "segments" member is
// the list of segments, whose optional "savedGroups" member holds saved
// groups for conditions (see WithSavedGroups), and whose optional
// "strictTypes" member, true, compiles its conditions with StrictTypes; or
// just the list of segments. The older "numericStrings" member is the
// opposite switch: true asks for the default ordering, in which a number
// and a numeric string compare numerically, and false for StrictTypes.
//
//	{
//	  "savedGroups": {"staff": ["u-1", "u-2"]},
//	  "segments": [
//	    {
//	      "name": "pricing-curious",
//	      "description": "visited the pricing page twice this week",
//	      "priority": 50,
//	      "rule": {"pageVisited": {"path": "/pricing", "min": 2, "within": "7d"}}
//	    },
//	    {
//	      "name": "pro-trial",
//	      "priority": 40,
//	      "condition": {"traits.plan": "trial", "visits": {"$gte": 3}}
//	    },
//	    {
//	      "name": "loyal",
//	      "group": "lifecycle",
//	      "rule": {"lifecycle": {"stage": "loyal", "loyal": 4}}
//	    }
//	  ]
//	}
//
// A segment has a unique "name", and optionally a "description", a
// "priority" (an integer, default 0: higher first) and a "group" (see
// Segment). Its rule is either a "condition" (see Condition; its paths are
// checked against the document described in the package documentation) or
// a "rule": an object with one key, the name of a built-in rule or of a
// registered plugin, whose value holds the rule's arguments. The built-ins
// and their arguments are listed in the package documentation; "and" and
// "or" take a list of rules, "not" a rule, "condition" a condition and
// "inSegment" the name of another segment.
//
// Parse reports every problem it finds, not just the first, as
// ConditionErrors: each with the file (see Filename), line, column and JSON
// Pointer of the problem, such as
//
//	segments.json:12:27: /segments/1/rule/pageVisited/within: bad duration "7days": ...
//
// Problems are invalid JSON, unknown keys, arguments of the wrong type or
// out of range, problems in conditions (unknown operators, invalid
// regular expressions, bad durations, unknown attributes...), unknown
// built-ins and plugins, plugins' errors, empty and duplicate names,
// references to unknown segments, and cycles of references.
func Parse(data []byte, opts ...ParseOption) (*Set, error) {
	cfg := parseConfigOf(opts)
	cc := &condConfig{file: cfg.file, line: 1, col: 1}
	c := &condCompiler{src: data, cfg: cc}
	root := c.parse(maxFileDepth)
	if root == nil {
		return nil, c.errors()
	}
	l := &loader{c: c, reg: cfg.reg}
	l.file(root, cfg.groups)
	// The set's problems are reported with the others, except for the
	// segments the loader could not read.
	s := buildSet(l.defs, func(p srcPos, seg int, msg string) {
		if !p.ok && seg >= 0 {
			p = l.defs[seg].namePos
		}
		c.problem(p.off, p.ptr, msg, nil)
	})
	if s == nil || len(c.problems) > 0 {
		return nil, c.errors()
	}
	s.source = cfg.file
	s.text = slices.Clone(data)
	s.plugins = slices.Sorted(maps.Keys(l.used))
	s.registered = cfg.reg.Names()
	sum := sha256.Sum256(data)
	s.digest = hex.EncodeToString(sum[:])
	return s, nil
}

// loader builds segments from a parsed segments file.
type loader struct {
	c    *condCompiler
	reg  *Registry
	defs []segDef
	used map[string]bool // the plugins used
}

func (l *loader) push(tok string) { l.c.push(tok) }
func (l *loader) pop()            { l.c.pop() }

func (l *loader) problemf(off int, format string, args ...any) {
	l.c.problemf(off, format, args...)
}

// pos returns the place of the value at off, the value being compiled.
func (l *loader) pos(off int) srcPos {
	return srcPos{off: off, ptr: l.c.pointer(), ok: true}
}

func (l *loader) file(root *condJSON, groups map[string][]any) {
	segs := root
	if root.Kind == condObj {
		segs = nil
		strictSet := false // "strictTypes" or "numericStrings" was given
		for _, m := range root.Members {
			switch m.Key {
			case "segments":
				segs = m.Val
			case "savedGroups":
				l.push(m.Key)
				groups = l.savedGroups(m.Val, groups)
				l.pop()
			case "strictTypes", "numericStrings":
				// "numericStrings" is the older switch, the opposite of
				// "strictTypes": true asks for the default ordering.
				l.push(m.Key)
				if m.Val.Kind != condBool {
					l.problemf(m.Val.Off, "%s is true or false, not %v", m.Key, m.Val.Kind)
				} else if strict := m.Val.Bool == (m.Key == "strictTypes"); strictSet && strict != l.c.cfg.strictTypes {
					l.problemf(m.Off, `"strictTypes" and "numericStrings" disagree`)
				} else {
					l.c.cfg.strictTypes, strictSet = strict, true
				}
				l.pop()
			default:
				l.push(m.Key)
				l.problemf(m.Off, `unknown key %q: want "segments", "savedGroups", "strictTypes" or "numericStrings"`, m.Key)
				l.pop()
			}
		}
		if segs == nil {
			l.problemf(root.Off, `a segments file needs "segments", the list of segments`)
			return
		}
		l.push("segments")
		defer l.pop()
	}
	if groups != nil {
		l.c.cfg.groups, l.c.cfg.haveGroups = groups, true
	}
	if segs.Kind != condArr {
		l.problemf(segs.Off, "the segments are a list, not %v", segs.Kind)
		return
	}
	for i, v := range segs.Elems {
		l.push(strconv.Itoa(i))
		l.segment(v)
		l.pop()
	}
}

// savedGroups reads the file's saved groups, over those of the options.
func (l *loader) savedGroups(v *condJSON, base map[string][]any) map[string][]any {
	if v.Kind != condObj {
		l.problemf(v.Off, "savedGroups is an object of lists of values, not %v", v.Kind)
		return base
	}
	groups := make(map[string][]any, len(base)+len(v.Members))
	for k, g := range base {
		groups[k] = g
	}
	for _, m := range v.Members {
		l.push(m.Key)
		if m.Val.Kind != condArr {
			l.problemf(m.Val.Off, "a saved group is a list of values, not %v", m.Val.Kind)
		}
		var vals []any
		for i, e := range m.Val.Elems {
			switch e.Kind {
			case condNull:
				vals = append(vals, nil)
			case condBool:
				vals = append(vals, e.Bool)
			case condNum:
				vals = append(vals, e.Num)
			case condStr:
				vals = append(vals, e.Str)
			default:
				l.push(strconv.Itoa(i))
				l.problemf(e.Off, "a saved group holds strings, numbers, booleans or null, not %v", e.Kind)
				l.pop()
			}
		}
		groups[m.Key] = vals
		l.pop()
	}
	return groups
}

func (l *loader) segment(v *condJSON) {
	if v.Kind != condObj {
		l.problemf(v.Off, `a segment is an object with "name" and "rule" or "condition", not %v`, v.Kind)
		return
	}
	d := segDef{namePos: l.pos(v.Off)}
	var ruleKey *condMember
	for i := range v.Members {
		m := &v.Members[i]
		l.push(m.Key)
		switch m.Key {
		case "name":
			d.namePos = l.pos(m.Val.Off)
			if m.Val.Kind != condStr || m.Val.Str == "" {
				l.problemf(m.Val.Off, "a segment's name is a non-empty string, not %s", describe(m.Val))
			} else {
				d.seg.Name = m.Val.Str
			}
		case "description":
			if m.Val.Kind != condStr {
				l.problemf(m.Val.Off, "a description is a string, not %v", m.Val.Kind)
			} else {
				d.seg.Description = m.Val.Str
			}
		case "priority":
			if n, ok := l.integer(m.Val); ok {
				d.seg.Priority = n
			}
		case "group":
			if m.Val.Kind != condStr {
				l.problemf(m.Val.Off, "an exclusive group is named by a string, not %v", m.Val.Kind)
			} else {
				d.seg.Group = m.Val.Str
			}
		case "rule", "condition":
			if ruleKey != nil {
				l.problemf(m.Off, "a segment has one rule: %q and %q are both given", ruleKey.Key, m.Key)
				break
			}
			ruleKey = m
			d.rulePos = l.pos(m.Val.Off)
			if m.Key == "rule" {
				d.seg.Rule = l.rule(m.Val)
			} else {
				d.seg.Rule = l.condition(m.Val)
			}
		default:
			l.problemf(m.Off, "unknown key %q in a segment: want name, description, priority, group, rule or condition", m.Key)
		}
		l.pop()
	}
	if v.Member("name") == nil {
		l.problemf(v.Off, `a segment needs a "name"`)
	}
	if ruleKey == nil {
		l.problemf(v.Off, `a segment needs a "rule" or a "condition"`)
	}
	l.defs = append(l.defs, d)
}

// integer reads an integer.
func (l *loader) integer(v *condJSON) (int, bool) {
	if v.Kind != condNum || v.Num != math.Trunc(v.Num) || math.Abs(v.Num) > 1<<53 {
		l.problemf(v.Off, "want an integer, not %s", describe(v))
		return 0, false
	}
	return int(v.Num), true
}

// describe names the kind of v, and its value if it is a scalar.
func describe(v *condJSON) string {
	switch v.Kind {
	case condNum, condStr, condBool:
		return v.Kind.String() + " " + condText(v)
	}
	return v.Kind.String()
}

// rule builds a rule object: {"name": arguments}.
func (l *loader) rule(v *condJSON) Rule {
	if v.Kind != condObj || len(v.Members) != 1 {
		l.problemf(v.Off, `a rule is an object with one key, a built-in or a plugin, whose value holds its arguments, such as {"pageVisited": {"path": "/pricing"}}; not %s`, describeRule(v))
		return nil
	}
	m := v.Members[0]
	l.push(m.Key)
	defer l.pop()
	if m.Key == "condition" {
		return l.condition(m.Val)
	}
	if b, ok := builtins[m.Key]; ok {
		return b(l, m.Val)
	}
	if f, ok := l.reg.Lookup(m.Key); ok {
		if l.used == nil {
			l.used = map[string]bool{}
		}
		l.used[m.Key] = true
		return l.plugin(m.Key, f, m.Val)
	}
	plugins := "no plugin is registered"
	if names := l.reg.Names(); len(names) > 0 {
		plugins = "the plugins are " + strings.Join(names, ", ")
	}
	l.problemf(m.Off, "unknown rule %q: not a built-in (%s) nor a registered plugin (%s)", m.Key, strings.Join(builtinNames(), ", "), plugins)
	return nil
}

func describeRule(v *condJSON) string {
	if v.Kind == condObj {
		return fmt.Sprintf("an object with %d keys", len(v.Members))
	}
	return v.Kind.String()
}

// rules builds a list of rules, for "and" and "or".
func (l *loader) rules(name string, v *condJSON) []Rule {
	if v.Kind != condArr {
		l.problemf(v.Off, "%s needs a list of rules, not %v", name, v.Kind)
		return nil
	}
	out := make([]Rule, len(v.Elems))
	for i, e := range v.Elems {
		l.push(strconv.Itoa(i))
		out[i] = l.rule(e)
		l.pop()
	}
	return out
}

// condition compiles a condition of the file, checking its paths against
// the document.
func (l *loader) condition(v *condJSON) Rule {
	l.c.checkPath = l.checkDocPath
	c := l.c.condition(v)
	l.c.checkPath = nil
	return &condRule{c}
}

// checkDocPath reports a condition's path that the document cannot have.
func (l *loader) checkDocPath(path string, off int) {
	first, rest, more := strings.Cut(path, ".")
	if docSlot(first) < 0 {
		l.problemf(off, "unknown attribute %q: the document has %s", first, strings.Join(slotNames[:], ", "))
		return
	}
	if first == "request" && more {
		name, _, _ := strings.Cut(rest, ".")
		if factField(name) == 0 {
			l.problemf(off, "unknown request fact %q: the request has %s", name, strings.Join(factNames[:], ", "))
		}
	}
}

// plugin makes a plugin's rule.
func (l *loader) plugin(name string, f Factory, v *condJSON) (r Rule) {
	args := json.RawMessage(slices.Clone(l.c.src[v.Off:v.End]))
	defer func() {
		if p := recover(); p != nil {
			l.problemf(v.Off, "plugin %q panicked: %v", name, p)
			r = nil
		}
	}()
	r, err := f(args)
	if err != nil {
		l.pluginError(name, v, err)
		return nil
	}
	if r == nil {
		l.problemf(v.Off, "plugin %q made no rule", name)
	}
	return r
}

// pluginError reports err at the field it names, if it is a
// json.UnmarshalTypeError.
func (l *loader) pluginError(name string, v *condJSON, err error) {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		at, depth := v, 0
		for _, k := range strings.Split(te.Field, ".") {
			next := (*condJSON)(nil)
			switch at.Kind {
			case condObj:
				for i := range at.Members {
					if strings.EqualFold(at.Members[i].Key, k) {
						next = at.Members[i].Val
						l.push(at.Members[i].Key)
						break
					}
				}
			case condArr:
				if i, err := strconv.Atoi(k); err == nil && i >= 0 && i < len(at.Elems) {
					next = at.Elems[i]
					l.push(k)
				}
			}
			if next == nil {
				break
			}
			at = next
			depth++
		}
		l.problemf(at.Off, "plugin %q: %v", name, err)
		for range depth {
			l.pop()
		}
		return
	}
	l.problemf(v.Off, "plugin %q: %v", name, err)
}

// A builder makes a built-in rule from its arguments in a file.
type builder func(l *loader, v *condJSON) Rule

var builtins map[string]builder

func init() {
	builtins = map[string]builder{
		"and": func(l *loader, v *condJSON) Rule {
			return And(l.rules("and", v)...)
		},
		"or": func(l *loader, v *condJSON) Rule {
			return Or(l.rules("or", v)...)
		},
		"not": func(l *loader, v *condJSON) Rule {
			return Not(l.rule(v))
		},
		"inSegment": func(l *loader, v *condJSON) Rule {
			if v.Kind != condStr || v.Str == "" {
				l.problemf(v.Off, "inSegment needs the name of a segment, not %s", describe(v))
				return nil
			}
			return inSegment(v.Str, l.pos(v.Off))
		},
		"purchased":     parsePurchased,
		"visits":        parseVisits,
		"categoryViews": parseCategoryViews,
		"pageVisited":   parsePageVisited,
		"eventCount":    parseEventCount,
		"recency":       parseRecency,
		"lifecycle":     parseLifecycle,
		"rfm":           parseRFM,
		"email":         parseEmail,
		"interest":      parseInterest,
		"trait":         parseTrait,
		"context":       parseContext,
		"channel":       parseChannel,
		"seasonal":      parseSeasonal,
		"dueToBuy":      parseDueToBuy,
	}
}

// builtinNames returns the names of the built-in rules, sorted.
func builtinNames() []string {
	names := []string{"condition"}
	for n := range builtins {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// args reads the arguments of a built-in rule.
type args struct {
	l    *loader
	v    *condJSON
	rule string
	ok   bool
}

// args checks that v is an object of arguments of rule, with keys among
// keys.
func (l *loader) args(rule string, v *condJSON, keys ...string) *args {
	a := &args{l: l, v: v, rule: rule, ok: true}
	if v.Kind != condObj {
		l.problemf(v.Off, "%s needs an object of arguments (%s), not %v", rule, strings.Join(keys, ", "), v.Kind)
		a.ok = false
		a.v = &condJSON{Kind: condObj, Off: v.Off}
		return a
	}
	for _, m := range v.Members {
		if !slices.Contains(keys, m.Key) {
			l.push(m.Key)
			l.problemf(m.Off, "unknown argument %q of %s: want %s", m.Key, rule, strings.Join(keys, ", "))
			l.pop()
			a.ok = false
		}
	}
	return a
}

func (a *args) get(key string) *condJSON { return a.v.Member(key) }

func (a *args) has(key string) bool { return a.get(key) != nil }

// bad reports a problem with the argument key, whose value is v.
func (a *args) bad(key string, v *condJSON, format string, args ...any) {
	a.l.push(key)
	a.l.problemf(v.Off, format, args...)
	a.l.pop()
	a.ok = false
}

// fail reports a problem with the arguments as a whole.
func (a *args) fail(format string, args ...any) {
	a.l.problemf(a.v.Off, format, args...)
	a.ok = false
}

// require reports a problem if key is missing.
func (a *args) require(key string) bool {
	if !a.has(key) {
		a.fail("%s needs %q", a.rule, key)
		return false
	}
	return true
}

// str returns the string key, "" if missing.
func (a *args) str(key string) string {
	v := a.get(key)
	if v == nil {
		return ""
	}
	if v.Kind != condStr {
		a.bad(key, v, "%s needs a string, not %s", key, describe(v))
		return ""
	}
	return v.Str
}

// oneOf returns the string key, which must be one of choices, or def if it
// is missing.
func (a *args) oneOf(key, def string, choices ...string) string {
	v := a.get(key)
	if v == nil {
		return def
	}
	if v.Kind != condStr || !slices.Contains(choices, v.Str) {
		a.bad(key, v, "%s is one of %s, not %s", key, strings.Join(choices, ", "), describe(v))
		return def
	}
	return v.Str
}

// int returns the integer key, at least min, or def if it is missing.
func (a *args) int(key string, def, min int) int {
	v := a.get(key)
	if v == nil {
		return def
	}
	if v.Kind != condNum || v.Num != math.Trunc(v.Num) || math.Abs(v.Num) > 1<<53 {
		a.bad(key, v, "%s needs an integer, not %s", key, describe(v))
		return def
	}
	if v.Num < float64(min) {
		a.bad(key, v, "%s must be at least %d, not %s", key, min, condText(v))
		return def
	}
	return int(v.Num)
}

// float returns the number key, at least min, or def if it is missing.
func (a *args) float(key string, def, min float64) float64 {
	v := a.get(key)
	if v == nil {
		return def
	}
	if v.Kind != condNum || math.IsInf(v.Num, 0) {
		a.bad(key, v, "%s needs a number, not %s", key, describe(v))
		return def
	}
	if v.Num < min {
		a.bad(key, v, "%s must be at least %s, not %s", key, formatFloat(min), condText(v))
		return def
	}
	return v.Num
}

// dur returns the duration key, 0 if it is missing.
func (a *args) dur(key string) time.Duration {
	v := a.get(key)
	if v == nil {
		return 0
	}
	if v.Kind != condStr {
		a.bad(key, v, `%s needs a duration such as "72h" or "7d", not %s`, key, describe(v))
		return 0
	}
	d, err := parseCondDuration(v.Str)
	if err != nil {
		a.bad(key, v, "%s: %v", key, err)
		return 0
	}
	return d
}

// strs returns the key, a string or a list of strings.
func (a *args) strs(key string) []string {
	v := a.get(key)
	if v == nil {
		return nil
	}
	switch v.Kind {
	case condStr:
		return []string{v.Str}
	case condArr:
		out := make([]string, 0, len(v.Elems))
		for i, e := range v.Elems {
			if e.Kind != condStr {
				a.l.push(key)
				a.bad(strconv.Itoa(i), e, "%s holds strings, not %s", key, describe(e))
				a.l.pop()
				continue
			}
			out = append(out, e.Str)
		}
		if len(v.Elems) == 0 {
			a.bad(key, v, "%s is empty", key)
		}
		return out
	}
	a.bad(key, v, "%s needs a string or a list of strings, not %s", key, describe(v))
	return nil
}

// boolean returns the boolean key, def if it is missing.
func (a *args) boolean(key string, def bool) bool {
	v := a.get(key)
	if v == nil {
		return def
	}
	if v.Kind != condBool {
		a.bad(key, v, "%s needs true or false, not %s", key, describe(v))
		return def
	}
	return v.Bool
}

// done returns r if the arguments had no problem, checking what its
// constructor checked.
func (a *args) done(r Rule) Rule {
	if !a.ok {
		return nil
	}
	if c, ok := r.(checker); ok {
		if err := c.check(); err != nil {
			a.fail("%v", err)
			return nil
		}
	}
	return r
}
