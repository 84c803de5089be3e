package rules

import (
	"cmp"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/tailorhq/tailor/store"
)

// A condResult is the outcome of evaluating a node. As in GrowthBook, only
// condPass is a match: condUnknown (an operator that is not supported) fails
// even when negated, and condAbort (a malformed part, where GrowthBook's
// JavaScript SDK throws) fails the whole evaluation.
type condResult uint8

const (
	condFail condResult = iota
	condPass
	condUnknown
	condAbort
)

func condResultOf(b bool) condResult {
	if b {
		return condPass
	}
	return condFail
}

func (r condResult) not() condResult {
	switch r {
	case condPass:
		return condFail
	case condFail:
		return condPass
	}
	return r
}

// A constant result is also a node.
func (r condResult) eval(condEnv, gjson.Result) condResult { return r }

// condEnv is what evaluation needs besides the value. It is passed by value
// so that evaluation does not allocate.
type condEnv struct {
	now time.Time
	// x, if set, collects the earliest time at which the result may
	// change (see note).
	x *condTracker
	// root, if set, is the engine's document, read member by member: the
	// value given to the condition is then ignored at the top level.
	root *document
	// rec, if set, records the clauses evaluated at the top level, to
	// explain the result; their arguments are evaluated without it.
	rec *condRecorder
	// event, if set, is the recent event of root whose rendering is the
	// value being evaluated: element paths that name a scalar field of
	// events read it from the event itself. Nodes that evaluate elements
	// of other arrays clear it.
	event *store.Event
}

// note says that the result of the node being evaluated may change at t,
// the document staying the same. A time before now means now.
func (env *condEnv) note(t time.Time) {
	if env.x == nil {
		return
	}
	env.x.note(t, env.now)
}

// condTracker collects the earliest time at which the result of an
// evaluation may change, if it depends on the time.
type condTracker struct {
	until time.Time // zero: the result does not depend on the time
}

func (x *condTracker) note(t, now time.Time) {
	if t.Before(now) {
		t = now
	}
	if x.until.IsZero() || t.Before(x.until) {
		x.until = t
	}
}

// condAnd combines the result r of a node with res, the result of the
// nodes before it in an implicit or explicit $and, as condAll does.
func condAnd(res, r condResult) condResult {
	switch {
	case res == condFail || res == condAbort:
		return res
	case r == condFail || r == condAbort || r == condUnknown:
		return r
	}
	return res
}

// condOr combines as condAny does.
func condOr(res, r condResult) condResult {
	switch {
	case res == condPass || res == condAbort:
		return res
	case r == condPass || r == condAbort || r == condUnknown:
		return r
	}
	return res
}

// A condNode evaluates a compiled part of a condition against a value: the
// document, an element of an array, or an attribute.
type condNode interface {
	eval(env condEnv, v gjson.Result) condResult
}

// condNumber is a number that is not in the document: a length or a count.
func condNumber(n int) gjson.Result {
	return gjson.Result{Type: gjson.Number, Num: float64(n)}
}

// condAll passes when every node passes; it is an implicit or explicit
// $and, or an object of operators.
type condAll []condNode

func (l condAll) simplify() condNode {
	switch len(l) {
	case 0:
		return condPass
	case 1:
		return l[0]
	}
	return l
}

func (l condAll) eval(env condEnv, v gjson.Result) condResult {
	if env.rec != nil { // explaining: evaluate every node
		res := condPass
		for _, n := range l {
			res = condAnd(res, n.eval(env, v))
		}
		return res
	}
	res := condPass
	for _, n := range l {
		switch r := n.eval(env, v); r {
		case condFail, condAbort:
			return r
		case condUnknown:
			res = condUnknown
		}
	}
	return res
}

// condAny is $or: an empty one passes.
type condAny []condNode

func (l condAny) eval(env condEnv, v gjson.Result) condResult {
	if len(l) == 0 {
		return condPass
	}
	if env.rec != nil { // explaining: evaluate every node
		res := condFail
		for _, n := range l {
			res = condOr(res, n.eval(env, v))
		}
		return res
	}
	res := condFail
	for _, n := range l {
		switch r := n.eval(env, v); r {
		case condPass, condAbort:
			return r
		case condUnknown:
			res = condUnknown
		}
	}
	return res
}

type condNot struct{ node condNode }

func (n condNot) eval(env condEnv, v gjson.Result) condResult {
	return n.node.eval(env, v).not()
}

// condLogical is $and, $or, $nor or $not at the level of a condition: it
// is node, named for explanations.
type condLogical struct {
	op   string
	node condNode
}

func (n *condLogical) eval(env condEnv, v gjson.Result) condResult {
	if env.rec == nil {
		return n.node.eval(env, v)
	}
	i := env.rec.add(Clause{Op: n.op})
	env.rec.depth++
	r := n.node.eval(env, v)
	env.rec.depth--
	env.rec.clauses[i].Result = r == condPass
	return r
}

// condField evaluates node on the attribute at path.
type condField struct {
	path condPath
	node condNode

	// A path into the document (not into an element of an array) is read
	// from the members of an engine's document when there is one: slot
	// is the member named by the path's first part (-1: there is none, so
	// the attribute is null), rest the path after it.
	root    bool
	slot    int
	rest    condPath
	hasRest bool
	ringLen bool // the path is "recent.length"
	// look, if set, reads the value from the profile or the request
	// without rendering the member: the key key of a map (of sub, in
	// purchases), or the request fact fact.
	look int
	sub  string
	key  string
	fact Fields
	tail condPath // for a trait, the path after the trait's key
	// evField, if not 0, is the scalar field of events that the path of
	// an element names (see condEnv.event).
	evField int
	// ring, if set, evaluates the operators on the ring of recent events
	// without rendering it whole.
	ring []condRingOp

	// For explanations: the path as written, its value, and its operators.
	name string
	arg  *condJSON
	ops  []condOp
}

// condOp is one operator of an attribute, kept for explanations.
type condOp struct {
	op   string
	arg  *condJSON
	node condNode
}

// atRoot marks f as a path into the document.
func (f *condField) atRoot() {
	f.root = true
	first, rest, more := strings.Cut(f.name, ".")
	f.slot = docSlot(first)
	if !more {
		return
	}
	f.rest, f.hasRest = newCondPath(rest), true
	f.ringLen = f.slot == slotRecent && rest == "length"
	// One part after the member is a key of an object, which a lookup in
	// the profile's map finds as the document's object would: unless the
	// key has U+FFFD, which also stands for invalid UTF-8 in the document.
	one := !strings.Contains(rest, ".") && !strings.ContainsRune(rest, utf8.RuneError)
	switch f.slot {
	case slotCounts, slotPages, slotCategories, slotViews:
		if one {
			f.look, f.key = lookMap, rest
		}
	case slotPurchases:
		sub, key, two := strings.Cut(rest, ".")
		switch {
		case !two && (sub == "count" || sub == "revenue" || sub == "first" || sub == "last"):
			f.look, f.key = lookPurchase, sub
		case two && (sub == "categories" || sub == "items") && !strings.Contains(key, ".") && !strings.ContainsRune(key, utf8.RuneError):
			f.look, f.sub, f.key = lookPurchaseMap, sub, key
		}
	case slotTraits:
		key, tail, two := strings.Cut(rest, ".")
		if !strings.ContainsRune(key, utf8.RuneError) {
			f.look, f.key = lookTrait, key
			if two {
				f.tail = newCondPath(tail)
			}
		}
	case slotRequest:
		if one {
			f.look, f.fact = lookFact, factField(rest)
			if f.fact == 0 {
				f.slot = -1 // the request has no such fact: null
				f.look = lookNone
			}
		}
	}
}

// condRingOp is an operator that can count or search the ring of recent
// events of an engine's document element by element, rendering only the
// elements it reads. It returns its result and, for explanations, the
// count or length it saw (-1 for none).
type condRingOp interface {
	evalRing(env condEnv, d *document) (condResult, int)
}

// condRingNodeOf returns the operators of f that read the ring of recent
// events, if f is "recent" and every operator can.
func condRingNodeOf(f *condField) []condRingOp {
	if !f.root || f.slot != slotRecent || f.hasRest || len(f.ops) == 0 {
		return nil
	}
	ops := make([]condRingOp, len(f.ops))
	for i, o := range f.ops {
		r, ok := o.node.(condRingOp)
		if !ok {
			return nil
		}
		ops[i] = r
	}
	return ops
}

func (f *condField) eval(env condEnv, v gjson.Result) condResult {
	if f.evField != 0 && env.event != nil {
		v = env.root.eventField(env.event, f.evField)
		if env.rec != nil {
			return f.explain(env, v)
		}
		return f.node.eval(env, v)
	}
	if f.ring != nil && env.root != nil && env.root.hasRing() {
		if env.rec != nil {
			return f.explainRing(env)
		}
		res := condPass
		for _, o := range f.ring {
			switch r, _ := o.evalRing(env, env.root); r {
			case condFail, condAbort:
				return r
			case condUnknown:
				res = condUnknown
			}
		}
		return res
	}
	v = f.value(env, v)
	if env.rec != nil {
		return f.explain(env, v)
	}
	return f.node.eval(env, v)
}

// value returns the attribute in v, or in the engine's document.
func (f *condField) value(env condEnv, v gjson.Result) gjson.Result {
	if !f.root || env.root == nil {
		return f.path.resolve(v)
	}
	switch {
	case f.slot < 0:
		return gjson.Result{}
	case f.look == lookTrait:
		t := env.root.trait(f.key)
		if len(f.tail.segs) > 0 {
			return f.tail.resolve(t)
		}
		return t
	case f.look != lookNone:
		return env.root.lookup(f)
	case f.ringLen:
		if env.root.hasRing() {
			return condNumber(env.root.ringLen())
		}
		return gjson.Result{}
	}
	m := env.root.member(f.slot)
	if !f.hasRest {
		return m
	}
	return f.rest.resolve(m)
}

// explain evaluates each operator of f on v and records it.
func (f *condField) explain(env condEnv, v gjson.Result) condResult {
	rec := env.rec
	env.rec = nil
	actual := condDisplay(v)
	if f.ops == nil {
		r := f.node.eval(env, v)
		rec.add(Clause{Path: f.name, Op: "=", Actual: actual, Expected: condText(f.arg), Result: r == condPass})
		return r
	}
	res := condPass
	for _, o := range f.ops {
		r := o.node.eval(env, v)
		rec.add(Clause{Path: f.name, Op: o.op, Actual: actual, Expected: condText(o.arg), Result: r == condPass})
		res = condAnd(res, r)
	}
	return res
}

// explainRing is explain for operators on the ring of recent events: the
// actual value is the count or length they saw.
func (f *condField) explainRing(env condEnv) condResult {
	rec := env.rec
	env.rec = nil
	res := condPass
	for i, o := range f.ring {
		r, n := o.evalRing(env, env.root)
		actual := fmt.Sprintf("%d events", env.root.ringLen())
		if n >= 0 {
			actual = strconv.Itoa(n)
		}
		rec.add(Clause{Path: f.name, Op: f.ops[i].op, Actual: actual, Expected: condText(f.ops[i].arg), Result: r == condPass})
		res = condAnd(res, r)
	}
	return res
}

// condEqual is a value without operators: the attribute must equal it.
type condEqual struct {
	want *condJSON
	fold bool // strings ignore case ($alli)
}

func (e *condEqual) eval(_ condEnv, v gjson.Result) condResult {
	if e.fold && e.want.Kind == condStr && v.Type == gjson.String {
		return condResultOf(strings.EqualFold(v.Str, e.want.Str))
	}
	return condResultOf(condEqualJSON(e.want, v))
}

// condEqualJSON reports whether v deeply equals want: scalars by type and
// value, arrays element by element, objects key by key.
func condEqualJSON(want *condJSON, v gjson.Result) bool {
	switch want.Kind {
	case condNull:
		return v.Type == gjson.Null
	case condBool:
		return v.Type == gjson.True && want.Bool || v.Type == gjson.False && !want.Bool
	case condNum:
		return v.Type == gjson.Number && v.Num == want.Num
	case condStr:
		return v.Type == gjson.String && v.Str == want.Str
	case condArr:
		if !v.IsArray() {
			return false
		}
		i, ok := 0, true
		v.ForEach(func(_, e gjson.Result) bool {
			if i >= len(want.Elems) || !condEqualJSON(want.Elems[i], e) {
				ok = false
				return false
			}
			i++
			return true
		})
		return ok && i == len(want.Elems)
	case condObj:
		if !v.IsObject() {
			return false
		}
		n, ok := 0, true
		v.ForEach(func(k, e gjson.Result) bool {
			w := want.Member(k.Str)
			if w == nil || !condEqualJSON(w, e) {
				ok = false
				return false
			}
			n++
			return true
		})
		return ok && n == len(want.Members)
	}
	return false
}

// condStrictEqual is JavaScript's ===: an array or an object equals nothing
// else.
func condStrictEqual(want *condJSON, v gjson.Result) bool {
	if want.Kind == condArr || want.Kind == condObj {
		return false
	}
	return condEqualJSON(want, v)
}

// condCompare is $eq, $ne, $gt, $gte, $lt or $lte.
type condCompare struct {
	op     string
	arg    *condJSON
	js     jsPrimitive // arg as JavaScript orders it
	strict bool        // order only two numbers or two strings (StrictTypes)
}

func (c *condCompare) eval(_ condEnv, v gjson.Result) condResult {
	switch c.op {
	case "$eq":
		return condResultOf(condStrictEqual(c.arg, v))
	case "$ne":
		return condResultOf(!condStrictEqual(c.arg, v))
	}
	if !c.strict {
		return condResultOf(jsOrder(c.op, jsPrimitiveOf(v), c.js))
	}
	var o int
	switch {
	case c.arg.Kind == condNum && v.Type == gjson.Number:
		if v.Num != v.Num || c.arg.Num != c.arg.Num { // NaN is unordered
			return condFail
		}
		o = cmp.Compare(v.Num, c.arg.Num)
	case c.arg.Kind == condStr && v.Type == gjson.String:
		o = compareUTF16(v.Str, c.arg.Str)
	default:
		return condFail
	}
	switch c.op {
	case "$gt":
		return condResultOf(o > 0)
	case "$gte":
		return condResultOf(o >= 0)
	case "$lt":
		return condResultOf(o < 0)
	}
	return condResultOf(o <= 0) // $lte
}

// compareUTF16 orders strings by UTF-16 code units, as JavaScript does. It
// differs from Go's order only where a character above U+FFFF meets one in
// U+E000 to U+FFFF.
func compareUTF16(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	if i == len(a) || i == len(b) {
		return cmp.Compare(len(a), len(b))
	}
	if a[i] < utf8.RuneSelf && b[i] < utf8.RuneSelf {
		return cmp.Compare(a[i], b[i])
	}
	d := i
	for i > 0 && !utf8.RuneStart(a[i]) {
		i--
	}
	ra, _ := utf8.DecodeRuneInString(a[i:])
	rb, _ := utf8.DecodeRuneInString(b[i:])
	if ra != rb {
		if ua, ub := condFirstUnit(ra), condFirstUnit(rb); ua != ub {
			return cmp.Compare(ua, ub)
		}
		return cmp.Compare(ra, rb)
	}
	return cmp.Compare(a[d], b[d]) // invalid UTF-8
}

// condFirstUnit returns the first UTF-16 code unit of r.
func condFirstUnit(r rune) rune {
	if r >= 0x10000 {
		hi, _ := utf16.EncodeRune(r)
		return hi
	}
	return r
}

// condIn is $in, $nin, $ini, $nini, $inGroup or $notInGroup.
type condIn struct {
	set *condSet
	not bool
}

func (n *condIn) eval(_ condEnv, v gjson.Result) condResult {
	return condResultOf(n.set.has(v) != n.not)
}

// condSet is a set of JSON scalars, compared as JavaScript's
// Array.prototype.includes does, or ignoring the case of strings.
type condSet struct {
	fold       bool
	strs       map[string]struct{} // with fold, the ASCII strings in lower case
	other      []string            // with fold, the other strings
	all        []string            // with fold, all strings
	nums       map[float64]struct{}
	t, f, null bool
}

func newCondSet(fold bool) *condSet {
	return &condSet{fold: fold, strs: map[string]struct{}{}, nums: map[float64]struct{}{}}
}

// add adds v, and reports false for an array or object, which no attribute
// can equal.
func (s *condSet) add(v *condJSON) bool {
	switch v.Kind {
	case condNull:
		s.null = true
	case condBool:
		if v.Bool {
			s.t = true
		} else {
			s.f = true
		}
	case condNum:
		s.nums[v.Num] = struct{}{}
	case condStr:
		s.addString(v.Str)
	default:
		return false
	}
	return true
}

func (s *condSet) addString(x string) {
	if !s.fold {
		s.strs[x] = struct{}{}
		return
	}
	s.all = append(s.all, x)
	if condIsASCII(x) {
		s.strs[strings.ToLower(x)] = struct{}{}
	} else {
		s.other = append(s.other, x)
	}
}

// addGo adds a member of a saved group given as a Go value.
func (s *condSet) addGo(v any) {
	switch x := v.(type) {
	case nil:
		s.null = true
	case bool:
		s.add(&condJSON{Kind: condBool, Bool: x})
	case string:
		s.addString(x)
	case float64:
		s.nums[x] = struct{}{}
	case float32:
		s.nums[float64(x)] = struct{}{}
	case int:
		s.nums[float64(x)] = struct{}{}
	case int8:
		s.nums[float64(x)] = struct{}{}
	case int16:
		s.nums[float64(x)] = struct{}{}
	case int32:
		s.nums[float64(x)] = struct{}{}
	case int64:
		s.nums[float64(x)] = struct{}{}
	case uint:
		s.nums[float64(x)] = struct{}{}
	case uint8:
		s.nums[float64(x)] = struct{}{}
	case uint16:
		s.nums[float64(x)] = struct{}{}
	case uint32:
		s.nums[float64(x)] = struct{}{}
	case uint64:
		s.nums[float64(x)] = struct{}{}
	case interface{ Float64() (float64, error) }: // json.Number
		if f, err := x.Float64(); err == nil {
			s.nums[f] = struct{}{}
		}
	}
}

// has reports whether v, or an element of v if it is an array, is in s.
func (s *condSet) has(v gjson.Result) bool {
	if !v.IsArray() {
		return s.contains(v)
	}
	found := false
	v.ForEach(func(_, e gjson.Result) bool {
		found = s.contains(e)
		return !found
	})
	return found
}

func (s *condSet) contains(v gjson.Result) bool {
	switch v.Type {
	case gjson.Null:
		return s.null
	case gjson.True:
		return s.t
	case gjson.False:
		return s.f
	case gjson.Number:
		_, ok := s.nums[v.Num]
		return ok
	case gjson.String:
		if !s.fold {
			_, ok := s.strs[v.Str]
			return ok
		}
		return s.containsFold(v.Str)
	}
	return false
}

func (s *condSet) containsFold(x string) bool {
	if len(x) <= 64 && condIsASCII(x) {
		var buf [64]byte
		for i := 0; i < len(x); i++ {
			c := x[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		if _, ok := s.strs[string(buf[:len(x)])]; ok {
			return true
		}
		for _, o := range s.other {
			if strings.EqualFold(x, o) {
				return true
			}
		}
		return false
	}
	for _, o := range s.all {
		if strings.EqualFold(x, o) {
			return true
		}
	}
	return false
}

func condIsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// condRegex is $regex or $regexi.
type condRegex struct{ re *regexp.Regexp }

func (n *condRegex) eval(_ condEnv, v gjson.Result) condResult {
	return condResultOf(v.Type == gjson.String && n.re.MatchString(v.Str))
}

// condSize is $size.
type condSize struct{ node condNode }

func (n *condSize) eval(env condEnv, v gjson.Result) condResult {
	if !v.IsArray() {
		return condFail
	}
	return n.node.eval(env, condNumber(condLen(v)))
}

func (n *condSize) evalRing(env condEnv, d *document) (condResult, int) {
	l := d.ringLen()
	return n.node.eval(env, condNumber(l)), l
}

// condLen returns the number of elements of an array.
func condLen(v gjson.Result) int {
	n := 0
	v.ForEach(func(_, _ gjson.Result) bool {
		n++
		return true
	})
	return n
}

// condType is $type.
type condType uint8

const (
	condTypeNull condType = iota
	condTypeBoolean
	condTypeNumber
	condTypeString
	condTypeArray
	condTypeObject
)

var condTypes = map[string]condType{
	"null":    condTypeNull,
	"boolean": condTypeBoolean,
	"number":  condTypeNumber,
	"string":  condTypeString,
	"array":   condTypeArray,
	"object":  condTypeObject,
}

func (t condType) eval(_ condEnv, v gjson.Result) condResult {
	var got condType
	switch v.Type {
	case gjson.Null:
		got = condTypeNull
	case gjson.True, gjson.False:
		got = condTypeBoolean
	case gjson.Number:
		got = condTypeNumber
	case gjson.String:
		got = condTypeString
	default:
		if v.IsArray() {
			got = condTypeArray
		} else {
			got = condTypeObject
		}
	}
	return condResultOf(got == t)
}

// condExists is $exists.
type condExists bool

func (want condExists) eval(_ condEnv, v gjson.Result) condResult {
	return condResultOf((v.Type != gjson.Null) == bool(want))
}

// condElemMatch is $elemMatch.
type condElemMatch struct {
	node condNode
	// structOnly: node reads only scalar fields of events, so recent
	// events need not be rendered (see condEnv.event).
	structOnly bool
}

func (n *condElemMatch) eval(env condEnv, v gjson.Result) condResult {
	env.event = nil
	if !v.IsArray() {
		return condFail
	}
	res := condFail
	v.ForEach(func(_, e gjson.Result) bool {
		return n.step(env, e, &res)
	})
	return res
}

// step tests the element e, updating res, and reports whether to go on.
func (n *condElemMatch) step(env condEnv, e gjson.Result, res *condResult) bool {
	if e.Type == gjson.Null {
		return true
	}
	switch r := n.node.eval(env, e); r {
	case condPass, condAbort:
		*res = r
		return false
	case condUnknown:
		*res = condUnknown
	}
	return true
}

func (n *condElemMatch) evalRing(env condEnv, d *document) (condResult, int) {
	res := condFail
	for i := range d.ringLen() {
		env.event = d.prof.Recent.At(i)
		var e gjson.Result
		if n.structOnly {
			e = gjson.Result{Type: gjson.JSON, Raw: "{}"} // not null: no event is
		} else {
			e = d.ringElem(i)
		}
		if !n.step(env, e, &res) {
			break
		}
	}
	return res, -1
}

// condAllOf is $all or $alli: every node must pass for some element.
type condAllOf []condNode

func (l condAllOf) eval(env condEnv, v gjson.Result) condResult {
	env.event = nil
	if !v.IsArray() {
		return condFail
	}
	res := condPass
	for _, n := range l {
		matched := condFail
		v.ForEach(func(_, e gjson.Result) bool {
			switch r := n.eval(env, e); r {
			case condPass, condAbort:
				matched = r
				return false
			case condUnknown:
				matched = condUnknown
			}
			return true
		})
		switch matched {
		case condFail, condAbort:
			return matched
		case condUnknown:
			res = condUnknown
		}
	}
	return res
}

// condTime is $within or $olderThan.
type condTime struct {
	d     time.Duration
	older bool
}

func (n *condTime) eval(env condEnv, v gjson.Result) condResult {
	if v.Type != gjson.String {
		return condFail
	}
	t, ok := parseCondTime(v.Str)
	if !ok {
		return condFail
	}
	// The result changes once, when t+d passes.
	if edge := t.Add(n.d); !edge.Before(env.now) {
		env.note(edge)
	}
	return condResultOf(t.Before(env.now.Add(-n.d)) == n.older)
}

// condCount is $count.
type condCount struct {
	where      condNode // nil counts every element
	sound      bool     // where was compiled without problems: it only passes or fails
	structOnly bool     // where reads only scalar fields of events (see condEnv.event)
	within     time.Duration
	windowed   bool
	at         condPath
	is         condNode
}

func (n *condCount) eval(env condEnv, v gjson.Result) condResult {
	env.event = nil
	c := condCounter{n: n, env: env, res: condPass}
	switch {
	case v.Type == gjson.Null:
	case !v.IsArray():
		return condFail
	default:
		if n.windowed {
			c.since = env.now.Add(-n.within)
		}
		v.ForEach(func(_, e gjson.Result) bool { return c.step(e) })
	}
	return c.result()
}

// evalRing counts the recent events of d. When the window is on the
// events' own time and where can only pass or fail, the order of the tests
// does not matter: the window is tested first, on the event's time, and
// only the events in it are rendered.
func (n *condCount) evalRing(env condEnv, d *document) (condResult, int) {
	c := condCounter{n: n, env: env, res: condPass}
	if n.windowed {
		c.since = env.now.Add(-n.within)
	}
	fast := n.windowed && n.at.fast == "time" && (n.where == nil || n.sound)
	start := 0
	if fast {
		start = ringStart(d.prof, d, c.since)
	}
	for i := start; i < d.ringLen(); i++ {
		c.env.event = d.prof.Recent.At(i)
		if !fast {
			if !c.step(d.ringElem(i)) {
				break
			}
			continue
		}
		t, ok := d.ringTime(i)
		if !ok || t.Before(c.since) {
			continue
		}
		if n.where != nil {
			e := gjson.Result{Type: gjson.JSON, Raw: "{}"}
			if !n.structOnly {
				e = d.ringElem(i)
			}
			if n.where.eval(c.env, e) != condPass {
				continue
			}
		}
		env.note(t.Add(n.within))
		c.count++
	}
	r := c.result()
	if c.res != condPass {
		return r, -1
	}
	return r, c.count
}

// condCounter counts the elements of an array for a condCount.
type condCounter struct {
	n     *condCount
	env   condEnv
	since time.Time
	count int
	res   condResult
}

// step counts the element e if it passes, and reports whether to go on.
func (c *condCounter) step(e gjson.Result) bool {
	n := c.n
	if n.where != nil {
		switch r := n.where.eval(c.env, e); r {
		case condFail:
			return true
		case condAbort:
			c.res = r
			return false
		case condUnknown:
			c.res = condUnknown
			return true
		}
	}
	if n.windowed {
		at := n.at.resolve(e)
		if at.Type != gjson.String {
			return true
		}
		t, ok := parseCondTime(at.Str)
		if !ok || t.Before(c.since) {
			return true
		}
		// The count drops when t leaves the window.
		c.env.note(t.Add(n.within))
	}
	c.count++
	return true
}

func (c *condCounter) result() condResult {
	if c.res != condPass {
		return c.res
	}
	return c.n.is.eval(c.env, condNumber(c.count))
}

// parseCondTime parses an RFC 3339 time, such as "2006-01-02T15:04:05Z" or
// "2006-01-02T15:04:05.999+07:00", without allocating.
func parseCondTime(s string) (time.Time, bool) {
	// 2006-01-02T15:04:05Z is the shortest form.
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(s string) int {
		n := 0
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return -1
			}
			n = n*10 + int(s[i]-'0')
		}
		return n
	}
	year, month, day := num(s[0:4]), num(s[5:7]), num(s[8:10])
	hour, minute, sec := num(s[11:13]), num(s[14:16]), num(s[17:19])
	if year < 0 || month < 1 || month > 12 || day < 1 || day > condDaysIn(time.Month(month), year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	rest := s[19:]
	nsec := 0
	if rest[0] == '.' {
		i := 1
		for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' {
			if i <= 9 {
				nsec = nsec*10 + int(rest[i]-'0')
			}
			i++
		}
		if i == 1 {
			return time.Time{}, false
		}
		for j := i; j <= 9; j++ {
			nsec *= 10
		}
		rest = rest[i:]
	}
	offset := 0
	switch {
	case rest == "Z" || rest == "z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		h, m := num(rest[1:3]), num(rest[4:6])
		if h < 0 || h > 23 || m < 0 || m > 59 {
			return time.Time{}, false
		}
		offset = (h*60 + m) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}

func condDaysIn(m time.Month, year int) int {
	switch m {
	case time.February:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// condStructOnly reports whether n, a condition on an element, reads only
// paths that name scalar fields of events.
func condStructOnly(n condNode) bool {
	switch n := n.(type) {
	case condResult:
		return true
	case condAll:
		for _, c := range n {
			if !condStructOnly(c) {
				return false
			}
		}
		return true
	case condAny:
		for _, c := range n {
			if !condStructOnly(c) {
				return false
			}
		}
		return true
	case condNot:
		return condStructOnly(n.node)
	case *condLogical:
		return condStructOnly(n.node)
	case *condField:
		return n.evField != 0
	}
	return false
}
