package rules

import (
	"strings"

	"github.com/tidwall/gjson"
)

// condPath is a compiled attribute path. GrowthBook splits a path on "."
// and reads each part as an object's key, an array's index or an array's
// length. When every part means the same to gjson, the path is resolved by
// one gjson lookup; otherwise part by part, with gjson for the parts it can
// read and a scan of the object's keys for the others (keys that gjson
// would read as wildcards, modifiers or queries, or the empty key).
type condPath struct {
	fast string // the gjson path, or "" to resolve part by part
	segs []condSeg
}

type condSeg struct {
	key   string
	plain bool // gjson reads key as an object's key without escaping
	index bool // key is an array index in canonical form: "0", "17"
}

func newCondPath(path string) condPath {
	parts := strings.Split(path, ".")
	p := condPath{segs: make([]condSeg, len(parts))}
	fast := true
	for i, k := range parts {
		s := condSeg{key: k, plain: k != "", index: k != "" && (k == "0" || k[0] != '0')}
		for j := 0; j < len(k); j++ {
			c := k[j]
			if c < '0' || c > '9' {
				s.index = false
			}
			if !condPlainPathByte(c) {
				s.plain = false
			}
		}
		if digits := strings.Trim(k, "0123456789") == ""; digits && !s.index {
			fast = false // gjson reads "01" as index 1 of an array
		}
		if !s.plain || k == "length" {
			fast = false
		}
		p.segs[i] = s
	}
	if fast {
		p.fast = path
	}
	return p
}

// condPlainPathByte reports whether gjson reads c literally in a path's key
// (as gjson.Escape decides).
func condPlainPathByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c <= ' ' || c > '~' || c == '_' || c == '-' || c == ':'
}

// resolve returns the value at p in v: null (a zero Result) when there is
// none.
func (p *condPath) resolve(v gjson.Result) gjson.Result {
	if p.fast != "" {
		if v.Type != gjson.JSON {
			return gjson.Result{}
		}
		return gjson.Get(v.Raw, p.fast)
	}
	for i := range p.segs {
		s := &p.segs[i]
		switch {
		case v.IsObject():
			if s.plain {
				v = v.Get(s.key)
			} else {
				v = condLookup(v, s.key)
			}
		case v.IsArray():
			switch {
			case s.key == "length":
				v = condNumber(condLen(v))
			case s.index:
				v = v.Get(s.key)
			default:
				return gjson.Result{}
			}
		default:
			return gjson.Result{}
		}
		if !v.Exists() {
			return gjson.Result{}
		}
	}
	return v
}

// condLookup returns the value of key in the object v, scanning its keys.
func condLookup(v gjson.Result, key string) gjson.Result {
	var out gjson.Result
	v.ForEach(func(k, e gjson.Result) bool {
		if k.Str == key {
			out = e
			return false
		}
		return true
	})
	return out
}
