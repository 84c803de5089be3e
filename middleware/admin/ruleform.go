package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The form of the editor builds the rule of a segment from a built-in's
// arguments, as a segments file writes it: "visited /pricing twice this
// week" is {"pageVisited": {"path": "/pricing", "min": 2, "within": "7d"}}.
// The arguments and their meaning are those of package rules' built-ins;
// rules.Parse checks them, and its problems are shown by their field.

// argType is how a form field becomes a JSON argument.
type argType int

const (
	argStr    argType = iota // a string
	argChoice                // one of Choices; "" leaves it out
	argInt                   // an integer
	argFloat                 // a number
	argDur                   // a duration such as "7d", a string
	argList                  // strings separated by commas: a list
	argBool                  // a checkbox: true
	argScore                 // an RFM score, "5", or a range "4-5"
	argJSON                  // JSON text (a condition)
	argValue                 // JSON text, or else a string
)

type formArg struct {
	Name, Label, Help string
	Type              argType
	Choices           []string
}

// Textarea reports whether the field is edited in a textarea.
func (a formArg) Textarea() bool { return a.Type == argJSON }

// Checkbox reports whether the field is a checkbox.
func (a formArg) Checkbox() bool { return a.Type == argBool }

type ruleKind struct {
	Name, Label string
	Args        []formArg
}

// conditionKind is the form's kind for a segment with a "condition"
// instead of a "rule".
const conditionKind = "condition"

var ruleKinds = []ruleKind{
	{"pageVisited", "Page visited", []formArg{
		{"path", "Path", `"/pricing"; a prefix ends with "/*"`, argStr, nil},
		{"match", "Match", "how the path matches; empty: from the path", argChoice, []string{"exact", "prefix", "glob"}},
		{"min", "At least", "times; default 1", argInt, nil},
		{"within", "Within", `"7d", "36h"; empty: ever (the recent events)`, argDur, nil},
	}},
	{"eventCount", "Event count", []formArg{
		{"name", "Event", `"add_to_cart"`, argStr, nil},
		{"where", "Where", `a condition on the event's properties, {"price": {"$gt": 50}}`, argJSON, nil},
		{"min", "At least", "default 1", argInt, nil},
		{"max", "At most", "empty: no maximum", argInt, nil},
		{"within", "Within", `"30d"`, argDur, nil},
	}},
	{"recency", "Recency", []formArg{
		{"of", "Of", `seen, firstSeen, purchase, or an event name`, argStr, nil},
		{"within", "Within", `"7d": it happened in the last 7 days`, argDur, nil},
		{"olderThan", "Older than", `"90d": it last happened more than 90 days ago (set this or Within)`, argDur, nil},
	}},
	{"lifecycle", "Lifecycle stage", []formArg{
		{"stage", "Stage", "", argChoice, []string{"non-customer", "one-time", "repeat", "loyal"}},
		{"repeat", "Repeat from", "orders; default 2", argInt, nil},
		{"loyal", "Loyal from", "orders; default 5", argInt, nil},
		{"loyalWithin", "Loyal within", `"365d"`, argDur, nil},
	}},
	{"rfm", "RFM scores", []formArg{
		{"r", "Recency score", `1 to 5, or a range "4-5"`, argScore, nil},
		{"f", "Frequency score", `1 to 5, or a range "4-5"`, argScore, nil},
		{"m", "Monetary score", `1 to 5, or a range "4-5"`, argScore, nil},
	}},
	{"email", "Email engagement", []formArg{
		{"action", "Action", "default opened", argChoice, []string{"opened", "clicked"}},
		{"of", "Of", "default any", argChoice, []string{"any", "all", "none"}},
		{"last", "Of the last", "campaigns; default 5", argInt, nil},
		{"campaigns", "Campaigns", "names, separated by commas; empty: the last ones", argList, nil},
	}},
	{"interest", "Interest", []formArg{
		{"category", "Category", `"watercolours"`, argStr, nil},
		{"top", "Among the top", "categories of the visitor", argInt, nil},
		{"minScore", "Minimum score", "decayed views", argFloat, nil},
		{"halfLife", "Half-life", `default "14d"`, argDur, nil},
	}},
	{"trait", "Trait", []formArg{
		{"path", "Trait path", `"crm.stage"`, argStr, nil},
		{"is", "Is", `a value ("opportunity"), or a condition ({"$in": ["a", "b"]}); empty: the trait exists`, argValue, nil},
	}},
	{"context", "Context of the request", []formArg{
		{"utmSource", "UTM source", "values separated by commas", argList, nil},
		{"utmMedium", "UTM medium", "", argList, nil},
		{"utmCampaign", "UTM campaign", "", argList, nil},
		{"referrer", "Referrer", "hosts", argList, nil},
		{"device", "Device", "mobile, tablet, desktop", argList, nil},
		{"country", "Country", "FR, BE", argList, nil},
		{"path", "Path", `"/docs/*"`, argList, nil},
		{"visitor", "Visitor", "", argChoice, []string{"new", "returning"}},
	}},
	{"seasonal", "Seasonal buyer", []formArg{
		{"months", "Months", "dec, apr", argList, nil},
		{"share", "Share", "of orders in those months; default 0.5", argFloat, nil},
		{"minOrders", "Minimum orders", "default 2", argInt, nil},
		{"each", "In each of the months", "", argBool, nil},
	}},
	{"dueToBuy", "Due to buy", []formArg{
		{"within", "Within", `"30d"`, argDur, nil},
		{"minOrders", "Minimum orders", "default 2", argInt, nil},
	}},
	{"purchased", "Purchased", []formArg{{"min", "At least", "orders; default 1", argInt, nil}}},
	{"visits", "Visits", []formArg{{"min", "At least", "visits; default 1", argInt, nil}}},
	{"categoryViews", "Category views", []formArg{
		{"category", "Category", `"hats"`, argStr, nil},
		{"min", "At least", "views; default 1", argInt, nil},
	}},
	{conditionKind, "Condition (JSON)", []formArg{
		{"condition", "Condition", `{"traits.plan": "trial", "visits": {"$gte": 3}}`, argJSON, nil},
	}},
}

func kindOf(name string) (ruleKind, bool) {
	for _, k := range ruleKinds {
		if k.Name == name {
			return k, true
		}
	}
	return ruleKind{}, false
}

// fieldName is the name of an argument's form field.
func fieldName(kind, arg string) string { return "arg." + kind + "." + arg }

// segmentForm is the form of a segment.
type segmentForm struct {
	Name, Description, Priority, Group string
	Kind                               string
	Values                             map[string]string // by fieldName
}

// Value returns the field of kind's arg.
func (f segmentForm) Value(kind, arg string) string { return f.Values[fieldName(kind, arg)] }

// readSegmentForm reads the form from a request's values.
func readSegmentForm(v url.Values) segmentForm {
	f := segmentForm{
		Name: strings.TrimSpace(v.Get("name")), Description: strings.TrimSpace(v.Get("description")),
		Priority: strings.TrimSpace(v.Get("priority")), Group: strings.TrimSpace(v.Get("group")),
		Kind: v.Get("kind"), Values: map[string]string{},
	}
	for _, k := range ruleKinds {
		for _, a := range k.Args {
			n := fieldName(k.Name, a.Name)
			f.Values[n] = v.Get(n)
		}
	}
	return f
}

// build returns the segment's JSON object, or the problems of the fields
// that do not convert (placed by their path in the segments file, under
// at, such as "/segments/3").
func (f segmentForm) build(base object, at string) (object, []problem) {
	var probs []problem
	bad := func(path, format string, args ...any) {
		probs = append(probs, problem{File: "form", Path: at + path, Msg: fmt.Sprintf(format, args...)})
	}
	o := slices.Clone(base)
	str := func(s string) json.RawMessage { b, _ := json.Marshal(s); return b }
	o.set("name", str(f.Name))
	for _, m := range []struct{ key, val string }{{"description", f.Description}, {"group", f.Group}} {
		if m.val == "" {
			o.del(m.key)
		} else {
			o.set(m.key, str(m.val))
		}
	}
	if f.Priority == "" {
		o.del("priority")
	} else if n, err := strconv.Atoi(f.Priority); err != nil {
		bad("/priority", "priority: want an integer, not %q", f.Priority)
	} else {
		o.set("priority", json.RawMessage(strconv.Itoa(n)))
	}
	kind, ok := kindOf(f.Kind)
	if !ok {
		bad("/rule", "choose the kind of rule")
		return o, probs
	}
	if kind.Name == conditionKind {
		text := strings.TrimSpace(f.Value(conditionKind, "condition"))
		if !json.Valid([]byte(text)) {
			bad("/condition", "the condition is not valid JSON%s", jsonErrorAt(text))
			return o, probs
		}
		o.del("rule")
		o.set("condition", json.RawMessage(text))
		return o, probs
	}
	var args object
	for _, a := range kind.Args {
		raw := strings.TrimSpace(f.Value(kind.Name, a.Name))
		if raw == "" {
			continue
		}
		path := "/rule/" + kind.Name + "/" + a.Name
		var v json.RawMessage
		switch a.Type {
		case argStr, argChoice, argDur:
			v = str(raw)
		case argInt:
			n, err := strconv.Atoi(raw)
			if err != nil {
				bad(path, "%s: want an integer, not %q", a.Label, raw)
				continue
			}
			v = json.RawMessage(strconv.Itoa(n))
		case argFloat:
			x, err := strconv.ParseFloat(raw, 64)
			if err != nil {
				bad(path, "%s: want a number, not %q", a.Label, raw)
				continue
			}
			v = json.RawMessage(strconv.FormatFloat(x, 'g', -1, 64))
		case argList:
			var items []string
			for _, s := range strings.Split(raw, ",") {
				if s = strings.TrimSpace(s); s != "" {
					items = append(items, s)
				}
			}
			v, _ = json.Marshal(items)
		case argBool:
			v = json.RawMessage("true")
		case argScore:
			lo, hi, found := strings.Cut(raw, "-")
			a1, err1 := strconv.Atoi(strings.TrimSpace(lo))
			a2, err2 := strconv.Atoi(strings.TrimSpace(hi))
			switch {
			case !found && err1 == nil:
				v = json.RawMessage(strconv.Itoa(a1))
			case found && err1 == nil && err2 == nil:
				v = json.RawMessage(fmt.Sprintf("[%d, %d]", a1, a2))
			default:
				bad(path, `%s: want a score from 1 to 5 or a range such as "4-5", not %q`, a.Label, raw)
				continue
			}
		case argJSON:
			if !json.Valid([]byte(raw)) {
				bad(path, "%s: not valid JSON%s", a.Label, jsonErrorAt(raw))
				continue
			}
			v = json.RawMessage(raw)
		case argValue:
			if json.Valid([]byte(raw)) {
				v = json.RawMessage(raw)
			} else {
				v = str(raw)
			}
		}
		args = append(args, member{a.Name, v})
	}
	if args == nil {
		args = object{}
	}
	rule := object{{kind.Name, args.marshal()}}
	o.del("condition")
	o.set("rule", rule.marshal())
	return o, probs
}

// jsonErrorAt describes where text stops being JSON.
func jsonErrorAt(text string) string {
	var v any
	err := json.Unmarshal([]byte(text), &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(text, int(se.Offset))
		return fmt.Sprintf(" (line %d, column %d: %v)", line, col, se)
	}
	if err != nil {
		return ": " + err.Error()
	}
	return ""
}

// lineCol returns the line and column, from 1, of the byte at off.
func lineCol(text string, off int) (line, col int) {
	off = min(max(off, 0), len(text))
	before := text[:off]
	line = strings.Count(before, "\n") + 1
	col = off - strings.LastIndexByte(before, '\n')
	return line, col
}

// formOf returns the form of a segment, and whether the form can edit it:
// a rule that is not one built-in with arguments the form has (and, or,
// not, plugins, RFM cuts) is edited as JSON.
func formOf(o object) (segmentForm, bool) {
	f := segmentForm{Name: o.str("name"), Description: o.str("description"), Group: o.str("group"), Values: map[string]string{}}
	if p := o.get("priority"); p != nil {
		f.Priority = string(p)
	}
	if c := o.get("condition"); c != nil {
		f.Kind = conditionKind
		f.Values[fieldName(conditionKind, "condition")] = indent(c, "")
		return f, o.get("rule") == nil
	}
	rule, err := parseObject(o.get("rule"))
	if err != nil || len(rule) != 1 {
		return f, false
	}
	kind, ok := kindOf(rule[0].Key)
	if !ok || kind.Name == conditionKind {
		return f, false
	}
	f.Kind = kind.Name
	args, err := parseObject(rule[0].Val)
	if err != nil {
		return f, false
	}
	for _, m := range args {
		i := slices.IndexFunc(kind.Args, func(a formArg) bool { return a.Name == m.Key })
		if i < 0 {
			return f, false
		}
		text, ok := argText(kind.Args[i], m.Val)
		if !ok {
			return f, false
		}
		f.Values[fieldName(kind.Name, m.Key)] = text
	}
	return f, true
}

// argText returns the form's text of an argument's JSON value.
func argText(a formArg, v json.RawMessage) (string, bool) {
	var x any
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	if d.Decode(&x) != nil {
		return "", false
	}
	switch a.Type {
	case argStr, argChoice, argDur:
		s, ok := x.(string)
		return s, ok
	case argInt, argFloat:
		n, ok := x.(json.Number)
		return string(n), ok
	case argBool:
		b, ok := x.(bool)
		return "on", ok && b
	case argList:
		switch x := x.(type) {
		case string:
			return x, !strings.Contains(x, ",")
		case []any:
			var parts []string
			for _, e := range x {
				var s string
				switch e := e.(type) {
				case string:
					s = e
				case json.Number:
					s = string(e)
				default:
					return "", false
				}
				if strings.Contains(s, ",") || strings.TrimSpace(s) != s || s == "" {
					return "", false
				}
				parts = append(parts, s)
			}
			return strings.Join(parts, ", "), true
		}
	case argScore:
		switch x := x.(type) {
		case json.Number:
			return string(x), true
		case []any:
			if len(x) == 2 {
				a, ok1 := x[0].(json.Number)
				b, ok2 := x[1].(json.Number)
				return string(a) + "-" + string(b), ok1 && ok2
			}
		}
	case argJSON:
		return indent(v, ""), true
	case argValue:
		if s, ok := x.(string); ok && !json.Valid([]byte(s)) {
			return s, true
		}
		return string(v), true
	}
	return "", false
}
