package rules

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/tailorhq/tailor/store"
)

// The members of the document, in slot order. slotNames holds their names.
const (
	slotID = iota
	slotUserID
	slotFirstSeen
	slotLastSeen
	slotVisits
	slotCounts
	slotPages
	slotCategories
	slotViews
	slotPurchases
	slotTraits
	slotRequest
	slotRecent
	numSlots
)

var slotNames = [numSlots]string{
	"id", "userId", "firstSeen", "lastSeen", "visits", "counts", "pages",
	"categories", "views", "purchases", "traits", "request", "recent",
}

// slotOrder lists the slots by name, the order of the document's keys.
var slotOrder = func() []int {
	o := make([]int, numSlots)
	for i := range o {
		o[i] = i
	}
	slices.SortFunc(o, func(a, b int) int { return strings.Compare(slotNames[a], slotNames[b]) })
	return o
}()

// docSlot returns the slot of the member name, or -1.
func docSlot(name string) int {
	for i, n := range slotNames {
		if n == name {
			return i
		}
	}
	return -1
}

// factField returns the bit of the request fact named name, or 0.
func factField(name string) Fields {
	for i, n := range factNames {
		if n == name {
			return 1 << i
		}
	}
	return 0
}

// docReads returns the request facts that the document path reads.
func docReads(path string) Fields {
	first, rest, more := strings.Cut(path, ".")
	if first != "request" {
		return 0
	}
	if !more {
		return AllFields
	}
	name, _, _ := strings.Cut(rest, ".")
	return factField(name)
}

// document is the document that conditions read, rendered member by member
// when a condition first reads the member, and the ring of recent events
// element by element. Rendered JSON is appended to buf and read through
// strings that share its memory: buf is only appended to until reset, so
// they stay valid.
type document struct {
	prof     *store.Profile
	facts    *Facts
	newVisit bool // the request begins a visit that prof.Visits does not count
	have     [numSlots]bool
	vals     [numSlots]gjson.Result
	buf      []byte
	keys     []string // scratch, to sort a map's keys
	elems    []string // the rendered recent events, "" until rendered
	rendered bool     // some of elems is set: reset clears them
	// order is 0 until the order of the recent events' times is known,
	// then orderSorted or orderUnsorted.
	order uint8
	// The traits' keys and values, once read.
	traitsRead bool
	traitKeys  []string
	traitVals  []gjson.Result
}

const (
	orderSorted = 1 + iota
	orderUnsorted
)

func (d *document) reset(p *store.Profile, f *Facts, newVisit bool) {
	d.prof, d.facts, d.newVisit = p, f, newVisit
	d.have = [numSlots]bool{}
	d.vals = [numSlots]gjson.Result{}
	d.order = 0
	d.traitsRead = false
	clear(d.traitKeys)
	d.traitKeys = d.traitKeys[:0]
	clear(d.traitVals)
	d.traitVals = d.traitVals[:0]
	d.buf = d.buf[:0]
	// Only rendered events need clearing (most evaluations render none),
	// so that elems[:cap] is all "" again.
	if d.rendered {
		clear(d.elems)
		d.rendered = false
	}
	d.elems = d.elems[:0]
	if p != nil {
		n := p.Recent.Len()
		if cap(d.elems) < n {
			d.elems = make([]string, n)
		}
		d.elems = d.elems[:n]
	}
}

// str returns buf[start:] as a string that shares its memory.
func (d *document) str(start int) string {
	b := d.buf[start:]
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// member returns the member of the document in slot: null when it has none.
func (d *document) member(slot int) gjson.Result {
	if d.have[slot] {
		return d.vals[slot]
	}
	d.have[slot] = true
	if d.prof == nil && slot != slotRequest {
		return gjson.Result{}
	}
	if slot == slotRecent {
		for i := range d.elems {
			d.ringElem(i) // the events first: they are appended to buf
		}
	}
	start := len(d.buf)
	if !d.render(slot) {
		return gjson.Result{}
	}
	d.vals[slot] = gjson.Parse(d.str(start))
	return d.vals[slot]
}

// render appends the member in slot to buf, and reports false if the
// document has none.
func (d *document) render(slot int) bool {
	p := d.prof
	b := d.buf
	switch slot {
	case slotID:
		b = appendJSONString(b, p.ID)
	case slotUserID:
		if p.UserID == "" {
			return false
		}
		b = appendJSONString(b, p.UserID)
	case slotFirstSeen:
		if p.FirstSeen.IsZero() {
			return false
		}
		b = appendJSONTime(b, p.FirstSeen)
	case slotLastSeen:
		if p.LastSeen.IsZero() {
			return false
		}
		b = appendJSONTime(b, p.LastSeen)
	case slotVisits:
		n := p.Visits
		if d.newVisit {
			n++
		}
		b = strconv.AppendInt(b, int64(n), 10)
	case slotCounts:
		b = d.appendCounts(b, p.Counts)
	case slotPages:
		b = d.appendCounts(b, p.Pages)
	case slotCategories:
		b = d.appendCounts(b, p.Categories)
	case slotViews:
		b = d.appendCounts(b, p.Views)
	case slotPurchases:
		pu := &p.Purchases
		b = append(b, `{"categories":`...)
		b = d.appendCounts(b, pu.Categories)
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, int64(pu.Count), 10)
		if !pu.First.IsZero() {
			b = append(b, `,"first":`...)
			b = appendJSONTime(b, pu.First)
		}
		b = append(b, `,"items":`...)
		b = d.appendCounts(b, pu.Items)
		if !pu.Last.IsZero() {
			b = append(b, `,"last":`...)
			b = appendJSONTime(b, pu.Last)
		}
		b = append(b, `,"months":[`...)
		for i, n := range pu.Months {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(n), 10)
		}
		b = append(b, `],"revenue":`...)
		b = appendJSONFloat(b, pu.Revenue)
		b = append(b, '}')
	case slotTraits:
		if len(p.Traits) == 0 {
			b = append(b, "{}"...)
		} else {
			b = append(b, p.Traits...)
		}
	case slotRequest:
		b = appendFacts(b, d.facts)
	case slotRecent:
		b = append(b, '[')
		for i, e := range d.elems {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, e...)
		}
		b = append(b, ']')
	}
	d.buf = b
	return true
}

// appendCounts appends m as a JSON object with sorted keys.
func (d *document) appendCounts(b []byte, m map[string]int) []byte {
	keys := d.keys[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(m[k]), 10)
	}
	clear(keys)
	d.keys = keys[:0]
	return append(b, '}')
}

func appendFacts(b []byte, f *Facts) []byte {
	b = append(b, '{')
	for i, v := range [...]string{f.Path, f.Referrer, f.Source, f.Medium, f.Campaign, f.Device, f.Country} {
		if v == "" {
			continue
		}
		b = appendJSONString(b, factNames[i])
		b = append(b, ':')
		b = appendJSONString(b, v)
		b = append(b, ',')
	}
	b = append(b, `"new":`...)
	b = strconv.AppendBool(b, f.New)
	return append(b, '}')
}

// hasRing reports whether the document has a ring of recent events.
func (d *document) hasRing() bool { return d.prof != nil }

// ringLen returns the number of recent events.
func (d *document) ringLen() int { return len(d.elems) }

// The times that RFC 3339 can write: years 0 to 9999.
var (
	rfc3339Min = time.Date(0, time.January, 1, 0, 0, 0, 0, time.UTC)
	rfc3339End = time.Date(10000, time.January, 1, 0, 0, 0, 0, time.UTC)
)

// ringTime returns the time of the i-th recent event, oldest first, and
// false when its rendering is not an RFC 3339 time (a year outside 0-9999).
func (d *document) ringTime(i int) (time.Time, bool) {
	t := d.prof.Recent.At(i).Time
	if t.Before(rfc3339Min) || !t.Before(rfc3339End) {
		return time.Time{}, false
	}
	return t, true
}

// ringStart returns the index of the first recent event that may be at or
// after since: the events are in the order of the ring, which is usually
// the order of their times, but need not be.
func ringStart(p *store.Profile, d *document, since time.Time) int {
	r := &p.Recent
	n := r.Len()
	if d.order == 0 {
		d.order = orderSorted
		for i := 1; i < n; i++ {
			if r.At(i).Time.Before(r.At(i - 1).Time) {
				d.order = orderUnsorted
				break
			}
		}
	}
	if d.order != orderSorted {
		return 0
	}
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.At(m).Time.Before(since) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// Lookups that read a value of the document from the profile, without
// rendering its member.
const (
	lookNone     = iota
	lookMap      // a key of counts, pages, categories or views
	lookPurchase // purchases.count, .revenue, .first or .last
	lookPurchaseMap
	lookFact  // a request fact
	lookTrait // a trait, by its key
)

// lookup returns the value of the document that f looks up.
func (d *document) lookup(f *condField) gjson.Result {
	p := d.prof
	if p == nil && f.look != lookFact {
		return gjson.Result{}
	}
	var m map[string]int
	switch f.look {
	case lookMap:
		switch f.slot {
		case slotCounts:
			m = p.Counts
		case slotPages:
			m = p.Pages
		case slotCategories:
			m = p.Categories
		case slotViews:
			m = p.Views
		}
	case lookPurchaseMap:
		m = p.Purchases.Items
		if f.sub == "categories" {
			m = p.Purchases.Categories
		}
	case lookPurchase:
		pu := &p.Purchases
		switch f.key {
		case "count":
			return condNumber(pu.Count)
		case "revenue":
			if math.IsNaN(pu.Revenue) || math.IsInf(pu.Revenue, 0) {
				return gjson.Result{}
			}
			return gjson.Result{Type: gjson.Number, Num: pu.Revenue}
		case "first":
			return d.timeResult(pu.First)
		}
		return d.timeResult(pu.Last)
	case lookFact:
		if f.fact == FieldNew {
			if d.facts.New {
				return gjson.Result{Type: gjson.True}
			}
			return gjson.Result{Type: gjson.False}
		}
		v := factValue(d.facts, f.fact)
		switch {
		case v == "":
			return gjson.Result{}
		case utf8.ValidString(v):
			return gjson.Result{Type: gjson.String, Str: v}
		}
		start := len(d.buf)
		d.buf = appendJSONString(d.buf, v)
		return gjson.Parse(d.str(start))
	}
	n, ok := m[f.key]
	if !ok {
		return gjson.Result{}
	}
	return condNumber(n)
}

// timeResult returns t as the document writes it: null if it is zero.
func (d *document) timeResult(t time.Time) gjson.Result {
	if t.IsZero() {
		return gjson.Result{}
	}
	start := len(d.buf)
	d.buf = appendJSONTime(d.buf, t)
	raw := d.str(start)
	return gjson.Result{Type: gjson.String, Raw: raw, Str: raw[1 : len(raw)-1]}
}

// ringElem returns the i-th recent event, oldest first, rendering it on
// first use.
func (d *document) ringElem(i int) gjson.Result {
	if d.elems[i] == "" {
		start := len(d.buf)
		d.buf = appendEvent(d.buf, d.prof.Recent.At(i))
		d.elems[i] = d.str(start)
		d.rendered = true
	}
	return gjson.Result{Type: gjson.JSON, Raw: d.elems[i]}
}

// appendTo appends the whole document to b.
func (d *document) appendTo(b []byte) []byte {
	b = append(b, '{')
	first := true
	for _, slot := range slotOrder {
		v := d.member(slot)
		if !v.Exists() {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, slotNames[slot])
		b = append(b, ':')
		raw := v.Raw
		if slot == slotTraits && !json.Valid([]byte(raw)) {
			raw = "{}"
		}
		b = append(b, raw...)
	}
	return append(b, '}')
}

// appendEvent appends e as a JSON object, its time first.
func appendEvent(b []byte, e *store.Event) []byte {
	b = append(b, `{"time":`...)
	b = appendJSONTime(b, e.Time)
	b = appendField(b, "type", e.Type)
	b = appendField(b, "name", e.Name)
	b = appendField(b, "path", e.Path)
	b = appendField(b, "category", e.Category)
	b = appendField(b, "item", e.Item)
	b = appendField(b, "referrer", e.Referrer)
	b = appendField(b, "utmSource", e.Source)
	b = appendField(b, "utmMedium", e.Medium)
	b = appendField(b, "utmCampaign", e.Campaign)
	b = appendField(b, "device", e.Device)
	if e.NewVisit {
		b = append(b, `,"newVisit":true`...)
	}
	if len(e.Items) > 0 {
		b = append(b, `,"items":[`...)
		for i, it := range e.Items {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = appendJSONString(b, it.ID)
			if it.Category != "" {
				b = append(b, `,"category":`...)
				b = appendJSONString(b, it.Category)
			}
			if it.Price != 0 {
				b = append(b, `,"price":`...)
				b = appendJSONFloat(b, it.Price)
			}
			if it.Quantity != 0 {
				b = append(b, `,"quantity":`...)
				b = strconv.AppendInt(b, int64(it.Quantity), 10)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if e.Revenue != 0 {
		b = append(b, `,"revenue":`...)
		b = appendJSONFloat(b, e.Revenue)
	}
	if len(e.Props) > 0 && json.Valid(e.Props) {
		b = append(b, `,"props":`...)
		b = append(b, e.Props...)
	}
	if len(e.Traits) > 0 && json.Valid(e.Traits) {
		b = append(b, `,"traits":`...)
		b = append(b, e.Traits...)
	}
	b = appendField(b, "userId", e.UserID)
	b = appendField(b, "id", e.ID)
	return append(b, '}')
}

// appendField appends `,"key":"v"` unless v is empty.
func appendField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendJSONString(b, v)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, as encoding/json writes it
// without HTML escaping: invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONTime appends t in UTC as an RFC 3339 JSON string with as many
// fractional digits as it needs, as time.RFC3339Nano does.
func appendJSONTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		b = append(b, '"')
		b = t.AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	}
	hour, min, sec := t.Clock()
	two := func(n int) { b = append(b, byte('0'+n/10), byte('0'+n%10)) }
	b = append(b, '"')
	two(year / 100)
	two(year % 100)
	b = append(b, '-')
	two(int(month))
	b = append(b, '-')
	two(day)
	b = append(b, 'T')
	two(hour)
	b = append(b, ':')
	two(min)
	b = append(b, ':')
	two(sec)
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z', '"')
}

// appendJSONFloat appends f as encoding/json does; NaN and infinities,
// which JSON cannot hold, as null.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	abs := math.Abs(f)
	fmt := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		fmt = 'e'
	}
	b = strconv.AppendFloat(b, f, fmt, -1, 64)
	if fmt == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// trait returns the value of the trait key, as the traits member of the
// document has it: the first of duplicate keys counts.
func (d *document) trait(key string) gjson.Result {
	if d.prof == nil {
		return gjson.Result{}
	}
	if !d.traitsRead {
		d.traitsRead = true
		t := d.member(slotTraits)
		t.ForEach(func(k, v gjson.Result) bool {
			d.traitKeys = append(d.traitKeys, k.Str)
			d.traitVals = append(d.traitVals, v)
			return true
		})
	}
	for i, k := range d.traitKeys {
		if k == key {
			return d.traitVals[i]
		}
	}
	return gjson.Result{}
}

// The scalar fields of events, as the document names them.
const (
	evTime = 1 + iota
	evType
	evName
	evPath
	evCategory
	evItem
	evReferrer
	evSource
	evMedium
	evCampaign
	evDevice
	evNewVisit
	evRevenue
	evUserID
	evID
)

var eventFieldNames = [...]string{"", "time", "type", "name", "path", "category", "item", "referrer",
	"utmSource", "utmMedium", "utmCampaign", "device", "newVisit", "revenue", "userId", "id"}

// eventFieldOf returns the scalar field of events named by path, or 0.
func eventFieldOf(path string) int {
	for i, n := range eventFieldNames {
		if i > 0 && n == path {
			return i
		}
	}
	return 0
}

// eventField returns the field f of e as appendEvent renders it.
func (d *document) eventField(e *store.Event, f int) gjson.Result {
	var s string
	switch f {
	case evTime:
		start := len(d.buf)
		d.buf = appendJSONTime(d.buf, e.Time)
		raw := d.str(start)
		return gjson.Result{Type: gjson.String, Raw: raw, Str: raw[1 : len(raw)-1]}
	case evNewVisit:
		if e.NewVisit {
			return gjson.Result{Type: gjson.True}
		}
		return gjson.Result{}
	case evRevenue:
		if e.Revenue == 0 || math.IsNaN(e.Revenue) || math.IsInf(e.Revenue, 0) {
			return gjson.Result{}
		}
		return gjson.Result{Type: gjson.Number, Num: e.Revenue}
	case evType:
		s = e.Type
	case evName:
		s = e.Name
	case evPath:
		s = e.Path
	case evCategory:
		s = e.Category
	case evItem:
		s = e.Item
	case evReferrer:
		s = e.Referrer
	case evSource:
		s = e.Source
	case evMedium:
		s = e.Medium
	case evCampaign:
		s = e.Campaign
	case evDevice:
		s = e.Device
	case evUserID:
		s = e.UserID
	case evID:
		s = e.ID
	}
	if s == "" {
		return gjson.Result{}
	}
	if utf8.ValidString(s) {
		return gjson.Result{Type: gjson.String, Str: s}
	}
	start := len(d.buf)
	d.buf = appendJSONString(d.buf, s)
	return gjson.Parse(d.str(start))
}
