package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"
)

// The binary encoding of a profile, version 4. Stores keep profiles in it
// because it encodes and decodes several times faster than JSON, with a few
// allocations per profile, and is a fraction of JSON's size. All integers
// are varints (signed ones zig-zag), strings and byte strings are a uvarint
// length then the bytes, floats are 8 bytes little-endian IEEE 754, times
// are signed seconds and unsigned nanoseconds since 1970 UTC.
//
//	0xB4  profile version 4
//	ID UserID Version FirstSeen LastSeen Visits
//	Strings: count, then strings: the table that refs below index
//	Counts Pages Categories Views          maps: count, then (ref, value)
//	Purchases: Count Revenue First Last Categories Items Months[12]
//	Traits                                 byte string
//	Recent: count, base seconds, churn, byte length, then the events,
//	      each a uvarint length then the event (see appendEvent); the
//	      lengths let a store's fold drop the oldest events and append new
//	      ones without decoding the others
//	Applied: count, then producer seq pairs; count, then ids
//	Truncated
//	MergedInto
//	Aliases: count, then ids
//	then, only when the profile has Segments, SegmentChanges, Recheck or
//	Counted:
//	Segments: count, then strings
//	SegmentChanges: count, then per change EventID Visitor Time,
//	      Entered (count, then strings), Exited (count, then strings)
//	then, only when the profile has Recheck or Counted: flags (bit 0
//	      Counted, bit 1 a Recheck follows), then Recheck
//
// A profile's map keys and its events' paths, items, categories and other
// repeated strings are stored once, in the table; an event's sequenced ID
// is a ref to its producer and a number, its time a number of seconds from
// the ring's base. A profile of 200 page views takes about a third of the
// bytes of version 3. The table keeps the strings of events dropped from
// the ring until the ring is encoded whole again, which Marshal does once
// as many events were dropped as the ring holds (churn counts them).
//
// Earlier versions still decode: 0xB3 (events inline, without the table),
// 0xB2 (the same without event lengths) and 0xB1 (also ending after
// Truncated).
const (
	codecV1 = 0xB1
	codecV2 = 0xB2
	codecV3 = 0xB3
	codecV4 = 0xB4
)

var errCodec = errors.New("malformed binary profile")

// A writer is the scratch state of one Marshal: the string table being
// built and the index of its strings.
type writer struct {
	tab   []string
	slots []slot // open addressing over tab, by hash; len is a power of 2
	gen   uint32 // slots of another generation are empty
	n     int    // slots of this generation
	used  []bool // refs of an encoded ring's table still in use
	body  []byte // everything after the table
	ring  []byte // the encoded events
	tmp   []byte
}

type slot struct{ gen, ref uint32 }

var (
	writers  = sync.Pool{New: func() any { return &writer{gen: 1} }}
	hashSeed = maphash.MakeSeed()
)

// find returns the slot of s: the one holding s, or the empty one where s
// goes.
func (w *writer) find(s string) *slot {
	if w.n*2 >= len(w.slots) {
		w.rehash()
	}
	mask := uint64(len(w.slots) - 1)
	for i := maphash.String(hashSeed, s) & mask; ; i = (i + 1) & mask {
		sl := &w.slots[i]
		if sl.gen != w.gen || w.tab[sl.ref] == s {
			return sl
		}
	}
}

// rehash doubles the slots and indexes tab again, the first of equal
// strings winning.
func (w *writer) rehash() {
	w.slots, w.gen, w.n = make([]slot, max(256, 2*len(w.slots))), 1, 0
	for i, s := range w.tab {
		if sl := w.find(s); sl.gen != w.gen {
			*sl = slot{w.gen, uint32(i)}
			w.n++
		}
	}
}

// add appends the strings of tab to the table, keeping their refs.
func (w *writer) add(tab []string) {
	for _, s := range tab {
		i := uint32(len(w.tab))
		w.tab = append(w.tab, s)
		if sl := w.find(s); sl.gen != w.gen {
			*sl = slot{w.gen, i}
			w.n++
		}
	}
}

// ref returns the table index of s, adding s to the table if needed.
func (w *writer) ref(s string) uint64 {
	sl := w.find(s)
	if sl.gen != w.gen {
		*sl = slot{w.gen, uint32(len(w.tab))}
		w.tab = append(w.tab, s)
		w.n++
	}
	return uint64(sl.ref)
}

// has returns the table index of s, if s is in the table.
func (w *writer) has(s string) (uint32, bool) {
	sl := w.find(s)
	return sl.ref, sl.gen == w.gen
}

// reset empties the table and the buffers.
func (w *writer) reset() {
	if w.gen++; w.gen == 0 {
		clear(w.slots)
		w.gen = 1
	}
	w.n = 0
	clear(w.tab)
	w.tab, w.body, w.ring, w.tmp = w.tab[:0], w.body[:0], w.ring[:0], w.tmp[:0]
}

func (w *writer) release() {
	if len(w.slots) > 1<<13 || cap(w.used) > 1<<13 || cap(w.body) > 1<<20 || cap(w.ring) > 1<<20 {
		return // let an outsized writer go rather than keep its memory
	}
	w.reset()
	writers.Put(w)
}

// keepRaw tells whether to keep r's encoded events as they are, with the
// table they index. Once as many events were dropped as the ring holds, it
// looks for the strings that neither those events nor p's maps use any
// more, and says to encode the ring whole when they are a quarter of the
// table or more.
func (w *writer) keepRaw(p *Profile) bool {
	r := &p.Recent
	if r.rawN == 0 {
		return false
	}
	w.add(r.tab)
	if r.churn < r.Len() {
		return true
	}
	w.used = slices.Grow(w.used[:0], len(r.tab))[:len(r.tab)]
	clear(w.used)
	d := decoder{s: r.raw, used: w.used}
	for range r.rawN {
		l := d.uvarint()
		if d.err != nil || l > uint64(len(d.s)) {
			break
		}
		e := decoder{s: d.s[:l], used: w.used}
		var ev Event
		e.event(&ev, r.tab, r.base)
		d.s = d.s[l:]
	}
	for _, m := range []map[string]int{p.Counts, p.Pages, p.Categories, p.Views, p.Purchases.Categories, p.Purchases.Items} {
		for k := range m {
			if i, ok := w.has(k); ok {
				w.used[i] = true
			}
		}
	}
	unused := 0
	for _, u := range w.used {
		if !u {
			unused++
		}
	}
	return unused*4 < len(r.tab)
}

// Marshal encodes p for a store, in the binary encoding above. It does not
// change p.
func Marshal(p *Profile) ([]byte, error) { return p.AppendBinary(nil) }

// AppendBinary appends the encoding of Marshal to b, so that a store can
// reuse its buffers. It implements encoding.BinaryAppender.
func (p *Profile) AppendBinary(b []byte) ([]byte, error) {
	w := writers.Get().(*writer)
	defer w.release()
	r := &p.Recent
	keepRaw := w.keepRaw(p)
	if !keepRaw && r.rawN > 0 {
		w.reset() // forget the table of the events encoded before
	}
	body := w.body
	for _, m := range []map[string]int{p.Counts, p.Pages, p.Categories, p.Views} {
		body = w.appendMap(body, m)
	}
	pu := &p.Purchases
	body = binary.AppendVarint(body, int64(pu.Count))
	body = appendFloat(body, pu.Revenue)
	body = appendTime(body, pu.First)
	body = appendTime(body, pu.Last)
	body = w.appendMap(body, pu.Categories)
	body = w.appendMap(body, pu.Items)
	for _, m := range pu.Months {
		body = binary.AppendVarint(body, int64(m))
	}
	body = appendString(body, unsafeString(p.Traits))
	body = w.appendRing(body, r, keepRaw)
	body = binary.AppendUvarint(body, uint64(len(p.Applied.Seq)))
	for _, m := range p.Applied.Seq {
		body = appendString(body, m.Producer)
		body = binary.AppendUvarint(body, m.Seq)
	}
	body = binary.AppendUvarint(body, uint64(len(p.Applied.IDs)))
	for _, id := range p.Applied.IDs {
		body = appendString(body, id)
	}
	body = binary.AppendVarint(body, int64(p.Truncated))
	body = appendString(body, p.MergedInto)
	body = binary.AppendUvarint(body, uint64(len(p.Aliases)))
	for _, id := range p.Aliases {
		body = appendString(body, id)
	}
	if len(p.Segments) > 0 || len(p.SegmentChanges) > 0 || !p.Recheck.IsZero() || p.Counted {
		body = appendStrings(body, p.Segments)
		body = binary.AppendUvarint(body, uint64(len(p.SegmentChanges)))
		for _, c := range p.SegmentChanges {
			body = appendString(body, c.EventID)
			body = appendString(body, c.Visitor)
			body = appendTime(body, c.Time)
			body = appendStrings(body, c.Entered)
			body = appendStrings(body, c.Exited)
		}
		if flags := codecFlags(p); flags != 0 {
			body = binary.AppendUvarint(body, flags)
			if !p.Recheck.IsZero() {
				body = appendTime(body, p.Recheck)
			}
		}
	}
	w.body = body

	n := 64 + len(p.ID) + len(p.UserID) + len(w.body)
	for _, s := range w.tab {
		n += binary.MaxVarintLen32 + len(s)
	}
	out := slices.Grow(b, n)
	out = append(out, codecV4)
	out = appendString(out, p.ID)
	out = appendString(out, p.UserID)
	out = binary.AppendUvarint(out, p.Version)
	out = appendTime(out, p.FirstSeen)
	out = appendTime(out, p.LastSeen)
	out = binary.AppendVarint(out, int64(p.Visits))
	out = binary.AppendUvarint(out, uint64(len(w.tab)))
	for _, s := range w.tab {
		out = appendString(out, s)
	}
	return append(out, w.body...), nil
}

func (w *writer) appendMap(b []byte, m map[string]int) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	for k, v := range m {
		b = binary.AppendUvarint(b, w.ref(k))
		b = binary.AppendVarint(b, int64(v))
	}
	return b
}

// appendRing appends the ring: with keepRaw its encoded events as they are
// and the newer ones encoded now, otherwise every event encoded now.
func (w *writer) appendRing(b []byte, r *Ring, keepRaw bool) []byte {
	rb := w.ring
	var base int64
	churn := 0
	n := r.Len()
	if keepRaw {
		base, churn = r.base, r.churn
		if churn >= r.Len() { // its table was found worth keeping
			churn = 0
		}
		rb = append(rb, r.raw...)
	} else {
		var old []Event
		if r.rawN > 0 {
			old = decodeRaw(r, make([]Event, 0, r.rawN))
		}
		n = len(old) + len(r.buf)
		base = ringBase(old, r)
		for i := range old {
			rb = w.appendLenEvent(rb, &old[i], base)
		}
	}
	for i := range len(r.buf) {
		rb = w.appendLenEvent(rb, &r.buf[(r.head+i)%len(r.buf)], base)
	}
	w.ring = rb
	b = binary.AppendUvarint(b, uint64(n))
	b = binary.AppendVarint(b, base)
	b = binary.AppendUvarint(b, uint64(churn))
	b = binary.AppendUvarint(b, uint64(len(rb)))
	return append(b, rb...)
}

// ringBase returns the seconds of the first event with a time, of old and
// then r.buf, or 0.
func ringBase(old []Event, r *Ring) int64 {
	for i := range old {
		if !old[i].Time.IsZero() {
			return old[i].Time.Unix()
		}
	}
	for i := range r.buf {
		if e := &r.buf[(r.head+i)%len(r.buf)]; !e.Time.IsZero() {
			return e.Time.Unix()
		}
	}
	return 0
}

func (w *writer) appendLenEvent(b []byte, e *Event, base int64) []byte {
	w.tmp = w.appendEvent(w.tmp[:0], e, base)
	b = binary.AppendUvarint(b, uint64(len(w.tmp)))
	return append(b, w.tmp...)
}

// Unmarshal decodes a profile encoded by Marshal, in any version of the
// encoding. It also accepts the JSON form of a Profile. The profile does not
// refer to b.
func Unmarshal(b []byte) (*Profile, error) {
	if len(b) > 0 && b[0] == '{' {
		p := new(Profile)
		if err := json.Unmarshal(b, p); err != nil {
			return nil, fmt.Errorf("tailor/store: decode profile: %w", err)
		}
		return p, nil
	}
	// One copy of the input; every string of the profile is a part of it.
	return UnmarshalString(string(b))
}

// UnmarshalString is Unmarshal of a string, without a copy: the profile's
// strings are parts of s. Stores whose client returns values as strings
// use it to decode them as they are.
func UnmarshalString(s string) (*Profile, error) {
	if len(s) > 0 && s[0] == '{' {
		return Unmarshal([]byte(s))
	}
	if len(s) == 0 || s[0] < codecV1 || s[0] > codecV4 {
		return nil, fmt.Errorf("tailor/store: decode profile: unknown encoding")
	}
	v := s[0]
	d := decoder{s: s[1:]}
	p := &Profile{mem: s}
	p.ID = d.str()
	p.UserID = d.str()
	p.Version = d.uvarint()
	p.FirstSeen = d.time()
	p.LastSeen = d.time()
	p.Visits = d.int()
	var tab []string
	if v >= codecV4 {
		if n := d.count(1); n > 0 {
			tab = make([]string, n)
			for i := range tab {
				tab[i] = d.str()
			}
		}
	}
	strMap := func() map[string]int {
		if v >= codecV4 {
			return d.refMap(tab)
		}
		return d.strMap()
	}
	p.Counts = strMap()
	p.Pages = strMap()
	p.Categories = strMap()
	p.Views = strMap()
	pu := &p.Purchases
	pu.Count = d.int()
	pu.Revenue = d.float()
	pu.First = d.time()
	pu.Last = d.time()
	pu.Categories = strMap()
	pu.Items = strMap()
	for i := range pu.Months {
		pu.Months[i] = d.int()
	}
	if t := d.str(); t != "" {
		p.Traits = json.RawMessage(t)
	}
	switch v {
	case codecV4:
		// The events stay encoded until something reads them.
		r := &p.Recent
		n := d.uvarint()
		r.base = d.varint()
		churn := d.uvarint()
		raw := d.str()
		if n > uint64(len(raw)/2) || churn > math.MaxInt32 { // an event takes 2 bytes or more
			d.fail()
		}
		if d.err == nil && n > 0 {
			r.raw, r.rawN, r.tab, r.churn = raw, int(n), tab, int(churn)
		}
	case codecV3:
		n := d.count(1)
		start := d.s
		for range n {
			if l := d.uvarint(); l > uint64(len(d.s)) {
				d.fail()
			} else {
				d.s = d.s[l:]
			}
		}
		if d.err == nil && n > 0 {
			p.Recent.buf = decodeV3(start[:len(start)-len(d.s)], n, make([]Event, 0, max(n, DefaultLimits.Recent)))
		}
	default:
		if n := d.count(8); n > 0 {
			// Room for the ring to fill up without copying.
			p.Recent.buf = make([]Event, n, max(n, DefaultLimits.Recent))
			for i := range p.Recent.buf {
				d.eventV3(&p.Recent.buf[i])
			}
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
	if v != codecV1 {
		p.MergedInto = d.str()
		if n := d.count(1); n > 0 {
			p.Aliases = make([]string, n)
			for i := range p.Aliases {
				p.Aliases[i] = d.str()
			}
		}
	}
	if v == codecV4 && d.err == nil && len(d.s) != 0 {
		p.Segments = d.strs()
		if n := d.count(4); n > 0 {
			p.SegmentChanges = make([]SegmentChange, n)
			for i := range p.SegmentChanges {
				c := &p.SegmentChanges[i]
				c.EventID, c.Visitor, c.Time = d.str(), d.str(), d.time()
				c.Entered, c.Exited = d.strs(), d.strs()
			}
		}
		if d.err == nil && len(d.s) != 0 {
			flags := d.uvarint()
			p.Counted = flags&flagCounted != 0
			if flags&flagRecheck != 0 {
				p.Recheck = d.time()
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

// Flags of a profile of version 4.
const (
	flagCounted = 1 << iota
	flagRecheck
)

func codecFlags(p *Profile) uint64 {
	var f uint64
	if p.Counted {
		f |= flagCounted
	}
	if !p.Recheck.IsZero() {
		f |= flagRecheck
	}
	return f
}

// Event field flags of version 3.
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

// eventV3 decodes an event of versions 1 to 3, its strings inline.
func (d *decoder) eventV3(e *Event) {
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

// decodeV3 decodes n length-prefixed events of version 3; an event that
// does not decode is left out.
func decodeV3(raw string, n int, out []Event) []Event {
	d := decoder{s: raw}
	for range n {
		l := d.uvarint()
		if d.err != nil || l > uint64(len(d.s)) {
			break
		}
		e := decoder{s: d.s[:l]}
		var ev Event
		e.eventV3(&ev)
		if e.err == nil && len(e.s) == 0 {
			out = append(out, ev)
		}
		d.s = d.s[l:]
	}
	return out
}

// Event field flags of version 4, the most common in the first seven bits
// so that a page view's flags take one byte.
const (
	gSeqID = 1 << iota // the ID is a ref to its producer and a sequence number
	gType
	gPath
	gNanos // the time has nanoseconds
	gDevice
	gCategory
	gItem
	gReferrer
	gNewVisit
	gName
	gID // the ID is an inline string
	gSource
	gMedium
	gCampaign
	gItems
	gRevenue
	gProps
	gTraits
	gUserID
	gNoTime // the time is zero
)

// gRefs are the string fields stored as refs, in the order they are.
var gRefs = [...]uint64{gType, gPath, gDevice, gCategory, gItem, gReferrer, gName, gSource, gMedium, gCampaign, gUserID}

func refFields(e *Event) [len(gRefs)]*string {
	return [...]*string{&e.Type, &e.Path, &e.Device, &e.Category, &e.Item, &e.Referrer, &e.Name, &e.Source, &e.Medium, &e.Campaign, &e.UserID}
}

// appendEvent appends e in the encoding of version 4, its time relative
// to base seconds.
func (w *writer) appendEvent(b []byte, e *Event, base int64) []byte {
	var flags uint64
	prod, seq, isSeq := SplitID(e.ID)
	isSeq = isSeq && len(prod) <= maxSeqProducer
	switch {
	case isSeq:
		flags |= gSeqID
	case e.ID != "":
		flags |= gID
	}
	fields := refFields(e)
	for i, f := range fields {
		if *f != "" {
			flags |= gRefs[i]
		}
	}
	if e.Time.IsZero() {
		flags |= gNoTime
	} else if e.Time.Nanosecond() != 0 {
		flags |= gNanos
	}
	if e.NewVisit {
		flags |= gNewVisit
	}
	if len(e.Items) > 0 {
		flags |= gItems
	}
	if e.Revenue != 0 {
		flags |= gRevenue
	}
	if len(e.Props) > 0 {
		flags |= gProps
	}
	if len(e.Traits) > 0 {
		flags |= gTraits
	}
	b = binary.AppendUvarint(b, flags)
	if flags&gNoTime == 0 {
		b = binary.AppendVarint(b, e.Time.Unix()-base)
		if flags&gNanos != 0 {
			b = binary.AppendUvarint(b, uint64(e.Time.Nanosecond()))
		}
	}
	if isSeq {
		b = binary.AppendUvarint(b, w.ref(prod))
		b = binary.AppendUvarint(b, seq)
	} else if e.ID != "" {
		b = appendString(b, e.ID)
	}
	for i, f := range fields {
		if flags&gRefs[i] != 0 {
			b = binary.AppendUvarint(b, w.ref(*f))
		}
	}
	if flags&gProps != 0 {
		b = appendString(b, unsafeString(e.Props))
	}
	if flags&gTraits != 0 {
		b = appendString(b, unsafeString(e.Traits))
	}
	if flags&gItems != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Items)))
		for _, it := range e.Items {
			b = binary.AppendUvarint(b, w.ref(it.ID))
			b = binary.AppendUvarint(b, w.ref(it.Category))
			b = appendFloat(b, it.Price)
			b = binary.AppendVarint(b, int64(it.Quantity))
		}
	}
	if flags&gRevenue != 0 {
		b = appendFloat(b, e.Revenue)
	}
	return b
}

// event decodes an event of version 4. A sequenced ID is returned as its
// parts, for the caller to format.
func (d *decoder) event(e *Event, tab []string, base int64) (prod string, seq uint64) {
	flags := d.uvarint()
	if flags&gNoTime == 0 {
		sec := base + d.varint()
		var ns uint64
		if flags&gNanos != 0 {
			if ns = d.uvarint(); ns >= 1e9 {
				d.fail()
			}
		}
		e.Time = time.Unix(sec, int64(ns)).UTC()
	}
	switch {
	case flags&gSeqID != 0:
		if prod, seq = d.ref(tab), d.uvarint(); len(prod) > maxSeqProducer {
			d.fail()
		}
	case flags&gID != 0:
		e.ID = d.str()
	}
	for i, f := range refFields(e) {
		if flags&gRefs[i] != 0 {
			*f = d.ref(tab)
		}
	}
	if flags&gProps != 0 {
		e.Props = json.RawMessage(d.str())
	}
	if flags&gTraits != 0 {
		e.Traits = json.RawMessage(d.str())
	}
	e.NewVisit = flags&gNewVisit != 0
	if flags&gItems != 0 {
		if n := d.count(11); n > 0 {
			e.Items = make([]Item, n)
			for i := range e.Items {
				e.Items[i] = Item{ID: d.ref(tab), Category: d.ref(tab), Price: d.float(), Quantity: d.int()}
			}
		}
	}
	if flags&gRevenue != 0 {
		e.Revenue = d.float()
	}
	return prod, seq
}

// maxSeqProducer is the longest producer whose sequenced IDs are encoded as
// a ref and a number; a longer one's are inline. It bounds what decoding
// the IDs can allocate.
const maxSeqProducer = 64

// decodeRaw appends the r.rawN encoded events of r to out. An event that
// does not decode (the stored bytes were damaged) is a zero Event, so that
// the ring keeps its length. The sequenced IDs share one allocation.
func decodeRaw(r *Ring, out []Event) []Event {
	type seqID struct{ ev, from, to int }
	var (
		ids  []byte
		seqs []seqID
	)
	d := decoder{s: r.raw}
	for range r.rawN {
		l := d.uvarint()
		if d.err != nil || l > uint64(len(d.s)) {
			d.fail()
			out = append(out, Event{})
			continue
		}
		e := decoder{s: d.s[:l]}
		var ev Event
		prod, seq := e.event(&ev, r.tab, r.base)
		d.s = d.s[l:]
		if e.err != nil || len(e.s) != 0 {
			out = append(out, Event{})
			continue
		}
		if prod != "" || seq != 0 {
			if ids == nil {
				ids = make([]byte, 0, min(r.rawN, 256)*(len(prod)+8))
			}
			from := len(ids)
			ids = append(ids, prod...)
			ids = append(ids, ':')
			ids = strconv.AppendUint(ids, seq, 10)
			seqs = append(seqs, seqID{len(out), from, len(ids)})
		}
		out = append(out, ev)
	}
	all := unsafeString(ids)
	for _, s := range seqs {
		out[s.ev].ID = all[s.from:s.to]
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

// appendStrings appends a count, then the strings.
func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// decoder reads the binary encoding; the first error sticks and every
// later read returns zero values.
type decoder struct {
	s    string
	err  error
	used []bool // if not nil, ref marks the refs it reads
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
	if v > math.MaxInt || v < math.MinInt {
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

// strs decodes what appendStrings appended; nil for none.
func (d *decoder) strs() []string {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str()
	}
	return out
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

// ref reads a ref to a string of tab.
func (d *decoder) ref(tab []string) string {
	i := d.uvarint()
	if i >= uint64(len(tab)) {
		d.fail()
		return ""
	}
	if d.used != nil {
		d.used[i] = true
	}
	return tab[i]
}

func (d *decoder) refMap(tab []string) map[string]int {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	m := make(map[string]int, n)
	for range n {
		k := d.ref(tab)
		m[k] = d.int()
	}
	return m
}

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
