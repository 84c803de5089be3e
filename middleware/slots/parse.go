package slots

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/tailorhq/tailor/internal/jsonpos"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/rules/experiment"
)

// maxDepth bounds how deeply a slots file nests arrays and objects.
const maxDepth = 100

// A ParseOption configures Parse.
type ParseOption func(*parseConfig)

type parseConfig struct {
	file     string
	segments map[string]bool
	groups   map[string][]any
}

// Filename names the file being parsed, for the problems Parse reports and
// for Set.Source.
func Filename(name string) ParseOption {
	return func(c *parseConfig) { c.file = name }
}

// Segments makes Parse report the segment names that are not among
// names (the segments of the site's engine, say): a misspelt segment
// would otherwise match no one.
func Segments(names ...string) ParseOption {
	return func(c *parseConfig) {
		if c.segments == nil {
			c.segments = make(map[string]bool, len(names))
		}
		for _, n := range names {
			c.segments[n] = true
		}
	}
}

// EngineSegments is Segments with the segments of e as they are each time
// a file is parsed, so that a slots file reloaded later (Engine.Reload,
// Engine.Watch) may name a segment that a reload of the segments file added.
func EngineSegments(e *rules.Engine) ParseOption {
	return func(c *parseConfig) {
		segs := e.Segments()
		names := make([]string, len(segs))
		for i, s := range segs {
			names[i] = s.Name
		}
		Segments(names...)(c)
	}
}

// SavedGroups gives the saved groups of the variants' conditions (see
// rules.WithSavedGroups).
func SavedGroups(groups map[string][]any) ParseOption {
	return func(c *parseConfig) { c.groups = groups }
}

// ParseFile reads and parses the slots file at path.
func ParseFile(path string, opts ...ParseOption) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("slots: %w", err)
	}
	return Parse(data, append(opts, Filename(path))...)
}

// Parse parses a slots file: a JSON object whose "slots" member is the
// list of slots, or just the list.
//
//	{"slots": [{
//	  "name": "hero",
//	  "variants": [
//	    {"key": "thank-you", "segment": "customer", "priority": 30,
//	     "fields": {"title": "Thank you for your order", "link": "/orders"}},
//	    {"key": "red-sox", "segments": ["red-sox-fan"], "priority": 20,
//	     "fields": {"title": "Go Sox!"}, "template": "hero-sox"},
//	    {"key": "welcome-back", "segment": "returning", "priority": 10,
//	     "condition": {"visits": {"$gte": 3}}, "fields": {"title": "Welcome back"}},
//	    {"key": "welcome-back-2", "fields": {"title": "Good to see you again"}}
//	  ],
//	  "default": {"key": "welcome", "fields": {"title": "Welcome"}},
//	  "experiment": {
//	    "key": "hero-returning", "segment": "returning",
//	    "variants": [{"key": "welcome-back", "weight": 1}, {"key": "welcome-back-2", "weight": 1}],
//	    "coverage": 1, "holdout": 0.1, "goals": ["purchase"],
//	    "breakdown": ["red-sox-fan"], "bandit": {"floor": 0.05}
//	  }
//	}]}
//
// A slot has a unique "name", "variants" and a "default" (an object with
// "key", default "default", "fields" and "template"). A variant has a
// unique "key", "segment" (one name) or "segments" (any of several),
// an optional "condition" over the visitor's document (see
// rules.Condition) that must hold too, a "priority" (an integer, default
// 0: higher first), "fields" (a JSON object) and "template". The
// "experiment" has the fields of experiment.Experiment (JSON names),
// whose variant keys are keys of the slot's variants, and "breakdown"
// and "bandit" (see Experiment; "bandit" holds "floor", "draws" and
// "seed").
//
// Parse reports every problem it finds, as rules.ConditionErrors, each
// with the file (see Filename), line, column and JSON Pointer of the
// problem, such as
//
//	slots.json:7:38: /slots/0/variants/1/priority: want an integer, not a string
func Parse(data []byte, opts ...ParseOption) (*Set, error) {
	var cfg parseConfig
	for _, o := range opts {
		o(&cfg)
	}
	p := &parser{src: data, cfg: &cfg}
	root := p.tree()
	if root == nil {
		return nil, p.errs
	}
	slots := p.file(root)
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *rules.ConditionError) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		return nil, p.errs
	}
	s, err := NewSet(slots...)
	if err != nil {
		// The parser checks what NewSet checks, but in case it did not:
		p.problem(root.Off, "", "%v", err)
		return nil, p.errs
	}
	s.source = cfg.file
	return s, nil
}

// A node is a JSON value and where it is.
type (
	node   = jsonpos.Value
	member = jsonpos.Member
)

// kindName names n's type in problems.
func kindName(n *node) string {
	if n.Kind == jsonpos.Array {
		return "a list"
	}
	return n.Kind.String()
}

type parser struct {
	src  []byte
	cfg  *parseConfig
	errs rules.ConditionErrors
	ptr  jsonpos.Pointer
}

// problem reports a problem at the byte offset off, at the JSON pointer of
// ptr followed by tok (if any).
func (p *parser) problem(off int, tok, format string, args ...any) {
	p.problemAt(off, p.pointer(tok), fmt.Sprintf(format, args...))
}

func (p *parser) problemAt(off int, ptr, msg string) {
	line, col := jsonpos.Position(p.src, off)
	p.errs = append(p.errs, &rules.ConditionError{File: p.cfg.file, Line: line, Column: col, Path: ptr, Msg: msg})
}

func (p *parser) push(tok string) { p.ptr.Push(tok) }
func (p *parser) pop()            { p.ptr.Pop() }

// pointer returns the JSON Pointer of ptr, followed by tok if any.
func (p *parser) pointer(tok string) string {
	if tok == "" {
		return p.ptr.String()
	}
	return p.ptr.String() + "/" + jsonpos.Escape(tok)
}

// tree parses the whole of p.src, or reports why it cannot.
func (p *parser) tree() *node {
	root, errs := jsonpos.Parse(p.src, maxDepth)
	for _, e := range errs {
		p.problemAt(e.Off, e.Pointer, e.Msg)
	}
	return root
}

// text returns the source of n.
func (p *parser) text(n *node) string { return string(p.src[n.Off:n.End]) }

// file reads the slots of the file.
func (p *parser) file(root *node) []Slot {
	list := root
	if root.Kind == jsonpos.Object {
		list = nil
		for _, m := range root.Members {
			if m.Key == "slots" {
				list = m.Val
			} else {
				p.problem(m.Off, m.Key, `unknown key %q: want "slots"`, m.Key)
			}
		}
		if list == nil {
			p.problem(root.Off, "", `a slots file needs "slots", the list of slots`)
			return nil
		}
		p.push("slots")
		defer p.pop()
	}
	if list.Kind != jsonpos.Array {
		p.problem(list.Off, "", "the slots are a list, not %s", kindName(list))
		return nil
	}
	var out []Slot
	names := map[string]bool{}
	exps := map[string]bool{}
	for i, n := range list.Elems {
		p.push(strconv.Itoa(i))
		sl, ok := p.slot(n)
		if ok {
			if names[sl.Name] {
				p.problem(n.Off, "name", "duplicate slot name %q", sl.Name)
			}
			names[sl.Name] = true
			if e := sl.Experiment; e != nil {
				if exps[e.Key] {
					p.problem(n.Off, "experiment", "duplicate experiment key %q", e.Key)
				}
				exps[e.Key] = true
			}
			out = append(out, sl)
		}
		p.pop()
	}
	return out
}

// object checks that n is an object and calls f for each member, with the
// pointer pushed; unknown keys are problems.
func (p *parser) object(n *node, what string, f func(m member) bool) bool {
	if n.Kind != jsonpos.Object {
		p.problem(n.Off, "", "%s is an object, not %s", what, kindName(n))
		return false
	}
	ok := true
	for _, m := range n.Members {
		p.push(m.Key)
		if !f(m) {
			p.problem(m.Off, "", "unknown key %q in %s", m.Key, what)
			ok = false
		}
		p.pop()
	}
	return ok
}

func (p *parser) str(n *node, what string) (string, bool) {
	if n.Kind != jsonpos.String {
		p.problem(n.Off, "", "%s is a string, not %s", what, kindName(n))
		return "", false
	}
	return n.Str, true
}

func (p *parser) integer(n *node, what string) (int, bool) {
	if n.Kind == jsonpos.Number {
		if i, err := strconv.ParseInt(p.text(n), 10, 32); err == nil {
			return int(i), true
		}
	}
	p.problem(n.Off, "", "%s is an integer, not %s", what, p.describe(n))
	return 0, false
}

func (p *parser) float(n *node, what string) (float64, bool) {
	if n.Kind == jsonpos.Number {
		if !math.IsInf(n.Num, 0) {
			return n.Num, true
		}
	}
	p.problem(n.Off, "", "%s is a number, not %s", what, p.describe(n))
	return 0, false
}

func (p *parser) describe(n *node) string {
	if n.Kind == jsonpos.Number {
		return p.text(n)
	}
	return kindName(n)
}

func (p *parser) strings(n *node, what string) ([]string, bool) {
	if n.Kind != jsonpos.Array {
		p.problem(n.Off, "", "%s is a list of strings, not %s", what, kindName(n))
		return nil, false
	}
	out := make([]string, 0, len(n.Elems))
	ok := true
	for i, e := range n.Elems {
		p.push(strconv.Itoa(i))
		s, good := p.str(e, what+" element")
		if good && s == "" {
			p.problem(e.Off, "", "empty segment name")
			good = false
		}
		ok = ok && good
		out = append(out, s)
		p.pop()
	}
	return out, ok
}

// segment checks a segment name against the Segments option.
func (p *parser) segment(n *node, name string) {
	if p.cfg.segments != nil && name != "" && !p.cfg.segments[name] {
		p.problem(n.Off, "", "unknown segment %q", name)
	}
}

func (p *parser) slot(n *node) (Slot, bool) {
	var sl Slot
	var expNode *node
	selectiveKeys := map[string]bool{} // variants with segments or a condition, even bad ones
	hasDefault, hasName := false, false
	ok := p.object(n, "a slot", func(m member) bool {
		switch m.Key {
		case "name":
			sl.Name, hasName = p.str(m.Val, "the name")
			if hasName && sl.Name == "" {
				p.problem(m.Val.Off, "", "empty slot name")
			}
		case "variants":
			if m.Val.Kind != jsonpos.Array {
				p.problem(m.Val.Off, "", "the variants are a list, not %s", kindName(m.Val))
				return true
			}
			keys := map[string]bool{}
			for i, e := range m.Val.Elems {
				p.push(strconv.Itoa(i))
				va, selective := p.variant(e, false)
				if selective {
					selectiveKeys[va.Key] = true
				}
				if va.Key != "" {
					if keys[va.Key] {
						p.problem(e.Off, "key", "duplicate variant key %q", va.Key)
					}
					keys[va.Key] = true
				}
				sl.Variants = append(sl.Variants, va)
				p.pop()
			}
		case "default":
			hasDefault = true
			sl.Default, _ = p.variant(m.Val, true)
		case "experiment":
			expNode = m.Val
		default:
			return false
		}
		return true
	})
	if !ok && n.Kind != jsonpos.Object {
		return sl, false
	}
	if !hasName {
		p.problem(n.Off, "", `a slot needs a "name"`)
	}
	if !hasDefault {
		p.problem(n.Off, "", `slot %q needs a "default" variant`, sl.Name)
	}
	defKey := cmpOr(sl.Default.Key, DefaultKey)
	keys := map[string]bool{defKey: true}
	for i, va := range sl.Variants {
		if va.Key == defKey {
			p.push("variants")
			p.push(strconv.Itoa(i))
			p.problem(n.Off, "key", "variant key %q is the default's", va.Key)
			p.pop()
			p.pop()
		}
		keys[va.Key] = true
	}
	if expNode != nil {
		p.push("experiment")
		sl.Experiment = p.experiment(expNode, keys)
		p.pop()
	}
	inExp := func(key string) bool {
		if sl.Experiment == nil {
			return false
		}
		for _, v := range sl.Experiment.Variants {
			if v.Key == key {
				return true
			}
		}
		return false
	}
	if n.Kind == jsonpos.Object {
		for _, m := range n.Members {
			if m.Key != "variants" || m.Val.Kind != jsonpos.Array {
				continue
			}
			for i, va := range sl.Variants {
				if va.Key != "" && !selectiveKeys[va.Key] && !inExp(va.Key) {
					p.push("variants")
					p.push(strconv.Itoa(i))
					p.problem(m.Val.Elems[i].Off, "",
						"variant %q has neither segments nor condition, and is not in the slot's experiment: it is never shown", va.Key)
					p.pop()
					p.pop()
				}
			}
		}
	}
	return sl, true
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// variant reads a variant, and whether it has segments or a condition.
func (p *parser) variant(n *node, isDefault bool) (va Variant, selective bool) {
	what := "a variant"
	if isDefault {
		what = "the default variant"
	}
	hasKey := false
	p.object(n, what, func(m member) bool {
		switch m.Key {
		case "key":
			va.Key, hasKey = p.str(m.Val, "the key")
			if hasKey && va.Key == "" {
				p.problem(m.Val.Off, "", "empty variant key")
			} else if va.Key == experiment.HoldoutVariant {
				p.problem(m.Val.Off, "", "%q is reserved for the experiment's holdout", va.Key)
			}
		case "fields":
			if m.Val.Kind != jsonpos.Object {
				p.problem(m.Val.Off, "", "the fields are an object, not %s", kindName(m.Val))
				return true
			}
			if err := json.Unmarshal(p.src[m.Val.Off:m.Val.End], &va.Fields); err != nil {
				p.problem(m.Val.Off, "", "%v", err)
			}
		case "template":
			va.Template, _ = p.str(m.Val, "the template")
		case "priority", "segment", "segments", "condition":
			selective = selective || m.Key != "priority"
			if isDefault {
				p.problem(m.Off, "", "the default variant has no %s: it is shown when no variant matches", m.Key)
				return true
			}
			switch m.Key {
			case "priority":
				va.Priority, _ = p.integer(m.Val, "the priority")
			case "segment":
				if s, ok := p.str(m.Val, "the segment"); ok {
					if s == "" {
						p.problem(m.Val.Off, "", "empty segment name")
					}
					p.segment(m.Val, s)
					va.Segments = append(va.Segments, s)
				}
			case "segments":
				ss, _ := p.strings(m.Val, "the segments")
				for i, s := range ss {
					p.push(strconv.Itoa(i))
					p.segment(m.Val.Elems[i], s)
					p.pop()
				}
				va.Segments = append(va.Segments, ss...)
			case "condition":
				va.Condition = p.condition(m.Val)
			}
		default:
			return false
		}
		return true
	})
	if !hasKey && !isDefault && n.Kind == jsonpos.Object {
		p.problem(n.Off, "", `a variant needs a "key"`)
	}
	if isDefault && va.Key == "" {
		va.Key = DefaultKey
	}
	return va, selective
}

// condition compiles a variant's condition, its problems reported at their
// place in the file.
func (p *parser) condition(n *node) *rules.Condition {
	line, col := jsonpos.Position(p.src, n.Off)
	opts := []rules.ConditionOption{rules.WithSource(p.cfg.file, line, col)}
	if p.cfg.groups != nil {
		opts = append(opts, rules.WithSavedGroups(p.cfg.groups))
	}
	c, err := rules.CompileCondition(p.src[n.Off:n.End], opts...)
	if err == nil {
		return c
	}
	var ce rules.ConditionErrors
	if errors.As(err, &ce) {
		base := p.pointer("")
		for _, e := range ce {
			e2 := *e
			e2.Path = base + e.Path
			p.errs = append(p.errs, &e2)
		}
	} else {
		p.problem(n.Off, "", "%v", err)
	}
	return nil
}

func (p *parser) experiment(n *node, slotKeys map[string]bool) *Experiment {
	e := &Experiment{}
	var variantsNode *node
	fields := map[string]*node{}
	ok := p.object(n, "the experiment", func(m member) bool {
		fields[m.Key] = m.Val
		switch m.Key {
		case "key":
			e.Key, _ = p.str(m.Val, "the key")
		case "variants":
			variantsNode = m.Val
			if m.Val.Kind != jsonpos.Array {
				p.problem(m.Val.Off, "", "the variants are a list, not %s", kindName(m.Val))
				return true
			}
			for i, vn := range m.Val.Elems {
				p.push(strconv.Itoa(i))
				var v experiment.Variant
				hasWeight := false
				p.object(vn, "an experiment variant", func(m member) bool {
					switch m.Key {
					case "key":
						v.Key, _ = p.str(m.Val, "the key")
						if v.Key != "" && !slotKeys[v.Key] {
							p.problem(m.Val.Off, "", "%q is not a variant of the slot", v.Key)
						}
					case "weight":
						v.Weight, hasWeight = p.float(m.Val, "the weight")
					default:
						return false
					}
					return true
				})
				if !hasWeight && vn.Kind == jsonpos.Object {
					p.problem(vn.Off, "", `an experiment variant needs a "weight"`)
				}
				e.Variants = append(e.Variants, v)
				p.pop()
			}
		case "coverage":
			e.Coverage, _ = p.float(m.Val, "the coverage")
		case "holdout":
			e.Holdout, _ = p.float(m.Val, "the holdout")
		case "salt":
			e.Salt, _ = p.str(m.Val, "the salt")
		case "segment":
			if s, ok := p.str(m.Val, "the segment"); ok {
				p.segment(m.Val, s)
				e.Segment = s
			}
		case "goals":
			e.Goals, _ = p.strings(m.Val, "the goals")
		case "breakdown":
			e.Breakdown, _ = p.strings(m.Val, "the breakdown")
			for i, s := range e.Breakdown {
				p.push(strconv.Itoa(i))
				p.segment(m.Val.Elems[i], s)
				p.pop()
			}
		case "bandit":
			e.Bandit = &experiment.BanditConfig{}
			p.object(m.Val, "the bandit", func(m member) bool {
				switch m.Key {
				case "floor":
					e.Bandit.Floor, _ = p.float(m.Val, "the floor")
				case "draws":
					e.Bandit.Draws, _ = p.integer(m.Val, "draws")
				case "seed":
					if m.Val.Kind == jsonpos.Number {
						s, err := strconv.ParseUint(p.text(m.Val), 10, 64)
						if err == nil {
							e.Bandit.Seed = s
							return true
						}
					}
					p.problem(m.Val.Off, "", "the seed is an unsigned integer, not %s", p.describe(m.Val))
				default:
					return false
				}
				return true
			})
		default:
			return false
		}
		return true
	})
	if !ok && n.Kind != jsonpos.Object {
		return nil
	}
	if fields["key"] == nil {
		p.problem(n.Off, "", `an experiment needs a "key"`)
	}
	if variantsNode == nil {
		p.problem(n.Off, "", `an experiment needs "variants"`)
	}
	// The experiment's own checks, at their fields.
	if err := e.Validate(); err != nil {
		var ve experiment.ValidationErrors
		if errors.As(err, &ve) {
			for _, v := range ve {
				at, toks := locate(n, v.Field)
				for _, t := range toks {
					p.push(t)
				}
				off := n.Off
				if at != nil {
					off = at.Off
				}
				if !p.reported(off) {
					p.problem(off, "", "%s", v.Msg)
				}
				p.ptr = p.ptr[:len(p.ptr)-len(toks)]
			}
		}
	}
	if e.Bandit != nil && len(p.errs) == 0 {
		if _, err := experiment.NewBandit(&e.Experiment, *e.Bandit); err != nil {
			p.problem(fields["bandit"].Off, "bandit", "%v", err)
		}
	}
	return e
}

// reported reports whether a problem was already reported at the offset.
func (p *parser) reported(off int) bool {
	line, col := jsonpos.Position(p.src, off)
	for _, e := range p.errs {
		if e.Line == line && e.Column == col && e.File == p.cfg.file {
			return true
		}
	}
	return false
}

// locate finds the node of a field path such as "variants[2].weight" in
// the experiment object n (the deepest that is in the file), and the
// path's JSON Pointer tokens.
func locate(n *node, field string) (*node, []string) {
	var toks []string
	for part := range strings.SplitSeq(field, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name != "" {
			toks = append(toks, name)
		}
		for rest != "" {
			idx, after, _ := strings.Cut(rest, "]")
			toks = append(toks, idx)
			rest = strings.TrimPrefix(after, "[")
		}
	}
	at := n
	for _, t := range toks {
		var next *node
		switch at.Kind {
		case jsonpos.Object:
			next = at.Member(t)
		case jsonpos.Array:
			if i, err := strconv.Atoi(t); err == nil && i >= 0 && i < len(at.Elems) {
				next = at.Elems[i]
			}
		}
		if next == nil {
			break
		}
		at = next
	}
	return at, toks
}
