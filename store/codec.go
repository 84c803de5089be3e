package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"
)

// The binary encoding of a profile, version 2. Stores keep profiles in it
// because it encodes and decodes several times faster than JSON and with a
// few allocations per profile instead of thousands. All integers are
// varints (signed ones zig-zag), strings and byte strings are a uvarint
// length then the bytes, floats are 8 bytes little-endian IEEE 754, times
// are signed seconds and unsigned nanoseconds since 1970 UTC.
//
//	0xB3  profile version 3 (0xB2, version 2, has no event lengths in
//	      Recent; 0xB1, version 1, also ends after Truncated)
//	ID UserID Version FirstSeen LastSeen Visits
//	Counts Pages Categories Views          maps: count, then key value pairs
//	Purchases: Count Revenue First Last Categories Items Months[12]
//	Traits                                 byte string
//	Recent: count, then events, each a uvarint length then the event (see
//	      appendEvent); the lengths let a store's fold drop the oldest
//	      events and append new ones without decoding the others
//	Applied: count, then producer seq pairs; count, then ids
//	Truncated
//	MergedInto
//	Aliases: count, then ids
const (
	codecV1 = 0xB1
	codecV2 = 0xB2
	codecV3 = 0xB3
)

var errCodec = errors.New("malformed binary profile")

// Marshal encodes p for a store, in the binary encoding above.
func Marshal(p *Profile) ([]byte, error) {
	n := 256 + len(p.Traits) + 32*(len(p.Counts)+len(p.Pages)+len(p.Categories)+len(p.Views)) + 96*p.Recent.Len()
	b := make([]byte, 0, n)
	b = append(b, codecV3)
	b = appendString(b, p.ID)
	b = appendString(b, p.UserID)
	b = binary.AppendUvarint(b, p.Version)
	b = appendTime(b, p.FirstSeen)
	b = appendTime(b, p.LastSeen)
	b = binary.AppendVarint(b, int64(p.Visits))
	for _, m := range []map[string]int{p.Counts, p.Pages, p.Categories, p.Views} {
		b = appendMap(b, m)
	}
	pu := &p.Purchases
	b = binary.AppendVarint(b, int64(pu.Count))
	b = appendFloat(b, pu.Revenue)
	b = appendTime(b, pu.First)
	b = appendTime(b, pu.Last)
	b = appendMap(b, pu.Categories)
	b = appendMap(b, pu.Items)
	for _, m := range pu.Months {
		b = binary.AppendVarint(b, int64(m))
	}
	b = appendString(b, unsafeString(p.Traits))
	b = p.Recent.appendTo(b)
	b = binary.AppendUvarint(b, uint64(len(p.Applied.Seq)))
	for _, m := range p.Applied.Seq {
		b = appendString(b, m.Producer)
		b = binary.AppendUvarint(b, m.Seq)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Applied.IDs)))
	for _, id := range p.Applied.IDs {
		b = appendString(b, id)
	}
	b = binary.AppendVarint(b, int64(p.Truncated))
	b = appendString(b, p.MergedInto)
	b = binary.AppendUvarint(b, uint64(len(p.Aliases)))
	for _, id := range p.Aliases {
		b = appendString(b, id)
	}
	return b, nil
}

// Unmarshal decodes a profile encoded by Marshal. It also accepts the JSON
// form of a Profile.
func Unmarshal(b []byte) (*Profile, error) {
	if len(b) > 0 && b[0] == '{' {
		p := new(Profile)
		if err := json.Unmarshal(b, p); err != nil {
			return nil, fmt.Errorf("tailor/store: decode profile: %w", err)
		}
		return p, nil
	}
	if len(b) == 0 || (b[0] != codecV1 && b[0] != codecV2 && b[0] != codecV3) {
		return nil, fmt.Errorf("tailor/store: decode profile: unknown encoding")
	}
	// One copy of the input; every string of the profile is a part of it.
	d := decoder{s: string(b[1:])}
	p := new(Profile)
	p.ID = d.str()
	p.UserID = d.str()
	p.Version = d.uvarint()
	p.FirstSeen = d.time()
	p.LastSeen = d.time()
	p.Visits = d.int()
	p.Counts = d.strMap()
	p.Pages = d.strMap()
	p.Categories = d.strMap()
	p.Views = d.strMap()
	pu := &p.Purchases
	pu.Count = d.int()
	pu.Revenue = d.float()
	pu.First = d.time()
	pu.Last = d.time()
	pu.Categories = d.strMap()
	pu.Items = d.strMap()
	for i := range pu.Months {
		pu.Months[i] = d.int()
	}
	if t := d.str(); t != "" {
		p.Traits = json.RawMessage(t)
	}
	if b[0] == codecV3 {
		// The events stay encoded until something reads them.
		n := d.count(1)
		start := d.s
		for range n {
			if l := d.uvarint(); l > uint64(len(d.s)) {
				d.fail()
			} else {
				d.s = d.s[l:]
			}
		}
		if d.err == nil {
			p.Recent.raw, p.Recent.rawN = start[:len(start)-len(d.s)], n
		}
	} else if n := d.count(8); n > 0 {
		// Room for the ring to fill up without copying.
		p.Recent.buf = make([]Event, n, max(n, DefaultLimits.Recent))
		for i := range p.Recent.buf {
			d.event(&p.Recent.buf[i])
		}
	}
	if n := d.count(2); n > 0 {
		p.Applied.Seq = make([]Mark, n)
		for i := range p.Applied.Seq {
			p.Applied.Seq[i] = Mark{Producer: d.str(), Seq: d.uvarint()}
		}
	}
	if n := d.count(1); n > 0 {
		p.Applied.IDs = make([]string, n)
		for i := range p.Applied.IDs {
			p.Applied.IDs[i] = d.str()
		}
	}
	p.Truncated = d.int()
	if b[0] != codecV1 {
		p.MergedInto = d.str()
		if n := d.count(1); n > 0 {
			p.Aliases = make([]string, n)
			for i := range p.Aliases {
				p.Aliases[i] = d.str()
			}
		}
	}
	if d.err == nil && len(d.s) != 0 {
		d.err = errCodec
	}
	if d.err != nil {
		return nil, fmt.Errorf("tailor/store: decode profile: %w", d.err)
	}
	return p, nil
}

// Event field flags.
const (
	fID = 1 << iota
	fType
	fName
	fNewVisit
	fPath
	fCategory
	fItem
	fReferrer
	fSource
	fMedium
	fCampaign
	fDevice
	fItems
	fRevenue
	fProps
	fTraits
	fUserID
)

func appendEvent(b []byte, e *Event) []byte {
	strs := [...]struct {
		flag uint64
		s    string
	}{
		{fID, e.ID}, {fType, e.Type}, {fName, e.Name}, {fPath, e.Path}, {fCategory, e.Category},
		{fItem, e.Item}, {fReferrer, e.Referrer}, {fSource, e.Source}, {fMedium, e.Medium},
		{fCampaign, e.Campaign}, {fDevice, e.Device}, {fProps, unsafeString(e.Props)},
		{fTraits, unsafeString(e.Traits)}, {fUserID, e.UserID},
	}
	var flags uint64
	for _, f := range strs {
		if f.s != "" {
			flags |= f.flag
		}
	}
	if e.NewVisit {
		flags |= fNewVisit
	}
	if len(e.Items) > 0 {
		flags |= fItems
	}
	if e.Revenue != 0 {
		flags |= fRevenue
	}
	b = binary.AppendUvarint(b, flags)
	b = appendTime(b, e.Time)
	for _, f := range strs {
		if f.s != "" {
			b = appendString(b, f.s)
		}
	}
	if flags&fItems != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Items)))
		for _, it := range e.Items {
			b = appendString(b, it.ID)
			b = appendString(b, it.Category)
			b = appendFloat(b, it.Price)
			b = binary.AppendVarint(b, int64(it.Quantity))
		}
	}
	if flags&fRevenue != 0 {
		b = appendFloat(b, e.Revenue)
	}
	return b
}

func (d *decoder) event(e *Event) {
	flags := d.uvarint()
	e.Time = d.time()
	for _, f := range [...]struct {
		flag uint64
		dst  *string
	}{
		{fID, &e.ID}, {fType, &e.Type}, {fName, &e.Name}, {fPath, &e.Path}, {fCategory, &e.Category},
		{fItem, &e.Item}, {fReferrer, &e.Referrer}, {fSource, &e.Source}, {fMedium, &e.Medium},
		{fCampaign, &e.Campaign}, {fDevice, &e.Device},
	} {
		if flags&f.flag != 0 {
			*f.dst = d.str()
		}
	}
	if flags&fProps != 0 {
		e.Props = json.RawMessage(d.str())
	}
	if flags&fTraits != 0 {
		e.Traits = json.RawMessage(d.str())
	}
	if flags&fUserID != 0 {
		e.UserID = d.str()
	}
	e.NewVisit = flags&fNewVisit != 0
	if flags&fItems != 0 {
		if n := d.count(11); n > 0 {
			e.Items = make([]Item, n)
			for i := range e.Items {
				e.Items[i] = Item{ID: d.str(), Category: d.str(), Price: d.float(), Quantity: d.int()}
			}
		}
	}
	if flags&fRevenue != 0 {
		e.Revenue = d.float()
	}
}

// appendTo appends the ring in the encoding of Recent: the events still
// encoded as they are, the others encoded now.
func (r *Ring) appendTo(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(r.Len()))
	b = append(b, r.raw...)
	var tmp []byte
	for i := range len(r.buf) {
		tmp = appendEvent(tmp[:0], &r.buf[(r.head+i)%len(r.buf)])
		b = binary.AppendUvarint(b, uint64(len(tmp)))
		b = append(b, tmp...)
	}
	return b
}

// decodeRaw decodes n length-prefixed events; an event that does not
// decode is left out.
func decodeRaw(raw string, n int, out []Event) []Event {
	d := decoder{s: raw}
	for range n {
		l := d.uvarint()
		if d.err != nil || l > uint64(len(d.s)) {
			break
		}
		e := decoder{s: d.s[:l]}
		var ev Event
		e.event(&ev)
		if e.err == nil && len(e.s) == 0 {
			out = append(out, ev)
		}
		d.s = d.s[l:]
	}
	return out
}

// dropRaw drops the first of the length-prefixed events of raw.
func dropRaw(raw string) string {
	d := decoder{s: raw}
	l := d.uvarint()
	if d.err != nil || l > uint64(len(d.s)) {
		return ""
	}
	return d.s[l:]
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

func appendMap(b []byte, m map[string]int) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	for k, v := range m {
		b = appendString(b, k)
		b = binary.AppendVarint(b, int64(v))
	}
	return b
}

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// decoder reads the binary encoding; the first error sticks and every
// later read returns zero values.
type decoder struct {
	s   string
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCodec
	}
	d.s = ""
}

func (d *decoder) uvarint() uint64 {
	var x uint64
	var shift uint
	for i := 0; i < len(d.s) && i < binary.MaxVarintLen64; i++ {
		c := d.s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break
			}
			d.s = d.s[i+1:]
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	d.fail()
	return 0
}

func (d *decoder) varint() int64 {
	ux := d.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) int() int {
	v := d.varint()
	if v > math.MaxInt32 || v < math.MinInt32 {
		d.fail()
		return 0
	}
	return int(v)
}

// count reads a length of a list whose elements take at least min bytes
// each, refusing lengths the rest of the input cannot hold.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.s)/min) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.s)) {
		d.fail()
		return ""
	}
	s := d.s[:n]
	d.s = d.s[n:]
	return s
}

func (d *decoder) float() float64 {
	if len(d.s) < 8 {
		d.fail()
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64([]byte(d.s[:8])))
	d.s = d.s[8:]
	return f
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= 1e9 {
		d.fail()
		return time.Time{}
	}
	if sec == zeroUnix && nsec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

var zeroUnix = time.Time{}.Unix()

func (d *decoder) strMap() map[string]int {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	m := make(map[string]int, n)
	for range n {
		k := d.str()
		m[k] = d.int()
	}
	return m
}
