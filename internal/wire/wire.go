// Package wire is the binary encoding that the stores' journal entries are
// made of: uvarints, length-prefixed strings, strings front-coded against
// the one before them (sorted ids share long prefixes), times, and a
// Decoder that reads them back and refuses, without panicking, input
// that these functions did not make.
//
// Each store lays out its own entry with these pieces (store/bolt,
// store/redis, store/postgres): this package fixes how a field is
// written, not which fields an entry has. Entries already written must
// read back the same, so what a function appends never changes.
package wire

import (
	"encoding/binary"
	"fmt"
	"time"
)

// AppendString appends s as its length (uvarint) and its bytes.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendFrontCoded appends s as the length of the prefix it shares with
// prev (uvarint) and the rest of it (AppendString): "sku-1077" after
// "sku-1041" is 6, 2, "77".
func AppendFrontCoded(b []byte, prev, s string) []byte {
	n := 0
	for n < len(prev) && n < len(s) && prev[n] == s[n] {
		n++
	}
	b = binary.AppendUvarint(b, uint64(n))
	return AppendString(b, s[n:])
}

// AppendFrontCodedList appends the number of strings of ss (uvarint), then
// each, front-coded after the one before it (the first after ""). Sorted
// strings take the least room; any order reads back.
func AppendFrontCodedList(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	prev := ""
	for _, s := range ss {
		b = AppendFrontCoded(b, prev, s)
		prev = s
	}
	return b
}

// AppendTime appends t as its Unix seconds less epoch (varint; a few
// bytes for a time near epoch, and a difference that overflows wraps
// around and reads back the same), then its nanoseconds (uvarint). Its
// location is not kept: it reads back in UTC.
func AppendTime(b []byte, t time.Time, epoch int64) []byte {
	b = binary.AppendVarint(b, t.Unix()-epoch)
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// A Decoder reads the encoding from a string. The first error sticks: the
// reads after it return zero values, and Err returns it. Strings read
// share the memory of the input string.
type Decoder struct {
	s   string // what is left to read
	n   int    // the input's length, for the offsets of errors
	err error
}

// NewDecoder returns a Decoder reading s.
func NewDecoder(s string) Decoder { return Decoder{s: s, n: len(s)} }

// Err returns the first error met, or nil.
func (d *Decoder) Err() error { return d.err }

// Len returns the number of bytes left to read.
func (d *Decoder) Len() int { return len(d.s) }

// End returns the first error met or, if bytes are left to read, an error
// saying so: the input was not entirely what the reads expected.
func (d *Decoder) End() error {
	if d.err == nil && d.s != "" {
		d.failAt(d.off(), fmt.Sprintf("%d bytes after the end", len(d.s)))
	}
	return d.err
}

// Failf records an error (unless one was met already) at the offset
// reached, after the field read last, as a layout's own checks find a
// value read wrong.
func (d *Decoder) Failf(format string, args ...any) {
	if d.err == nil {
		d.failAt(d.off(), fmt.Sprintf(format, args...))
	}
}

func (d *Decoder) off() int { return d.n - len(d.s) }

func (d *Decoder) failAt(off int, what string) {
	if d.err == nil {
		d.err = fmt.Errorf("byte %d of %d: %s", off, d.n, what)
	}
	d.s = ""
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.s == "" {
		d.failAt(d.off(), "a byte past the end")
		return 0
	}
	c := d.s[0]
	d.s = d.s[1:]
	return c
}

// Uvarint reads what binary.AppendUvarint appended.
func (d *Decoder) Uvarint() uint64 {
	var x uint64
	var shift uint
	for i := 0; i < len(d.s) && i < binary.MaxVarintLen64; i++ {
		c := d.s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				d.failAt(d.off(), "a uvarint overflowing 64 bits")
				return 0
			}
			d.s = d.s[i+1:]
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	if len(d.s) >= binary.MaxVarintLen64 {
		d.failAt(d.off(), "a uvarint overflowing 64 bits")
	} else {
		d.failAt(d.off(), "a uvarint cut by the end")
	}
	return 0
}

// Varint reads what binary.AppendVarint appended.
func (d *Decoder) Varint() int64 {
	ux := d.Uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

// Next reads the next n bytes.
func (d *Decoder) Next(n uint64) string {
	if n > uint64(len(d.s)) {
		d.failAt(d.off(), fmt.Sprintf("%d bytes wanted, %d left", n, len(d.s)))
		return ""
	}
	s := d.s[:n]
	d.s = d.s[n:]
	return s
}

// Str reads what AppendString appended.
func (d *Decoder) Str() string {
	return d.Next(d.Uvarint())
}

// FrontCoded reads what AppendFrontCoded appended after prev.
func (d *Decoder) FrontCoded(prev string) string {
	off := d.off()
	n := d.Uvarint()
	if n > uint64(len(prev)) {
		d.failAt(off, fmt.Sprintf("a prefix of %d bytes shared with a string of %d", n, len(prev)))
		return ""
	}
	rest := d.Str()
	if n == 0 {
		return rest // no copy
	}
	return prev[:n] + rest
}

// FrontCodedList reads what AppendFrontCodedList appended; nil for no
// string.
func (d *Decoder) FrontCodedList() []string {
	n := d.Count(2) // a shared length and a length
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	prev := ""
	for i := range ss {
		ss[i] = d.FrontCoded(prev)
		prev = ss[i]
	}
	return ss
}

// Count reads the length of a list (uvarint) whose elements take at least
// min bytes each (min > 0), refusing, before anything is allocated for
// them, more than the bytes left can hold.
func (d *Decoder) Count(min int) int {
	off := d.off()
	n := d.Uvarint()
	if n > uint64(len(d.s)/min) {
		d.failAt(off, fmt.Sprintf("a count of %d elements of at least %d bytes, %d bytes left", n, min, len(d.s)))
		return 0
	}
	return int(n)
}

// Time reads what AppendTime appended with the same epoch, in UTC. The
// zero time.Time reads back as the zero time.Time.
func (d *Decoder) Time(epoch int64) time.Time {
	sec := epoch + d.Varint()
	off := d.off()
	nsec := d.Uvarint()
	switch {
	case nsec >= 1e9:
		d.failAt(off, fmt.Sprintf("%d nanoseconds", nsec))
		return time.Time{}
	case d.err != nil:
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
