package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The editor changes one segment or one slot variant of a definitions
// file at a time. It reads the file as JSON objects whose members keep
// their order, changes the part edited, and writes the file again,
// indented; what it does not edit (saved groups, experiments, unknown
// members that the parsers will report) it keeps as it was.

// member is a member of a JSON object, its value kept as text.
type member struct {
	Key string
	Val json.RawMessage
}

// object is a JSON object whose members keep their order.
type object []member

// parseObject reads a JSON object, keeping the order of its members.
func parseObject(data []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("want a JSON object, not %s", describeToken(tok))
	}
	var o object
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		o = append(o, member{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("text after the JSON object")
	}
	return o, nil
}

func describeToken(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		return "an array"
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

// parseArray reads a JSON array, keeping its elements as text.
func parseArray(data []byte) ([]json.RawMessage, error) {
	var out []json.RawMessage
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func (o object) get(key string) json.RawMessage {
	for _, m := range o {
		if m.Key == key {
			return m.Val
		}
	}
	return nil
}

// str returns the member key as a string, "" if it is missing or not a
// string.
func (o object) str(key string) string {
	var s string
	json.Unmarshal(o.get(key), &s)
	return s
}

// set replaces the member key, or appends it.
func (o *object) set(key string, v json.RawMessage) {
	for i, m := range *o {
		if m.Key == key {
			(*o)[i].Val = v
			return
		}
	}
	*o = append(*o, member{key, v})
}

func (o *object) del(key string) {
	for i, m := range *o {
		if m.Key == key {
			*o = append((*o)[:i], (*o)[i+1:]...)
			return
		}
	}
}

// marshal writes o compactly, members in order.
func (o object) marshal() json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.Key)
		b.Write(k)
		b.WriteByte(':')
		if err := json.Compact(&b, m.Val); err != nil {
			b.Write(m.Val)
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

// indent returns raw indented by two spaces, or raw itself if it is not
// valid JSON.
func indent(raw []byte, prefix string) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, prefix, "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// listDoc is a definitions file: an object whose member list holds the
// items (segments or slots), or just the list.
type listDoc struct {
	list  string // "segments" or "slots"
	array bool   // the file is the bare list
	head  object // the other members of the file
	items []object
}

// parseListDoc reads a segments file (list "segments") or a slots file
// (list "slots"). An empty text is an empty file.
func parseListDoc(text, list string) (*listDoc, error) {
	d := &listDoc{list: list}
	data := bytes.TrimSpace([]byte(text))
	if len(data) == 0 {
		return d, nil
	}
	var raws []json.RawMessage
	if data[0] == '[' {
		d.array = true
		var err error
		if raws, err = parseArray(data); err != nil {
			return nil, err
		}
	} else {
		o, err := parseObject(data)
		if err != nil {
			return nil, err
		}
		for _, m := range o {
			if m.Key == list {
				if raws, err = parseArray(m.Val); err != nil {
					return nil, fmt.Errorf("%q: %w", list, err)
				}
				continue
			}
			d.head = append(d.head, m)
		}
	}
	for i, raw := range raws {
		o, err := parseObject(raw)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", list, i, err)
		}
		d.items = append(d.items, o)
	}
	return d, nil
}

// find returns the index of the item named name, or -1.
func (d *listDoc) find(name string) int {
	for i, o := range d.items {
		if o.str("name") == name {
			return i
		}
	}
	return -1
}

// names returns the names of the items.
func (d *listDoc) names() []string {
	out := make([]string, len(d.items))
	for i, o := range d.items {
		out[i] = o.str("name")
	}
	return out
}

// text writes the file, indented.
func (d *listDoc) text() string {
	t, _ := d.textWith(-1, "")
	return t
}

// textWith writes the file with the item at index i (len(items) to add one)
// replaced by raw, written as it is from the first column of the line it
// returns (counting from 1), so that a problem found in it can be placed
// in raw; i < 0 replaces nothing.
func (d *listDoc) textWith(i int, raw string) (text string, line int) {
	var b strings.Builder
	if len(d.items) == 0 && i < 0 && len(d.head) == 0 && !d.array {
		return "{\"" + d.list + "\": []}\n", 0
	}
	n := len(d.items)
	if i == n {
		n++
	}
	writeItems := func(pre string) {
		b.WriteString("[")
		for k := range n {
			if k > 0 {
				b.WriteString(",")
			}
			b.WriteString("\n")
			if k == i {
				line = strings.Count(b.String(), "\n") + 1
				b.WriteString(raw)
				b.WriteString("\n")
				continue
			}
			b.WriteString(pre + "  ")
			b.WriteString(indent(d.items[k].marshal(), pre+"  "))
		}
		b.WriteString("\n" + pre + "]")
	}
	if d.array {
		writeItems("")
		b.WriteString("\n")
		return b.String(), line
	}
	b.WriteString("{\n")
	for _, m := range d.head {
		k, _ := json.Marshal(m.Key)
		b.WriteString("  " + string(k) + ": " + indent(m.Val, "  ") + ",\n")
	}
	b.WriteString("  \"" + d.list + "\": ")
	writeItems("  ")
	b.WriteString("\n}\n")
	return b.String(), line
}

// canonical returns the items by name, compacted, to compare two files.
func (d *listDoc) canonical() map[string]string {
	out := make(map[string]string, len(d.items))
	for _, o := range d.items {
		out[o.str("name")] = string(o.marshal())
	}
	return out
}
