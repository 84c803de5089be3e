package rules

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tailorhq/tailor/internal/jsonpos"
)

// condJSON is a parsed JSON value of a condition or file, with its place
// in the source.
type (
	condJSON   = jsonpos.Value
	condMember = jsonpos.Member
	condKind   = jsonpos.Kind
)

const (
	condNull = jsonpos.Null
	condBool = jsonpos.Bool
	condNum  = jsonpos.Number
	condStr  = jsonpos.String
	condArr  = jsonpos.Array
	condObj  = jsonpos.Object
)

// isOperatorObject reports whether v is an object whose keys all start with
// "$"; the empty object is one.
func isOperatorObject(v *condJSON) bool {
	if v.Kind != condObj {
		return false
	}
	for _, m := range v.Members {
		if !strings.HasPrefix(m.Key, "$") {
			return false
		}
	}
	return true
}

// parse parses c.src, whose arrays and objects may nest limit deep,
// reporting its problems. It returns nil if it could not.
func (c *condCompiler) parse(limit int) *condJSON {
	v, errs := jsonpos.Parse(c.src, limit)
	for _, e := range errs {
		msg, err := e.Msg, e.Err
		if errors.Is(err, jsonpos.ErrTooDeep) && limit == MaxConditionDepth {
			msg, err = ErrConditionTooDeep.Error(), ErrConditionTooDeep
		}
		c.problem(e.Off, e.Pointer, msg, err)
	}
	return v
}

// condCompiler compiles parsed conditions into nodes, collecting problems.
type condCompiler struct {
	src      []byte
	cfg      *condConfig
	ptr      jsonpos.Pointer // to the value being compiled
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

func (c *condCompiler) push(tok string) { c.ptr.Push(tok) }
func (c *condCompiler) pop()            { c.ptr.Pop() }

// pointer returns the JSON Pointer to the value being compiled.
func (c *condCompiler) pointer() string { return c.ptr.String() }

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
	if v.Kind != condObj {
		c.problemf(v.Off, "a condition must be an object, not %v", v.Kind)
		return condAbort
	}
	var nodes condAll
	for _, m := range v.Members {
		c.push(m.Key)
		nodes = append(nodes, c.clause(m))
		c.pop()
	}
	return nodes.simplify()
}

func (c *condCompiler) clause(m condMember) condNode {
	switch m.Key {
	case "$and", "$or", "$nor":
		if m.Val.Kind != condArr {
			c.problemf(m.Val.Off, "%s needs an array of conditions, not %v", m.Key, m.Val.Kind)
			return condAbort
		}
		list := make([]condNode, len(m.Val.Elems))
		for i, e := range m.Val.Elems {
			c.push(strconv.Itoa(i))
			list[i] = c.doc(e)
			c.pop()
		}
		switch m.Key {
		case "$and":
			return &condLogical{op: m.Key, node: condAll(list).simplify()}
		case "$or":
			return &condLogical{op: m.Key, node: condAny(list)}
		}
		return &condLogical{op: m.Key, node: condNot{condAny(list)}}
	case "$not":
		return &condLogical{op: m.Key, node: condNot{c.doc(m.Val)}}
	case "$savedGroup":
		c.problemf(m.Off, "$savedGroup is not supported; use $inGroup")
		return condUnknown
	}
	if strings.HasPrefix(m.Key, "$") {
		c.problemf(m.Off, "unknown operator %s (read as an attribute path)", m.Key)
	}
	f := &condField{path: newCondPath(m.Key), name: m.Key, arg: m.Val, slot: -1}
	if c.elem > 0 {
		f.evField = eventFieldOf(m.Key)
	}
	if c.elem == 0 {
		f.atRoot()
		c.reads |= docReads(m.Key)
		if c.checkPath != nil {
			c.checkPath(m.Key, m.Off)
		}
	}
	f.node, f.ops = c.fieldValue(m.Val)
	f.ring = condRingNodeOf(f)
	return f
}

// fieldValue compiles what an attribute must match, as value does, and
// returns the operators of an object of operators one by one, to explain
// them.
func (c *condCompiler) fieldValue(v *condJSON) (condNode, []condOp) {
	if !isOperatorObject(v) {
		return c.value(v, false), nil
	}
	nodes := make(condAll, 0, len(v.Members))
	ops := make([]condOp, 0, len(v.Members))
	for _, o := range v.Members {
		c.push(o.Key)
		n := c.operator(o)
		c.pop()
		nodes = append(nodes, n)
		ops = append(ops, condOp{op: o.Key, arg: o.Val, node: n})
	}
	return nodes.simplify(), ops
}

// value compiles what an attribute's value must match: an object of
// operators, or a value it must equal (ignoring the case of strings if
// fold).
func (c *condCompiler) value(v *condJSON, fold bool) condNode {
	if isOperatorObject(v) {
		return c.operators(v)
	}
	if v.Kind == condObj {
		for _, m := range v.Members {
			if strings.HasPrefix(m.Key, "$") {
				c.push(m.Key)
				c.problemf(m.Off, "%s among attribute names: the object is compared as a value", m.Key)
				c.pop()
				break
			}
		}
	}
	return &condEqual{want: v, fold: fold}
}

// operators compiles an object of operators.
func (c *condCompiler) operators(v *condJSON) condNode {
	nodes := make(condAll, 0, len(v.Members))
	for _, m := range v.Members {
		c.push(m.Key)
		nodes = append(nodes, c.operator(m))
		c.pop()
	}
	return nodes.simplify()
}

func (c *condCompiler) operator(m condMember) condNode {
	op, arg := m.Key, m.Val
	switch op {
	case "$eq", "$ne":
		if arg.Kind == condArr || arg.Kind == condObj {
			c.problemf(arg.Off, "%s with %v never matches; write the value without an operator to compare it", op, arg.Kind)
		}
		return &condCompare{op: op, arg: arg}
	case "$gt", "$gte", "$lt", "$lte":
		if arg.Kind != condNum && arg.Kind != condStr {
			// JavaScript orders it anyway (see condition_order.go), but
			// hardly as meant: true as 1, null as 0, [1,2] as "1,2".
			c.problemf(arg.Off, "%s needs a number or a string, not %v", op, arg.Kind)
			if c.cfg.strictTypes {
				return condFail
			}
		}
		return &condCompare{op: op, arg: arg, js: jsPrimitiveOfArg(arg), strict: c.cfg.strictTypes}
	case "$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte":
		if arg.Kind != condStr && arg.Kind != condNum {
			c.problemf(arg.Off, "%s needs a version string, not %v", op, arg.Kind)
		}
		return newCondVersion(op, arg)
	case "$in", "$nin", "$ini", "$nini":
		if arg.Kind != condArr {
			c.problemf(arg.Off, "%s needs an array, not %v", op, arg.Kind)
			return condFail
		}
		fold := op == "$ini" || op == "$nini"
		set := newCondSet(fold)
		for i, e := range arg.Elems {
			if !set.add(e) {
				c.push(strconv.Itoa(i))
				c.problemf(e.Off, "%v in %s never matches", e.Kind, op)
				c.pop()
			}
		}
		return &condIn{set: set, not: op == "$nin" || op == "$nini"}
	case "$inGroup", "$notInGroup":
		if arg.Kind != condStr {
			c.problemf(arg.Off, "%s needs the name of a saved group, not %v", op, arg.Kind)
			return condAbort
		}
		return &condIn{set: c.group(arg), not: op == "$notInGroup"}
	case "$regex", "$regexi":
		if arg.Kind != condStr {
			c.problemf(arg.Off, "%s needs a string, not %v", op, arg.Kind)
			return condAbort
		}
		pat := arg.Str
		if op == "$regexi" {
			pat = "(?i)" + pat
		}
		re, err := regexp.Compile(pat)
		if err != nil {
			c.problem(arg.Off, c.pointer(), "invalid regular expression: "+err.Error(), err)
			return condFail
		}
		return &condRegex{re: re}
	case "$size":
		if arg.Kind != condNum && !isOperatorObject(arg) {
			c.problemf(arg.Off, "$size needs a number or an object of operators, not %v", arg.Kind)
		}
		return &condSize{node: c.value(arg, false)}
	case "$type":
		if arg.Kind != condStr {
			c.problemf(arg.Off, "$type needs a type name, not %v", arg.Kind)
			return condAbort
		}
		t, ok := condTypes[arg.Str]
		if !ok {
			c.problemf(arg.Off, "unknown type %q: want string, number, boolean, array, object or null", arg.Str)
			return condFail
		}
		return condType(t)
	case "$exists":
		if arg.Kind != condBool {
			c.problemf(arg.Off, "$exists needs true or false, not %v", arg.Kind)
		}
		return condExists(arg.Truthy())
	case "$elemMatch":
		n, ok := c.elementCondition(op, arg)
		if !ok {
			return condAbort
		}
		return &condElemMatch{node: n, structOnly: condStructOnly(n)}
	case "$all", "$alli":
		if arg.Kind != condArr {
			c.problemf(arg.Off, "%s needs an array, not %v", op, arg.Kind)
			return condAbort
		}
		list := make([]condNode, len(arg.Elems))
		for i, e := range arg.Elems {
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
		c.problemf(m.Off, "%s applies to conditions, not to an attribute's value: it never matches", op)
		return condFail
	}
	c.problemf(m.Off, "unknown operator %s", op)
	return condUnknown
}

// elementCondition compiles the argument of $elemMatch, or the "where" of
// $count: an object of operators tested on each element, or a condition on
// each element's fields when it has attribute paths or logical operators.
func (c *condCompiler) elementCondition(op string, arg *condJSON) (condNode, bool) {
	c.elem++
	defer func() { c.elem-- }()
	if arg.Kind != condObj {
		c.problemf(arg.Off, "%s needs an object, not %v", op, arg.Kind)
		return nil, false
	}
	if isOperatorObject(arg) {
		logical := false
		for _, k := range [...]string{"$and", "$or", "$nor", "$savedGroup"} {
			if arg.Member(k) != nil {
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
	if arg.Kind != condObj {
		c.problemf(arg.Off, `$count needs an object with "is" and optionally "where", "within" and "at", not %v`, arg.Kind)
		return condAbort
	}
	n := &condCount{at: newCondPath("time")}
	bad := false
	var at *condMember
	for i := range arg.Members {
		m := &arg.Members[i]
		ok := true
		c.push(m.Key)
		switch m.Key {
		case "where":
			before := len(c.problems)
			n.where, ok = c.elementCondition(`"where"`, m.Val)
			n.sound = len(c.problems) == before
			n.structOnly = ok && condStructOnly(n.where)
		case "within":
			c.usesTime = true
			n.within, ok = c.duration(m.Val)
			n.windowed = true
		case "at":
			at = m
			if m.Val.Kind != condStr {
				c.problemf(m.Val.Off, `"at" needs the path of a time in the elements, not %v`, m.Val.Kind)
				ok = false
			} else {
				n.at = newCondPath(m.Val.Str)
			}
		case "is":
			if m.Val.Kind != condNum && !isOperatorObject(m.Val) {
				c.problemf(m.Val.Off, `"is" needs a number or an object of operators, not %v`, m.Val.Kind)
			}
			n.is = c.value(m.Val, false)
		default:
			c.problemf(m.Off, `unknown key %q in $count: want "where", "within", "at" or "is"`, m.Key)
			ok = false
		}
		c.pop()
		bad = bad || !ok
	}
	if at != nil && !n.windowed {
		c.push("at")
		c.problemf(at.Off, `"at" has no effect without "within"`)
		c.pop()
	}
	if n.is == nil {
		c.problemf(arg.Off, `$count needs "is", the number or object of operators that the count must match`)
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
	if v.Kind != condStr {
		c.problemf(v.Off, `a duration is a string such as "72h" or "7d", not %v`, v.Kind)
		return 0, false
	}
	d, err := parseCondDuration(v.Str)
	if err != nil {
		c.problem(v.Off, c.pointer(), err.Error(), err)
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
	name := arg.Str
	if s, ok := c.groups[name]; ok {
		return s
	}
	values, ok := c.cfg.groups[name]
	if !ok {
		if c.cfg.haveGroups {
			c.problemf(arg.Off, "unknown saved group %q", name)
		} else {
			c.problemf(arg.Off, "unknown saved group %q: no saved groups were given (see WithSavedGroups)", name)
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
