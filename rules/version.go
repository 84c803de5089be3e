package rules

import (
	"strconv"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
)

// condVersion is $veq, $vne, $vgt, $vgte, $vlt or $vlte. Like GrowthBook,
// it compares versions by their padded form (see appendPaddedVersion), and
// only a string with a string or a number with a number: on any other pair
// only $vne passes.
type condVersion struct {
	op     string
	kind   condKind // of the argument
	padded string   // of the argument
}

func newCondVersion(op string, arg *condJSON) *condVersion {
	n := &condVersion{op: op, kind: arg.Kind}
	switch arg.Kind {
	case condStr:
		n.padded = string(appendPaddedVersion(nil, arg.Str))
	case condNum:
		n.padded = string(appendPaddedVersion(nil, strconv.FormatFloat(arg.Num, 'f', -1, 64)))
	}
	return n
}

func (n *condVersion) eval(_ condEnv, v gjson.Result) condResult {
	var buf [64]byte
	var padded []byte
	switch {
	case n.kind == condStr && v.Type == gjson.String:
		padded = appendPaddedVersion(buf[:0], v.Str)
	case n.kind == condNum && v.Type == gjson.Number:
		var nb [32]byte
		num := strconv.AppendFloat(nb[:0], v.Num, 'f', -1, 64)
		padded = appendPaddedVersion(buf[:0], unsafe.String(unsafe.SliceData(num), len(num)))
	default:
		return condResultOf(n.op == "$vne")
	}
	s := ""
	if len(padded) > 0 {
		s = unsafe.String(unsafe.SliceData(padded), len(padded))
	}
	o := compareUTF16(s, n.padded)
	switch n.op {
	case "$veq":
		return condResultOf(o == 0)
	case "$vne":
		return condResultOf(o != 0)
	case "$vgt":
		return condResultOf(o > 0)
	case "$vgte":
		return condResultOf(o >= 0)
	case "$vlt":
		return condResultOf(o < 0)
	}
	return condResultOf(o <= 0) // $vlte
}

// appendPaddedVersion appends to dst the form of the version v that
// GrowthBook's paddedVersionString gives, whose string order is the order of
// versions: a leading "v" and build metadata ("+..." to the end) are
// dropped, an empty version is "0", the parts between "." and "-" are
// joined with "-", a release of three parts gets a fourth part "~" (so that
// it sorts after its pre-releases), and parts of fewer than five ASCII
// digits are padded with spaces to five characters (so that "10" sorts
// after "9"). "1.2.3-beta.11" becomes "    1-    2-    3-beta-   11".
func appendPaddedVersion(dst []byte, v string) []byte {
	if v == "" {
		v = "0"
	}
	// The regular expression /(^v|\+.*$)/g: "." does not match a newline,
	// so build metadata is dropped only after the last one.
	start, end := 0, len(v)
	if v[0] == 'v' {
		start = 1
	}
	nl := strings.LastIndexByte(v, '\n')
	if p := strings.IndexByte(v[nl+1:], '+'); p >= 0 && nl+1+p >= start {
		end = nl + 1 + p
	}
	v = v[start:end]
	parts := 1
	for i := 0; i < len(v); i++ {
		if v[i] == '.' || v[i] == '-' {
			parts++
		}
	}
	for i := 0; ; i++ {
		j := strings.IndexAny(v, ".-")
		part := v
		if j >= 0 {
			part = v[:j]
		}
		if i > 0 {
			dst = append(dst, '-')
		}
		if len(part) > 0 && len(part) < 5 && condDigits(part) {
			dst = append(dst, "    "[:5-len(part)]...)
		}
		dst = append(dst, part...)
		if j < 0 {
			break
		}
		v = v[j+1:]
	}
	if parts == 3 {
		dst = append(dst, "-~"...)
	}
	return dst
}

// condDigits reports whether s is all ASCII digits.
func condDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
