package rules

import (
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"

	"github.com/tidwall/gjson"
)

// This file orders values as JavaScript's relational operators do, because
// GrowthBook's JavaScript SDK evaluates $gt, $gte, $lt and $lte with them:
// packages/sdk-js/src/mongrule.ts in github.com/growthbook/growthbook
// (evalOperatorCondition, at commit ea43b3cebb36b082aef2f44cfecd239a2724e666)
// has
//
//	case "$lt":
//	  return actual < expected;
//
// and its getPath gives null for a missing attribute. The algorithm is
// IsLessThan of ECMA-262 (sections 7.2.13 and 7.1.1): both sides become
// primitives; two strings compare by UTF-16 code units; anything else
// compares as numbers, where null is 0, a boolean 0 or 1, a string its
// numeric value (NaN if it has none), and NaN is ordered with nothing.

// jsPrimitive is a JSON value converted by ToPrimitive with hint number: a
// string, or a number (null and booleans are already numbers here).
type jsPrimitive struct {
	str   string
	num   float64
	isStr bool
}

// jsPrimitiveOf converts an attribute. A missing attribute is null, as
// getPath makes it; an array becomes its elements joined with ","
// (Array.prototype.toString), an object "[object Object]".
func jsPrimitiveOf(v gjson.Result) jsPrimitive {
	switch v.Type {
	case gjson.String:
		return jsPrimitive{str: v.Str, isStr: true}
	case gjson.Number:
		return jsPrimitive{num: v.Num}
	case gjson.True:
		return jsPrimitive{num: 1}
	case gjson.False, gjson.Null:
		return jsPrimitive{}
	}
	if v.IsArray() {
		var b strings.Builder
		jsJoinResult(&b, v)
		return jsPrimitive{str: b.String(), isStr: true}
	}
	return jsPrimitive{str: "[object Object]", isStr: true}
}

// jsJoinResult writes the elements of the array v as Array.prototype.join
// does: null as "", arrays recursively.
func jsJoinResult(b *strings.Builder, v gjson.Result) {
	i := 0
	v.ForEach(func(_, e gjson.Result) bool {
		if i > 0 {
			b.WriteByte(',')
		}
		i++
		switch e.Type {
		case gjson.String:
			b.WriteString(e.Str)
		case gjson.Number:
			b.WriteString(jsNumberString(e.Num))
		case gjson.True:
			b.WriteString("true")
		case gjson.False:
			b.WriteString("false")
		case gjson.JSON:
			if e.IsArray() {
				jsJoinResult(b, e)
			} else {
				b.WriteString("[object Object]")
			}
		}
		return true
	})
}

// jsPrimitiveOfArg converts a condition's argument, as jsPrimitiveOf does
// an attribute.
func jsPrimitiveOfArg(v *condJSON) jsPrimitive {
	switch v.Kind {
	case condStr:
		return jsPrimitive{str: v.Str, isStr: true}
	case condNum:
		return jsPrimitive{num: v.Num}
	case condBool:
		if v.Bool {
			return jsPrimitive{num: 1}
		}
		return jsPrimitive{}
	case condArr:
		var b strings.Builder
		jsJoinArg(&b, v)
		return jsPrimitive{str: b.String(), isStr: true}
	case condObj:
		return jsPrimitive{str: "[object Object]", isStr: true}
	}
	return jsPrimitive{} // null
}

func jsJoinArg(b *strings.Builder, v *condJSON) {
	for i, e := range v.Elems {
		if i > 0 {
			b.WriteByte(',')
		}
		switch e.Kind {
		case condStr:
			b.WriteString(e.Str)
		case condNum:
			b.WriteString(jsNumberString(e.Num))
		case condBool:
			b.WriteString(strconv.FormatBool(e.Bool))
		case condArr:
			jsJoinArg(b, e)
		case condObj:
			b.WriteString("[object Object]")
		}
	}
}

// number is ToNumber of p.
func (p jsPrimitive) number() float64 {
	if p.isStr {
		return jsStringToNumber(p.str)
	}
	return p.num
}

// jsLess is IsLessThan(x, y): -1 when x < y, 0 when not, and 1 when the
// result is undefined (a NaN).
func jsLess(x, y jsPrimitive) int {
	if x.isStr && y.isStr {
		if compareUTF16(x.str, y.str) < 0 {
			return -1
		}
		return 0
	}
	nx, ny := x.number(), y.number()
	if math.IsNaN(nx) || math.IsNaN(ny) {
		return 1
	}
	if nx < ny {
		return -1
	}
	return 0
}

// jsOrder evaluates "actual op expected" as JavaScript does, op being $gt,
// $gte, $lt or $lte.
func jsOrder(op string, actual, expected jsPrimitive) bool {
	switch op {
	case "$lt":
		return jsLess(actual, expected) < 0
	case "$gt":
		return jsLess(expected, actual) < 0
	case "$lte":
		return jsLess(expected, actual) == 0
	}
	return jsLess(actual, expected) == 0 // $gte
}

// jsStringToNumber is ToNumber of a string (ECMA-262 7.1.4.1.1): white
// space around a decimal literal, "Infinity" with a sign, or an unsigned
// 0x, 0o or 0b integer; "" is 0, anything else NaN.
func jsStringToNumber(s string) float64 {
	s = strings.TrimFunc(s, jsSpace)
	if s == "" {
		return 0
	}
	if len(s) > 2 && s[0] == '0' {
		base := 0
		switch s[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 0 {
			n, ok := new(big.Int).SetString(s[2:], base)
			if !ok || strings.ContainsAny(s[2:], "_+-") {
				return math.NaN()
			}
			f, _ := new(big.Float).SetInt(n).Float64()
			return f
		}
	}
	body := s
	if body[0] == '+' || body[0] == '-' {
		body = body[1:]
	}
	if body == "Infinity" {
		if s[0] == '-' {
			return math.Inf(-1)
		}
		return math.Inf(1)
	}
	if !jsDecimalLiteral(body) {
		return math.NaN()
	}
	// The syntax is checked, so the only error is ErrRange, with ±Inf or
	// ±0 as JavaScript gives.
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// jsDecimalLiteral reports whether s is an unsigned StrUnsignedDecimalLiteral
// other than Infinity: digits with an optional fraction, or a fraction,
// then an optional exponent.
func jsDecimalLiteral(s string) bool {
	i, digits := 0, 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i, digits = i+1, digits+1
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i, digits = i+1, digits+1
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i, exp = i+1, exp+1
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

// jsSpace reports whether r is JavaScript white space or a line terminator:
// Unicode's White_Space except U+0085, and U+FEFF.
func jsSpace(r rune) bool {
	return r == 0xFEFF || r != 0x85 && unicode.IsSpace(r)
}

// jsNumberString is Number::toString(x) (ECMA-262 6.1.6.1.20): the
// shortest digits that round-trip, in positional notation for exponents
// from -7 to 20 and in exponential notation ("1e+21") beyond.
func jsNumberString(x float64) string {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case x == 0:
		return "0"
	case math.IsInf(x, 1):
		return "Infinity"
	case math.IsInf(x, -1):
		return "-Infinity"
	}
	sign := ""
	if x < 0 {
		sign, x = "-", -x
	}
	e := strconv.FormatFloat(x, 'e', -1, 64) // d[.ddd]e±XX
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	p, _ := strconv.Atoi(exp)
	k, n := len(digits), p+1
	switch {
	case k <= n && n <= 21:
		return sign + digits + strings.Repeat("0", n-k)
	case 0 < n && n <= 21:
		return sign + digits[:n] + "." + digits[n:]
	case -6 < n && n <= 0:
		return sign + "0." + strings.Repeat("0", -n) + digits
	}
	es, ev := "+", n-1
	if ev < 0 {
		es, ev = "-", -ev
	}
	ex := strconv.Itoa(ev)
	if k == 1 {
		return sign + digits + "e" + es + ex
	}
	return sign + digits[:1] + "." + digits[1:] + "e" + es + ex
}
