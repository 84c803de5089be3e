// Package jsonpos parses JSON into values that remember where they are in
// the source, so that the parsers of tailor's files (segments, slots) and
// of conditions report each problem at its line, column and JSON Pointer.
//
// Strings are decoded as gjson decodes the strings of documents, so that a
// condition and the document it tests agree even on invalid UTF-8. Numbers
// are float64, ±Inf when they overflow (as in JavaScript); their text is
// src[Off:End]. An object with duplicate keys keeps each key's first place
// and last value, as JavaScript's JSON.parse does, and reports the
// duplicate.
package jsonpos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Kind is the type of a JSON value.
type Kind uint8

// The kinds of JSON values.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

var kindNames = [...]string{"null", "a boolean", "a number", "a string", "an array", "an object"}

// String returns the kind with its article, for messages: "an object".
func (k Kind) String() string { return kindNames[k] }

// A Value is a parsed JSON value and its place in the source.
type Value struct {
	Kind  Kind
	Bool  bool
	Num   float64
	Str   string
	Elems []*Value
	// Members are an object's members in source order (see the package
	// documentation for duplicate keys).
	Members []Member
	// Off is the offset of the value's first byte in the source, End the
	// offset just after its last.
	Off, End int

	index map[string]int // of Members, for objects with many
}

// A Member is a key of an object and its value.
type Member struct {
	Key string
	Off int // of the key
	Val *Value
}

// Member returns the value of key in an object, or nil.
func (v *Value) Member(key string) *Value {
	if i := v.find(key); i >= 0 {
		return v.Members[i].Val
	}
	return nil
}

func (v *Value) find(key string) int {
	if v.index != nil {
		if i, ok := v.index[key]; ok {
			return i
		}
		return -1
	}
	for i := range v.Members {
		if v.Members[i].Key == key {
			return i
		}
	}
	return -1
}

// Truthy is JavaScript's truthiness of v.
func (v *Value) Truthy() bool {
	switch v.Kind {
	case Null:
		return false
	case Bool:
		return v.Bool
	case Number:
		return v.Num != 0
	case String:
		return v.Str != ""
	}
	return true
}

// ErrTooDeep is the Err of the Error that Parse reports for a source that
// nests arrays and objects deeper than its limit.
var ErrTooDeep = errors.New("nests too deeply")

// An Error is a problem of the source: at byte offset Off, at the JSON
// Pointer Pointer.
type Error struct {
	Off     int
	Pointer string
	Msg     string
	// Err is the *json.SyntaxError of invalid JSON, ErrTooDeep, or nil
	// for a duplicate key.
	Err error
}

func (e *Error) Error() string { return e.Msg }

func (e *Error) Unwrap() error { return e.Err }

// Parse parses src, whose arrays and objects may nest maxDepth deep. It
// returns the value, with the duplicate keys it found, or nil and the one
// problem that stopped it: invalid JSON (with encoding/json's message and
// offset) or too deep a nesting.
func Parse(src []byte, maxDepth int) (*Value, []*Error) {
	if !json.Valid(src) {
		return nil, []*Error{syntaxError(src)}
	}
	p := parser{src: src, limit: maxDepth}
	v := p.value()
	if v == nil {
		return nil, p.errs
	}
	return v, p.errs
}

// syntaxError returns the problem of src, which is not valid JSON.
func syntaxError(src []byte) *Error {
	var v any
	err := json.Unmarshal(src, &v)
	off := len(src)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = int(se.Offset) - 1
	}
	if err == nil { // cannot happen: json.Valid and json.Unmarshal agree
		err = errors.New("invalid JSON")
	}
	return &Error{Off: off, Msg: "invalid JSON: " + err.Error(), Err: err}
}

// parser parses JSON that json.Valid accepted.
type parser struct {
	src   []byte
	pos   int
	depth int
	limit int
	ptr   Pointer
	errs  []*Error
}

func (p *parser) space() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// value parses the value at p.pos, or returns nil when the nesting is too
// deep.
func (p *parser) value() *Value {
	p.space()
	v := &Value{Off: p.pos}
	switch c := p.src[p.pos]; {
	case c == '{' || c == '[':
		p.depth++
		if p.depth > p.limit {
			p.errs = append(p.errs, &Error{Off: p.pos, Pointer: p.ptr.String(),
				Msg: fmt.Sprintf("nests deeper than %d arrays and objects", p.limit), Err: ErrTooDeep})
			return nil
		}
		p.pos++
		ok := false
		if c == '{' {
			ok = p.object(v)
		} else {
			ok = p.array(v)
		}
		p.depth--
		if !ok {
			return nil
		}
	case c == '"':
		v.Kind, v.Str = String, p.string()
	case c == 't':
		v.Kind, v.Bool = Bool, true
		p.pos += len("true")
	case c == 'f':
		v.Kind = Bool
		p.pos += len("false")
	case c == 'n':
		p.pos += len("null")
	default:
		start := p.pos
		for p.pos < len(p.src) && strings.IndexByte("+-0123456789.eE", p.src[p.pos]) >= 0 {
			p.pos++
		}
		// Valid JSON: the only error is a range error, whose ±Inf is kept.
		v.Kind = Number
		v.Num, _ = strconv.ParseFloat(string(p.src[start:p.pos]), 64)
	}
	v.End = p.pos
	return v
}

func (p *parser) string() string {
	start := p.pos
	p.pos++ // the opening quote
	esc := false
	for {
		switch p.src[p.pos] {
		case '\\':
			esc = true
			p.pos += 2
			continue
		case '"':
			p.pos++
			raw := p.src[start:p.pos]
			if !esc {
				return string(raw[1 : len(raw)-1])
			}
			return gjson.Parse(string(raw)).Str
		}
		p.pos++
	}
}

func (p *parser) object(v *Value) bool {
	v.Kind = Object
	p.space()
	if p.src[p.pos] == '}' {
		p.pos++
		return true
	}
	for {
		p.space()
		koff := p.pos
		key := p.string()
		p.space()
		p.pos++ // the colon
		p.ptr.Push(key)
		val := p.value()
		if val == nil {
			return false
		}
		if i := v.find(key); i >= 0 {
			p.errs = append(p.errs, &Error{Off: koff, Pointer: p.ptr.String(), Msg: "duplicate key: the last value counts"})
			v.Members[i].Val = val
		} else {
			v.Members = append(v.Members, Member{Key: key, Off: koff, Val: val})
			if len(v.Members) == 9 {
				v.index = make(map[string]int)
				for i, m := range v.Members {
					v.index[m.Key] = i
				}
			} else if v.index != nil {
				v.index[key] = len(v.Members) - 1
			}
		}
		p.ptr.Pop()
		p.space()
		p.pos++ // ',' or '}'
		if p.src[p.pos-1] == '}' {
			return true
		}
	}
}

func (p *parser) array(v *Value) bool {
	v.Kind = Array
	p.space()
	if p.src[p.pos] == ']' {
		p.pos++
		return true
	}
	for {
		p.ptr.Push(strconv.Itoa(len(v.Elems)))
		e := p.value()
		if e == nil {
			return false
		}
		p.ptr.Pop()
		v.Elems = append(v.Elems, e)
		p.space()
		p.pos++ // ',' or ']'
		if p.src[p.pos-1] == ']' {
			return true
		}
	}
}

// Position returns the line and column, counted from 1, of the byte offset
// off in src. Columns count bytes.
func Position(src []byte, off int) (line, col int) {
	off = min(max(off, 0), len(src))
	line = 1 + bytes.Count(src[:off], []byte{'\n'})
	return line, off - bytes.LastIndexByte(src[:off], '\n')
}

// A Pointer is a JSON Pointer (RFC 6901) as its reference tokens, built
// while a parser walks down a value.
type Pointer []string

// Push appends tok.
func (p *Pointer) Push(tok string) { *p = append(*p, tok) }

// Pop removes the last token.
func (p *Pointer) Pop() { *p = (*p)[:len(*p)-1] }

// String returns the pointer: "" for the whole document, else "/" and the
// escaped tokens, such as "/slots/0/a~1b".
func (p Pointer) String() string {
	var b strings.Builder
	for _, t := range p {
		b.WriteByte('/')
		b.WriteString(Escape(t))
	}
	return b.String()
}

// Escape escapes a reference token of a JSON Pointer: "~" as "~0", "/" as
// "~1".
func Escape(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}
