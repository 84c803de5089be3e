package rules

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// condJSON is a parsed JSON value of a condition, with its place in the
// source.
type condJSON struct {
	kind    condKind
	b       bool
	num     float64
	str     string
	elems   []*condJSON
	members []condMember // in source order; a duplicate key keeps its first place and its last value, as JSON.parse does
	index   map[string]int
	off     int // offset of the value in the source
	end     int // offset just after the value
}

type condMember struct {
	key string
	off int // offset of the key in the source
	val *condJSON
}

type condKind uint8

const (
	condNull condKind = iota
	condBool
	condNum
	condStr
	condArr
	condObj
)

var condKindNames = [...]string{"null", "a boolean", "a number", "a string", "an array", "an object"}

func (k condKind) String() string { return condKindNames[k] }

// member returns the value of key in an object, or nil.
func (v *condJSON) member(key string) *condJSON {
	if v.index != nil {
		if i, ok := v.index[key]; ok {
			return v.members[i].val
		}
		return nil
	}
	for i := range v.members {
		if v.members[i].key == key {
			return v.members[i].val
		}
	}
	return nil
}

// isOperatorObject reports whether v is an object whose keys all start with
// "$"; the empty object is one.
func (v *condJSON) isOperatorObject() bool {
	if v.kind != condObj {
		return false
	}
	for _, m := range v.members {
		if !strings.HasPrefix(m.key, "$") {
			return false
		}
	}
	return true
}

// truthy is JavaScript's truthiness of v.
func (v *condJSON) truthy() bool {
	switch v.kind {
	case condNull:
		return false
	case condBool:
		return v.b
	case condNum:
		return v.num != 0
	case condStr:
		return v.str != ""
	}
	return true
}

// condParser parses a condition that json.Valid accepted, keeping the
// places of values and keys, and bounding the depth.
type condParser struct {
	src   []byte
	pos   int
	depth int
	limit int // the deepest nesting allowed; 0 is MaxConditionDepth
	c     *condCompiler
}

func (p *condParser) parse() (*condJSON, bool) {
	v, ok := p.value()
	if ok {
		p.space()
		if p.pos != len(p.src) {
			p.c.problem(p.pos, "", "invalid JSON: data after the condition", nil)
			return nil, false
		}
	}
	return v, ok
}

func (p *condParser) space() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *condParser) fail() (*condJSON, bool) {
	p.c.problem(p.pos, p.c.pointer(), "invalid JSON", nil)
	return nil, false
}

func (p *condParser) value() (*condJSON, bool) {
	v, ok := p.value1()
	if ok {
		v.end = p.pos
	}
	return v, ok
}

func (p *condParser) value1() (*condJSON, bool) {
	p.space()
	if p.pos >= len(p.src) {
		return p.fail()
	}
	v := &condJSON{off: p.pos}
	switch c := p.src[p.pos]; {
	case c == '{' || c == '[':
		p.depth++
		limit := p.limit
		if limit == 0 {
			limit = MaxConditionDepth
		}
		if p.depth > limit {
			err := ErrConditionTooDeep
			if limit != MaxConditionDepth {
				err = fmt.Errorf("nests deeper than %d arrays and objects", limit)
			}
			p.c.problem(p.pos, p.c.pointer(), err.Error(), err)
			return nil, false
		}
		p.pos++
		var ok bool
		if c == '{' {
			ok = p.object(v)
		} else {
			ok = p.array(v)
		}
		p.depth--
		return v, ok
	case c == '"':
		s, ok := p.string()
		v.kind, v.str = condStr, s
		return v, ok
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if strings.HasPrefix(string(p.src[p.pos:min(len(p.src), p.pos+5)]), lit) {
				p.pos += len(lit)
				switch lit {
				case "true":
					v.kind, v.b = condBool, true
				case "false":
					v.kind = condBool
				}
				return v, true
			}
		}
		return p.fail()
	default:
		start := p.pos
		for p.pos < len(p.src) && strings.IndexByte("+-0123456789.eE", p.src[p.pos]) >= 0 {
			p.pos++
		}
		f, err := strconv.ParseFloat(string(p.src[start:p.pos]), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) { // ±Inf on overflow is kept, as in JavaScript
			p.pos = start
			return p.fail()
		}
		v.kind, v.num = condNum, f
		return v, true
	}
}

func (p *condParser) string() (string, bool) {
	start := p.pos
	p.pos++ // the opening quote
	esc := false
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case '\\':
			esc = true
			p.pos += 2
			continue
		case '"':
			p.pos++
			raw := p.src[start:p.pos]
			if !esc {
				return string(raw[1 : len(raw)-1]), true
			}
			// Decode as gjson decodes the strings of documents, so
			// that both sides agree, even on invalid UTF-8.
			return gjson.Parse(string(raw)).Str, true
		}
		p.pos++
	}
	p.pos = start
	return "", false
}

func (p *condParser) object(v *condJSON) bool {
	v.kind = condObj
	p.space()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		return true
	}
	for {
		p.space()
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			p.fail()
			return false
		}
		koff := p.pos
		key, ok := p.string()
		if !ok {
			p.fail()
			return false
		}
		p.space()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			p.fail()
			return false
		}
		p.pos++
		p.c.push(key)
		val, ok := p.value()
		if !ok {
			return false
		}
		if i := v.find(key); i >= 0 {
			p.c.problem(koff, p.c.pointer(), "duplicate key: the last value counts", nil)
			v.members[i].val = val
		} else {
			v.members = append(v.members, condMember{key: key, off: koff, val: val})
			if len(v.members) == 9 {
				v.index = make(map[string]int)
				for i, m := range v.members {
					v.index[m.key] = i
				}
			} else if v.index != nil {
				v.index[key] = len(v.members) - 1
			}
		}
		p.c.pop()
		p.space()
		if p.pos >= len(p.src) {
			p.fail()
			return false
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return true
		default:
			p.fail()
			return false
		}
	}
}

func (v *condJSON) find(key string) int {
	if v.index != nil {
		if i, ok := v.index[key]; ok {
			return i
		}
		return -1
	}
	for i := range v.members {
		if v.members[i].key == key {
			return i
		}
	}
	return -1
}

func (p *condParser) array(v *condJSON) bool {
	v.kind = condArr
	p.space()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		return true
	}
	for {
		p.c.push(strconv.Itoa(len(v.elems)))
		e, ok := p.value()
		if !ok {
			return false
		}
		p.c.pop()
		v.elems = append(v.elems, e)
		p.space()
		if p.pos >= len(p.src) {
			p.fail()
			return false
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return true
		default:
			p.fail()
			return false
		}
	}
}

// condCompiler compiles parsed conditions into nodes, collecting problems.
type condCompiler struct {
	src      []byte
	cfg      *condConfig
	ptr      []string // JSON Pointer tokens to the value being compiled
	problems []condProblem
	usesTime bool
	groups   map[string]*condSet

	// elem counts the $elemMatch and "where" arguments around the value
	// being compiled: attribute paths at 0 are paths into the document.
	elem int
	// reads collects the request facts that document paths read.
	reads Fields
	// checkPath, if set, is called with every document path and the
	// offset of its key.
	checkPath func(path string, off int)
}

type condProblem struct {
	off  int
	path string
	msg  string
	err  error
}

func (c *condCompiler) push(tok string) { c.ptr = append(c.ptr, tok) }
func (c *condCompiler) pop()            { c.ptr = c.ptr[:len(c.ptr)-1] }

// pointer returns the JSON Pointer to the value being compiled.
func (c *condCompiler) pointer() string {
	var b strings.Builder
	r := strings.NewReplacer("~", "~0", "/", "~1")
	for _, t := range c.ptr {
		b.WriteByte('/')
		r.WriteString(&b, t)
	}
	return b.String()
}

func (c *condCompiler) problem(off int, path, msg string, err error) {
	c.problems = append(c.problems, condProblem{off: off, path: path, msg: msg, err: err})
}

// problemf reports a problem at the value being compiled, at offset off.
func (c *condCompiler) problemf(off int, format string, args ...any) {
	c.problem(off, c.pointer(), fmt.Sprintf(format, args...), nil)
}

// doc compiles a condition: an object of logical operators and attribute
// paths, evaluated against a document.
func (c *condCompiler) doc(v *condJSON) condNode {
	if v.kind != condObj {
		c.problemf(v.off, "a condition must be an object, not %v", v.kind)
		return condAbort
	}
	var nodes condAll
	for _, m := range v.members {
		c.push(m.key)
		nodes = append(nodes, c.clause(m))
		c.pop()
	}
	return nodes.simplify()
}

func (c *condCompiler) clause(m condMember) condNode {
	switch m.key {
	case "$and", "$or", "$nor":
		if m.val.kind != condArr {
			c.problemf(m.val.off, "%s needs an array of conditions, not %v", m.key, m.val.kind)
			return condAbort
		}
		list := make([]condNode, len(m.val.elems))
		for i, e := range m.val.elems {
			c.push(strconv.Itoa(i))
			list[i] = c.doc(e)
			c.pop()
		}
		switch m.key {
		case "$and":
			return &condLogical{op: m.key, node: condAll(list).simplify()}
		case "$or":
			return &condLogical{op: m.key, node: condAny(list)}
		}
		return &condLogical{op: m.key, node: condNot{condAny(list)}}
	case "$not":
		return &condLogical{op: m.key, node: condNot{c.doc(m.val)}}
	case "$savedGroup":
		c.problemf(m.off, "$savedGroup is not supported; use $inGroup")
		return condUnknown
	}
	if strings.HasPrefix(m.key, "$") {
		c.problemf(m.off, "unknown operator %s (read as an attribute path)", m.key)
	}
	f := &condField{path: newCondPath(m.key), name: m.key, arg: m.val, slot: -1}
	if c.elem > 0 {
		f.evField = eventFieldOf(m.key)
	}
	if c.elem == 0 {
		f.atRoot()
		c.reads |= docReads(m.key)
		if c.checkPath != nil {
			c.checkPath(m.key, m.off)
		}
	}
	f.node, f.ops = c.fieldValue(m.val)
	f.ring = condRingNodeOf(f)
	return f
}

// fieldValue compiles what an attribute must match, as value does, and
// returns the operators of an object of operators one by one, to explain
// them.
func (c *condCompiler) fieldValue(v *condJSON) (condNode, []condOp) {
	if !v.isOperatorObject() {
		return c.value(v, false), nil
	}
	nodes := make(condAll, 0, len(v.members))
	ops := make([]condOp, 0, len(v.members))
	for _, o := range v.members {
		c.push(o.key)
		n := c.operator(o)
		c.pop()
		nodes = append(nodes, n)
		ops = append(ops, condOp{op: o.key, arg: o.val, node: n})
	}
	return nodes.simplify(), ops
}

// value compiles what an attribute's value must match: an object of
// operators, or a value it must equal (ignoring the case of strings if
// fold).
func (c *condCompiler) value(v *condJSON, fold bool) condNode {
	if v.isOperatorObject() {
		return c.operators(v)
	}
	if v.kind == condObj {
		for _, m := range v.members {
			if strings.HasPrefix(m.key, "$") {
				c.push(m.key)
				c.problemf(m.off, "%s among attribute names: the object is compared as a value", m.key)
				c.pop()
				break
			}
		}
	}
	return &condEqual{want: v, fold: fold}
}

// operators compiles an object of operators.
func (c *condCompiler) operators(v *condJSON) condNode {
	nodes := make(condAll, 0, len(v.members))
	for _, m := range v.members {
		c.push(m.key)
		nodes = append(nodes, c.operator(m))
		c.pop()
	}
	return nodes.simplify()
}

func (c *condCompiler) operator(m condMember) condNode {
	op, arg := m.key, m.val
	switch op {
	case "$eq", "$ne":
		if arg.kind == condArr || arg.kind == condObj {
			c.problemf(arg.off, "%s with %v never matches; write the value without an operator to compare it", op, arg.kind)
		}
		return &condCompare{op: op, arg: arg}
	case "$gt", "$gte", "$lt", "$lte":
		if arg.kind != condNum && arg.kind != condStr {
			// JavaScript orders it anyway (see condition_order.go), but
			// hardly as meant: true as 1, null as 0, [1,2] as "1,2".
			c.problemf(arg.off, "%s needs a number or a string, not %v", op, arg.kind)
			if c.cfg.strictTypes {
				return condFail
			}
		}
		return &condCompare{op: op, arg: arg, js: jsPrimitiveOfArg(arg), strict: c.cfg.strictTypes}
	case "$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte":
		if arg.kind != condStr && arg.kind != condNum {
			c.problemf(arg.off, "%s needs a version string, not %v", op, arg.kind)
		}
		return newCondVersion(op, arg)
	case "$in", "$nin", "$ini", "$nini":
		if arg.kind != condArr {
			c.problemf(arg.off, "%s needs an array, not %v", op, arg.kind)
			return condFail
		}
		fold := op == "$ini" || op == "$nini"
		set := newCondSet(fold)
		for i, e := range arg.elems {
			if !set.add(e) {
				c.push(strconv.Itoa(i))
				c.problemf(e.off, "%v in %s never matches", e.kind, op)
				c.pop()
			}
		}
		return &condIn{set: set, not: op == "$nin" || op == "$nini"}
	case "$inGroup", "$notInGroup":
		if arg.kind != condStr {
			c.problemf(arg.off, "%s needs the name of a saved group, not %v", op, arg.kind)
			return condAbort
		}
		return &condIn{set: c.group(arg), not: op == "$notInGroup"}
	case "$regex", "$regexi":
		if arg.kind != condStr {
			c.problemf(arg.off, "%s needs a string, not %v", op, arg.kind)
			return condAbort
		}
		pat := arg.str
		if op == "$regexi" {
			pat = "(?i)" + pat
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			c.problem(arg.off, c.pointer(), "invalid regular expression: "+err.Error(), err)
			return condFail
		}
		return &condRegex{re: re}
	case "$size":
		if arg.kind != condNum && !arg.isOperatorObject() {
			c.problemf(arg.off, "$size needs a number or an object of operators, not %v", arg.kind)
		}
		return &condSize{node: c.value(arg, false)}
	case "$type":
		if arg.kind != condStr {
			c.problemf(arg.off, "$type needs a type name, not %v", arg.kind)
			return condAbort
		}
		t, ok := condTypes[arg.str]
		if !ok {
			c.problemf(arg.off, "unknown type %q: want string, number, boolean, array, object or null", arg.str)
			return condFail
		}
		return condType(t)
	case "$exists":
		if arg.kind != condBool {
			c.problemf(arg.off, "$exists needs true or false, not %v", arg.kind)
		}
		return condExists(arg.truthy())
	case "$elemMatch":
		n, ok := c.elementCondition(op, arg)
		if !ok {
			return condAbort
		}
		return &condElemMatch{node: n, structOnly: condStructOnly(n)}
	case "$all", "$alli":
		if arg.kind != condArr {
			c.problemf(arg.off, "%s needs an array, not %v", op, arg.kind)
			return condAbort
		}
		list := make([]condNode, len(arg.elems))
		for i, e := range arg.elems {
			c.push(strconv.Itoa(i))
			list[i] = c.value(e, op == "$alli")
			c.pop()
		}
		return condAllOf(list)
	case "$not":
		return condNot{c.value(arg, false)}
	case "$within", "$olderThan":
		c.usesTime = true
		d, ok := c.duration(arg)
		if !ok {
			return condAbort
		}
		return &condTime{d: d, older: op == "$olderThan"}
	case "$count":
		return c.count(arg)
	case "$and", "$or", "$nor", "$savedGroup":
		c.problemf(m.off, "%s applies to conditions, not to an attribute's value: it never matches", op)
		return condFail
	}
	c.problemf(m.off, "unknown operator %s", op)
	return condUnknown
}

// elementCondition compiles the argument of $elemMatch, or the "where" of
// $count: an object of operators tested on each element, or a condition on
// each element's fields when it has attribute paths or logical operators.
func (c *condCompiler) elementCondition(op string, arg *condJSON) (condNode, bool) {
	c.elem++
	defer func() { c.elem-- }()
	if arg.kind != condObj {
		c.problemf(arg.off, "%s needs an object, not %v", op, arg.kind)
		return nil, false
	}
	if arg.isOperatorObject() {
		logical := false
		for _, k := range [...]string{"$and", "$or", "$nor", "$savedGroup"} {
			if arg.member(k) != nil {
				logical = true
			}
		}
		if !logical {
			return c.operators(arg), true
		}
	}
	return c.doc(arg), true
}

// count compiles the argument of $count.
func (c *condCompiler) count(arg *condJSON) condNode {
	if arg.kind != condObj {
		c.problemf(arg.off, `$count needs an object with "is" and optionally "where", "within" and "at", not %v`, arg.kind)
		return condAbort
	}
	n := &condCount{at: newCondPath("time")}
	bad := false
	var at *condMember
	for i := range arg.members {
		m := &arg.members[i]
		ok := true
		c.push(m.key)
		switch m.key {
		case "where":
			before := len(c.problems)
			n.where, ok = c.elementCondition(`"where"`, m.val)
			n.sound = len(c.problems) == before
			n.structOnly = ok && condStructOnly(n.where)
		case "within":
			c.usesTime = true
			n.within, ok = c.duration(m.val)
			n.windowed = true
		case "at":
			at = m
			if m.val.kind != condStr {
				c.problemf(m.val.off, `"at" needs the path of a time in the elements, not %v`, m.val.kind)
				ok = false
			} else {
				n.at = newCondPath(m.val.str)
			}
		case "is":
			if m.val.kind != condNum && !m.val.isOperatorObject() {
				c.problemf(m.val.off, `"is" needs a number or an object of operators, not %v`, m.val.kind)
			}
			n.is = c.value(m.val, false)
		default:
			c.problemf(m.off, `unknown key %q in $count: want "where", "within", "at" or "is"`, m.key)
			ok = false
		}
		c.pop()
		bad = bad || !ok
	}
	if at != nil && !n.windowed {
		c.push("at")
		c.problemf(at.off, `"at" has no effect without "within"`)
		c.pop()
	}
	if n.is == nil {
		c.problemf(arg.off, `$count needs "is", the number or object of operators that the count must match`)
		return condAbort
	}
	if bad {
		// The problems of every key are reported, but a malformed $count
		// is never evaluated.
		return condAbort
	}
	return n
}

// duration compiles a duration: Go's syntax, plus the unit "d" for 24
// hours.
func (c *condCompiler) duration(v *condJSON) (time.Duration, bool) {
	if v.kind != condStr {
		c.problemf(v.off, `a duration is a string such as "72h" or "7d", not %v`, v.kind)
		return 0, false
	}
	d, err := parseCondDuration(v.str)
	if err != nil {
		c.problem(v.off, c.pointer(), err.Error(), err)
		return 0, false
	}
	return d, true
}

// parseCondDuration parses Go's duration syntax with an extra unit "d" of
// 24 hours ("7d", "1d12h", "36h"). The duration must be positive.
func parseCondDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("bad duration %q: want a positive duration such as \"72h\", \"90m\" or \"7d\"", s)
	var total time.Duration
	rest := make([]byte, 0, len(s))
	i := 0
	for i < len(s) {
		j := i
		for j < len(s) && (s[j] == '.' || '0' <= s[j] && s[j] <= '9') {
			j++
		}
		k := j
		for k < len(s) && s[k] != '.' && (s[k] < '0' || s[k] > '9') {
			k++
		}
		if j == i || k == j {
			return 0, bad
		}
		if s[j:k] == "d" {
			days, err := strconv.ParseFloat(s[i:j], 64)
			if err != nil || days*24 > float64(1<<63-1)/float64(time.Hour) {
				return 0, bad
			}
			total += time.Duration(days * float64(24*time.Hour))
		} else {
			rest = append(rest, s[i:k]...)
		}
		i = k
	}
	if len(rest) > 0 {
		d, err := time.ParseDuration(string(rest))
		if err != nil {
			return 0, bad
		}
		if total+d < total {
			return 0, bad
		}
		total += d
	}
	if total <= 0 {
		return 0, bad
	}
	return total, nil
}

// group returns the set of the saved group named by arg.
func (c *condCompiler) group(arg *condJSON) *condSet {
	name := arg.str
	if s, ok := c.groups[name]; ok {
		return s
	}
	values, ok := c.cfg.groups[name]
	if !ok {
		if c.cfg.haveGroups {
			c.problemf(arg.off, "unknown saved group %q", name)
		} else {
			c.problemf(arg.off, "unknown saved group %q: no saved groups were given (see WithSavedGroups)", name)
		}
	}
	s := newCondSet(false)
	for _, v := range values {
		s.addGo(v)
	}
	if c.groups == nil {
		c.groups = make(map[string]*condSet)
	}
	c.groups[name] = s
	return s
}
