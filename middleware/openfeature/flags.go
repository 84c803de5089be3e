package openfeature

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/tailorhq/tailor/internal/jsonpos"
	"github.com/tailorhq/tailor/rules"
)

// maxDepth bounds how deeply a flags file nests arrays and objects.
const maxDepth = 100

// SegmentPrefix starts the key of a segment's flag: "segment.loyal" is true
// for the visitors in the segment "loyal". Keys of a flags file may not start
// with it.
const SegmentPrefix = "segment."

// A Type is the type of a flag's values, as a flags file names it.
type Type string

// The types of flags.
const (
	Boolean Type = "boolean"
	String  Type = "string"
	Integer Type = "integer" // int64
	Float   Type = "float"   // float64
	Object  Type = "object"  // any JSON value, decoded by encoding/json
)

// A Flag maps segments to values: the value of the first rule whose segments
// the visitor is in (any of them), else Default.
type Flag struct {
	Key     string
	Type    Type
	Default any
	Rules   []FlagRule
}

// A FlagRule gives Value to the visitors in any of Segments. Variant names
// the rule in evaluation details; it defaults to the segment that matched.
type FlagRule struct {
	Segments []string
	Value    any
	Variant  string
}

// Flags is a parsed flags file. It is immutable and safe for concurrent use.
type Flags struct {
	flags  map[string]*Flag
	keys   []string
	source string
}

// Flag returns the flag of key, and whether it exists. The Flag must not be
// modified.
func (f *Flags) Flag(key string) (*Flag, bool) {
	if f == nil {
		return nil, false
	}
	fl, ok := f.flags[key]
	return fl, ok
}

// Keys returns the flags' keys, in the order of the file.
func (f *Flags) Keys() []string {
	if f == nil {
		return nil
	}
	return slices.Clone(f.keys)
}

// Source returns the file name given to ParseFlags with Filename, or "".
func (f *Flags) Source() string {
	if f == nil {
		return ""
	}
	return f.source
}

// A ParseOption configures ParseFlags.
type ParseOption func(*parseConfig)

type parseConfig struct {
	file     string
	segments map[string]bool
}

// Filename names the file being parsed, for the problems ParseFlags reports.
func Filename(name string) ParseOption {
	return func(c *parseConfig) { c.file = name }
}

// Segments makes ParseFlags report the segment names that are not among
// names (the segments of the site's engine): a misspelt segment would
// otherwise match no one.
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

// ParseFlagsFile reads and parses the flags file at path.
func ParseFlagsFile(path string, opts ...ParseOption) (*Flags, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("openfeature: %w", err)
	}
	return ParseFlags(data, append(opts, Filename(path))...)
}

// ParseFlags parses a flags file: a JSON object whose "flags" member maps
// each flag's key to its definition.
//
//	{"flags": {
//	  "new-checkout": {"type": "boolean", "default": false,
//	    "rules": [{"segments": ["loyal", "repeat"], "value": true, "variant": "on"}]},
//	  "shipping-threshold": {"type": "float", "default": 50,
//	    "rules": [{"segment": "loyal", "value": 0}]},
//	  "banner": {"type": "string", "default": "none",
//	    "rules": [{"segment": "red-sox-fan", "value": "sox"}]}
//	}}
//
// A flag has a "type" (boolean, string, integer, float or object), a "default"
// of that type, and "rules" in priority order: the first whose "segment" (one
// name) or "segments" (any of several) the visitor is in gives its "value"
// and "variant" (default: the segment that matched). Keys may not start with
// SegmentPrefix, which names the segments' own flags.
//
// ParseFlags reports every problem it finds, as rules.ConditionErrors, each
// with the file (see Filename), line, column and JSON Pointer of the problem,
// such as
//
//	flags.json:4:46: /flags/banner/rules/0/value: the value of a string flag is a string, not a number
func ParseFlags(data []byte, opts ...ParseOption) (*Flags, error) {
	var cfg parseConfig
	for _, o := range opts {
		o(&cfg)
	}
	p := &parser{src: data, cfg: &cfg}
	root, errs := jsonpos.Parse(data, maxDepth)
	for _, e := range errs {
		p.problemAt(e.Off, e.Pointer, e.Msg)
	}
	if root == nil {
		return nil, p.errs
	}
	fs := p.file(root)
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *rules.ConditionError) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		return nil, p.errs
	}
	fs.source = cfg.file
	return fs, nil
}

type node = jsonpos.Value

type parser struct {
	src  []byte
	cfg  *parseConfig
	errs rules.ConditionErrors
	ptr  jsonpos.Pointer
}

func (p *parser) problem(off int, format string, args ...any) {
	p.problemAt(off, p.ptr.String(), fmt.Sprintf(format, args...))
}

func (p *parser) problemAt(off int, ptr, msg string) {
	line, col := jsonpos.Position(p.src, off)
	p.errs = append(p.errs, &rules.ConditionError{File: p.cfg.file, Line: line, Column: col, Path: ptr, Msg: msg})
}

func kindName(n *node) string {
	if n.Kind == jsonpos.Array {
		return "a list"
	}
	return n.Kind.String()
}

// object checks that n is an object and calls f for each member, with the
// pointer pushed; f returns false for an unknown key.
func (p *parser) object(n *node, what string, f func(key string, v *node) bool) bool {
	if n.Kind != jsonpos.Object {
		p.problem(n.Off, "%s is an object, not %s", what, kindName(n))
		return false
	}
	for _, m := range n.Members {
		p.ptr.Push(m.Key)
		if !f(m.Key, m.Val) {
			p.problem(m.Off, "unknown key %q in %s", m.Key, what)
		}
		p.ptr.Pop()
	}
	return true
}

func (p *parser) file(root *node) *Flags {
	fs := &Flags{flags: map[string]*Flag{}}
	var list *node
	p.object(root, "a flags file", func(key string, v *node) bool {
		if key != "flags" {
			return false
		}
		list = v
		return true
	})
	if root.Kind != jsonpos.Object {
		return fs
	}
	if list == nil {
		p.problem(root.Off, `a flags file needs "flags", an object of flags by key`)
		return fs
	}
	p.ptr.Push("flags")
	defer p.ptr.Pop()
	p.object(list, `"flags"`, func(key string, v *node) bool {
		if fl := p.flag(key, v); fl != nil {
			fs.flags[key] = fl
			fs.keys = append(fs.keys, key)
		}
		return true
	})
	return fs
}

func (p *parser) flag(key string, n *node) *Flag {
	start := len(p.errs)
	switch {
	case key == "":
		p.problem(n.Off, "a flag's key is not empty")
	case strings.HasPrefix(key, SegmentPrefix):
		p.problem(n.Off, "flag %q: keys starting with %q are the segments' own flags", key, SegmentPrefix)
	}
	fl := &Flag{Key: key}
	var def, rulesNode *node
	p.object(n, "a flag", func(k string, v *node) bool {
		switch k {
		case "type":
			if v.Kind != jsonpos.String {
				p.problem(v.Off, "the type is a string, not %s", kindName(v))
				return true
			}
			switch t := Type(v.Str); t {
			case Boolean, String, Integer, Float, Object:
				fl.Type = t
			default:
				p.problem(v.Off, "unknown type %q: want boolean, string, integer, float or object", v.Str)
			}
		case "default":
			def = v
		case "rules":
			rulesNode = v
		default:
			return false
		}
		return true
	})
	if n.Kind != jsonpos.Object {
		return nil
	}
	if fl.Type == "" {
		if !p.hasMember(n, "type") {
			p.problem(n.Off, `flag %q needs a "type"`, key)
		}
		return nil
	}
	if def == nil {
		p.problem(n.Off, `flag %q needs a "default" value`, key)
	} else {
		p.ptr.Push("default")
		fl.Default, _ = p.value(def, fl.Type, "the default")
		p.ptr.Pop()
	}
	if rulesNode != nil {
		p.ptr.Push("rules")
		fl.Rules = p.rules(rulesNode, fl.Type)
		p.ptr.Pop()
	}
	if len(p.errs) > start {
		return nil
	}
	return fl
}

func (p *parser) hasMember(n *node, key string) bool { return n.Member(key) != nil }

func (p *parser) rules(n *node, t Type) []FlagRule {
	if n.Kind != jsonpos.Array {
		p.problem(n.Off, "the rules are a list, not %s", kindName(n))
		return nil
	}
	out := make([]FlagRule, 0, len(n.Elems))
	for i, e := range n.Elems {
		p.ptr.Push(strconv.Itoa(i))
		var r FlagRule
		var val *node
		hasSegs := false
		p.object(e, "a rule", func(k string, v *node) bool {
			switch k {
			case "segment":
				if hasSegs {
					p.problem(v.Off, `a rule has "segment" or "segments", not both`)
					return true
				}
				hasSegs = true
				if s, ok := p.segment(v); ok {
					r.Segments = []string{s}
				}
			case "segments":
				if hasSegs {
					p.problem(v.Off, `a rule has "segment" or "segments", not both`)
					return true
				}
				hasSegs = true
				if v.Kind != jsonpos.Array || len(v.Elems) == 0 {
					what := kindName(v)
					if v.Kind == jsonpos.Array {
						what = "an empty list"
					}
					p.problem(v.Off, "the segments are a non-empty list of names, not %s", what)
					return true
				}
				for j, s := range v.Elems {
					p.ptr.Push(strconv.Itoa(j))
					if name, ok := p.segment(s); ok {
						r.Segments = append(r.Segments, name)
					}
					p.ptr.Pop()
				}
			case "value":
				val = v
			case "variant":
				if v.Kind != jsonpos.String || v.Str == "" {
					p.problem(v.Off, "the variant is a non-empty string, not %s", kindName(v))
					return true
				}
				r.Variant = v.Str
			default:
				return false
			}
			return true
		})
		if e.Kind == jsonpos.Object {
			if !hasSegs {
				p.problem(e.Off, `a rule needs "segment" or "segments"`)
			}
			if val == nil {
				p.problem(e.Off, `a rule needs a "value"`)
			} else {
				p.ptr.Push("value")
				r.Value, _ = p.value(val, t, "the value")
				p.ptr.Pop()
			}
		}
		out = append(out, r)
		p.ptr.Pop()
	}
	return out
}

// segment reads a segment name, checked against the Segments option.
func (p *parser) segment(n *node) (string, bool) {
	if n.Kind != jsonpos.String || n.Str == "" {
		p.problem(n.Off, "a segment is a non-empty string, not %s", kindName(n))
		return "", false
	}
	if p.cfg.segments != nil && !p.cfg.segments[n.Str] {
		p.problem(n.Off, "unknown segment %q", n.Str)
		return "", false
	}
	return n.Str, true
}

// value reads n as a value of type t.
func (p *parser) value(n *node, t Type, what string) (any, bool) {
	text := string(p.src[n.Off:n.End])
	switch t {
	case Boolean:
		if n.Kind == jsonpos.Bool {
			return n.Bool, true
		}
	case String:
		if n.Kind == jsonpos.String {
			return n.Str, true
		}
	case Integer:
		if n.Kind == jsonpos.Number {
			if i, err := strconv.ParseInt(text, 10, 64); err == nil {
				return i, true
			}
			p.problem(n.Off, "%s of an integer flag is a whole number within 64 bits, not %s", what, text)
			return nil, false
		}
	case Float:
		if n.Kind == jsonpos.Number {
			if !math.IsInf(n.Num, 0) {
				return n.Num, true
			}
			p.problem(n.Off, "%s of a float flag is a finite number, not %s", what, text)
			return nil, false
		}
	case Object:
		var v any
		if err := json.Unmarshal(p.src[n.Off:n.End], &v); err != nil {
			p.problem(n.Off, "%s: %v", what, err)
			return nil, false
		}
		return v, true
	}
	p.problem(n.Off, "%s of a %s flag is %s, not %s", what, t, article(t), kindName(n))
	return nil, false
}

func article(t Type) string {
	switch t {
	case Boolean:
		return "a boolean"
	case Integer:
		return "an integer"
	case Float:
		return "a number"
	}
	return "a string"
}
