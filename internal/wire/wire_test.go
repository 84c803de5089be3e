package wire

import (
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestAppend: the bytes of each piece, which the entries stores have
// written are made of and must keep.
func TestAppend(t *testing.T) {
	at := time.Date(2026, 12, 7, 19, 31, 55, 123456789, time.UTC)
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"string", AppendString([]byte("x"), "visitor-1"), "x\x09visitor-1"},
		{"empty string", AppendString(nil, ""), "\x00"},
		{"long string", AppendString(nil, strings.Repeat("a", 200))[:2], "\xc8\x01"},
		{"front-coded", AppendFrontCoded(nil, "sku-1041", "sku-1077"), "\x06\x0277"},
		{"front-coded after nothing", AppendFrontCoded(nil, "", "sku"), "\x00\x03sku"},
		{"front-coded, a prefix of prev", AppendFrontCoded(nil, "skus", "sku"), "\x03\x00"},
		{"front-coded, unsorted", AppendFrontCoded(nil, "b", "a"), "\x00\x01a"},
		{"front-coded bytes, not runes", AppendFrontCoded(nil, "日本", "日曜"), "\x04\x02\x9b\x9c"},
		{"list", AppendFrontCodedList(nil, []string{"banner", "moneyball", "moneyballs"}), "\x03\x00\x06banner\x00\x09moneyball\x09\x01s"},
		{"empty list", AppendFrontCodedList(nil, nil), "\x00"},
		{"time", AppendTime(nil, at, 0), "\xd6\xa6\xb8\xb1\x0d\x95\x9a\xef:"},
		{"time 3 s before epoch", AppendTime(nil, at, at.Unix()+3), "\x05\x95\x9a\xef:"},
		{"time before 1970", AppendTime(nil, time.Unix(-1, 5), 0), "\x01\x05"},
		{"time in another location", AppendTime(nil, at.In(time.FixedZone("x", 3600)), 0), "\xd6\xa6\xb8\xb1\x0d\x95\x9a\xef:"},
	} {
		if string(c.got) != c.want {
			t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 7, 19, 31, 55, 123456789, time.UTC)
	times := []struct {
		t     time.Time
		epoch int64
	}{
		{at, 0}, {at, at.Unix()}, {at, at.Unix() + 1e6}, {time.Time{}, 0}, {time.Time{}, at.Unix()},
		{time.Unix(-1, 999_999_999).UTC(), 0}, {time.Unix(0, 0).UTC(), math.MinInt64},
		{time.Unix(math.MaxInt64-62135596800, 0).UTC(), math.MinInt64}, // wraps around
		{time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC), -1 << 40},
	}
	lists := [][]string{nil, {""}, {"a", "a", ""}, {"sku-1", "sku-10", "sku-100", "t"}, {"zz", "a", "zzz"}, {"日本", "日本語", "\xff\x00"}}
	var b []byte
	b = append(b, 7)
	for _, c := range times {
		b = AppendTime(b, c.t, c.epoch)
	}
	for _, l := range lists {
		b = AppendFrontCodedList(b, l)
	}
	b = binary.AppendUvarint(b, math.MaxUint64)
	b = binary.AppendVarint(b, math.MinInt64)
	b = AppendString(b, "end")

	d := NewDecoder(string(b))
	if c := d.Byte(); c != 7 {
		t.Fatalf("byte %d, want 7", c)
	}
	for _, c := range times {
		if got := d.Time(c.epoch); got != c.t {
			t.Errorf("time %v after %d read back as %v", c.t, c.epoch, got)
		}
	}
	for _, l := range lists {
		if got := d.FrontCodedList(); !reflect.DeepEqual(got, l) {
			t.Errorf("list %q read back as %q", l, got)
		}
	}
	if x := d.Uvarint(); x != math.MaxUint64 {
		t.Errorf("uvarint %d", x)
	}
	if x := d.Varint(); x != math.MinInt64 {
		t.Errorf("varint %d", x)
	}
	if s := d.Str(); s != "end" {
		t.Errorf("string %q", s)
	}
	if err := d.End(); err != nil || d.Len() != 0 {
		t.Fatalf("end: %v, %d bytes left", err, d.Len())
	}
}

// TestDecoderErrors: each malformed input is an error naming what was
// wrong and where, the first error sticks, and the reads after it return
// zero values.
func TestDecoderErrors(t *testing.T) {
	for _, c := range []struct {
		name, in string
		read     func(d *Decoder)
		want     string
	}{
		{"byte past the end", "", func(d *Decoder) { d.Byte() }, "byte 0 of 0: a byte past the end"},
		{"uvarint cut", "\x01\x80\x80", func(d *Decoder) { d.Byte(); d.Uvarint() }, "byte 1 of 3: a uvarint cut by the end"},
		{"uvarint of 11 bytes", strings.Repeat("\xff", 11), func(d *Decoder) { d.Uvarint() }, "byte 0 of 11: a uvarint overflowing 64 bits"},
		{"uvarint over 64 bits", strings.Repeat("\xff", 9) + "\x02", func(d *Decoder) { d.Uvarint() }, "byte 0 of 10: a uvarint overflowing 64 bits"},
		{"string past the end", "\x05abc", func(d *Decoder) { d.Str() }, "byte 1 of 4: 5 bytes wanted, 3 left"},
		{"next past the end", "ab", func(d *Decoder) { d.Next(3) }, "byte 0 of 2: 3 bytes wanted, 2 left"},
		{"prefix longer than prev", "x\x03\x00", func(d *Decoder) { d.Byte(); d.FrontCoded("ab") }, "byte 1 of 3: a prefix of 3 bytes shared with a string of 2"},
		{"first of a list sharing", "\x01\x01\x00", func(d *Decoder) { d.FrontCodedList() }, "byte 1 of 3: a prefix of 1 bytes shared with a string of 0"},
		{"count past the end", "\x02\x00\x00\x00", func(d *Decoder) { d.Count(2) }, "byte 0 of 4: a count of 2 elements of at least 2 bytes, 3 bytes left"},
		{"list count past the end", "\xff\xff\xff\xff\x0f\x00\x00", func(d *Decoder) { d.FrontCodedList() }, "byte 0 of 7: a count of 4294967295 elements"},
		{"nanoseconds", "\x00\x80\x94\xeb\xdc\x03", func(d *Decoder) { d.Time(0) }, "byte 1 of 6: 1000000000 nanoseconds"},
		{"time cut", "\x00", func(d *Decoder) { d.Time(0) }, "byte 1 of 1: a uvarint cut by the end"},
		{"bytes after the end", "\x01ab", func(d *Decoder) { d.Str() }, "byte 2 of 3: 1 bytes after the end"},
		{"a layout's own check", "\x01\x07", func(d *Decoder) { d.Byte(); d.Failf("a flag of %d", d.Byte()) }, "byte 2 of 2: a flag of 7"},
		{"first error sticks", "\x05ab\x00", func(d *Decoder) { d.Str(); d.Failf("later"); d.Byte() }, "byte 1 of 4: 5 bytes wanted, 3 left"},
	} {
		d := NewDecoder(c.in)
		c.read(&d)
		err := d.End()
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
			continue
		}
		if d.Err() != err || d.Len() != 0 {
			t.Errorf("%s: Err() = %v, Len() = %d after the error", c.name, d.Err(), d.Len())
		}
		if d.Byte() != 0 || d.Uvarint() != 0 || d.Varint() != 0 || d.Str() != "" || d.Next(0) != "" ||
			d.FrontCoded("ab") != "" || d.FrontCodedList() != nil || d.Count(1) != 0 || !d.Time(5).IsZero() {
			t.Errorf("%s: a read after the error returned a value", c.name)
		}
		if d.Err() != err {
			t.Errorf("%s: the error changed from %v to %v", c.name, err, d.Err())
		}
	}
}

// TestDecoderShares: strings read are the input's memory, not copies, as
// the stores rely on for one allocation per entry.
func TestDecoderShares(t *testing.T) {
	in := string(AppendFrontCodedList(AppendString(nil, "visitor"), []string{"a", "b"}))
	allocs := testing.AllocsPerRun(100, func() {
		d := NewDecoder(in)
		d.Str()
		d.Count(2)
		d.FrontCoded("")
		d.FrontCoded("")
		if d.End() != nil {
			panic(d.End())
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations reading strings, want 0", allocs)
	}
}

// FuzzDecoder reads arbitrary input with an arbitrary sequence of reads:
// no panic; a read consumes bytes, or fails and leaves none; the first
// error sticks; uvarints and varints read as encoding/binary reads them.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8}, "\x01\x09visitor-1\x01\xd6\xa6\xb8\xb1\x0d\x95\x9a\xef:\x03\x00\x08sku-1041\x05books\x06\x0277")
	f.Add([]byte{7, 7, 4}, "\x03\x00\x06banner\x00\x09moneyball\x09\x01s")
	f.Add([]byte{1, 1, 1}, strings.Repeat("\xff", 10)+"\x01")
	f.Fuzz(func(t *testing.T, ops []byte, in string) {
		d := NewDecoder(in)
		prev := ""
		var err error
		for _, op := range ops {
			rest := d.s
			switch op % 9 {
			case 0:
				c := d.Byte()
				if d.Err() == nil && (rest == "" || c != rest[0]) {
					t.Fatalf("Byte of %q: %d", rest, c)
				}
			case 1:
				x := d.Uvarint()
				want, n := binary.Uvarint([]byte(rest))
				if err == nil && ((n > 0) != (d.Err() == nil) || n > 0 && (x != want || len(d.s) != len(rest)-n)) {
					t.Fatalf("Uvarint of %q: %d, %v; binary.Uvarint: %d, %d", rest, x, d.Err(), want, n)
				}
			case 2:
				x := d.Varint()
				want, n := binary.Varint([]byte(rest))
				if err == nil && ((n > 0) != (d.Err() == nil) || n > 0 && x != want) {
					t.Fatalf("Varint of %q: %d, %v; binary.Varint: %d, %d", rest, x, d.Err(), want, n)
				}
			case 3:
				d.Str()
			case 4:
				prev = d.FrontCoded(prev)
			case 5:
				if n := d.Count(int(op/9%4) + 1); n > d.Len() {
					t.Fatalf("Count of %q: %d, more than the %d bytes left", rest, n, d.Len())
				}
			case 6:
				if tm := d.Time(int64(op)); d.Err() == nil && tm.Nanosecond() >= 1e9 {
					t.Fatalf("Time of %q: %v", rest, tm)
				}
			case 7:
				if l := d.FrontCodedList(); len(l) > len(rest) {
					t.Fatalf("FrontCodedList of %q: %d strings", rest, len(l))
				}
			case 8:
				d.Next(uint64(op / 9))
			}
			switch {
			case err != nil && d.Err() != err:
				t.Fatalf("the error %v became %v", err, d.Err())
			case d.Err() != nil && d.Len() != 0:
				t.Fatalf("%d bytes left after %v", d.Len(), d.Err())
			case d.Len() > len(rest) || !strings.HasSuffix(rest, d.s):
				t.Fatalf("a read went back from %q to %q", rest, d.s)
			}
			err = d.Err()
		}
		left := d.Len()
		if end := d.End(); (end == nil) != (err == nil && left == 0) {
			t.Fatalf("End: %v, with %v and %d bytes left", end, err, left)
		}
	})
}

// FuzzRoundTrip encodes arbitrary values as an arbitrary sequence of
// pieces and reads them back: the same values, to the end of the input.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6}, "sku-1041", "sku-1077,sku-2", int64(1796671915), uint32(123456789), int64(-5))
	f.Add([]byte{2, 2, 5, 5}, "", ",,", int64(math.MinInt64), uint32(0), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, ops []byte, s, list string, sec int64, nsec uint32, epoch int64) {
		tm := time.Unix(sec, int64(nsec%1e9)).UTC()
		var ss []string
		if list != "" {
			ss = strings.Split(list, ",")
		}
		var b []byte
		for _, op := range ops {
			switch op % 7 {
			case 0:
				b = AppendString(b, s)
			case 1:
				b = AppendFrontCoded(b, list, s)
			case 2:
				b = AppendFrontCodedList(b, ss)
			case 3:
				b = AppendTime(b, tm, epoch)
			case 4:
				b = AppendTime(b, time.Time{}, epoch)
			case 5:
				b = binary.AppendVarint(b, sec)
			case 6:
				b = append(b, op)
			}
		}
		d := NewDecoder(string(b))
		for _, op := range ops {
			var got, want any
			switch op % 7 {
			case 0:
				got, want = d.Str(), s
			case 1:
				got, want = d.FrontCoded(list), s
			case 2:
				got, want = d.FrontCodedList(), ss
			case 3:
				got, want = d.Time(epoch), tm
			case 4:
				got, want = d.Time(epoch), time.Time{}
			case 5:
				got, want = d.Varint(), sec
			case 6:
				got, want = d.Byte(), op
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("op %d: read %#v, want %#v (%v)", op, got, want, d.Err())
			}
		}
		if err := d.End(); err != nil {
			t.Fatal(err)
		}
	})
}
