package store

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Limits bound what one profile keeps. The zero value of a field means its
// default, from DefaultLimits.
type Limits struct {
	// Recent is the size of the ring of recent events. Default 200.
	Recent int
	// Pages is the number of distinct paths counted in Profile.Pages; views
	// of further paths are counted in Counts but not per path. Default 200.
	Pages int
	// Categories is the number of distinct categories counted in
	// Profile.Categories and Purchases.Categories. Default 100.
	Categories int
	// Items is the number of distinct items counted in Profile.Views and
	// Purchases.Items. Default 500.
	Items int
	// EventNames is the number of distinct names in Profile.Counts.
	// Default 200.
	EventNames int
	// TraitsBytes is the largest size of Profile.Traits in bytes; a trait
	// update that would exceed it is dropped whole. Default 16 KiB.
	TraitsBytes int
	// RememberedIDs is how many opaque event IDs (not of the form
	// "producer:sequence") are remembered for de-duplication. Default 512.
	RememberedIDs int
	// Producers is how many producers' sequence marks are remembered; the
	// least recently advanced is forgotten first. A producer (one running
	// Personalizer) must retry its events before this many other producers
	// have written to the same profile. Default 64.
	Producers int
	// Aliases is ignored: Profile.Aliases keeps every merged profile, so
	// that a merge happens once and an erasure reaches them all.
	//
	// Deprecated: Profile.Aliases is complete.
	Aliases int

	// The bounds below apply to every event as the fold applies it, so
	// that the strings an event brings into a profile (its counts' keys
	// and its copy in Recent) are bounded whatever produced the event. A
	// string over its bound is cut to the bound at a UTF-8 boundary; a
	// JSON value over its bound is dropped whole. Each event that had to
	// be bounded counts once in Profile.Truncated.

	// PathBytes is the longest page path kept, in bytes. Default 512.
	PathBytes int
	// ReferrerBytes is the longest referrer kept, in bytes. Default 2 KiB.
	ReferrerBytes int
	// StringBytes is the longest of the other strings of an event, in
	// bytes: its name, category, item, UTM source, medium and campaign,
	// device, and the ids and categories of its items. An event ID longer
	// than StringBytes is replaced by a digest of it (OpaqueID of
	// "sha256:" and the hex digest), so that exactly-once still holds.
	// A user id longer than MaxUserIDLength is dropped, not cut: a part
	// of it would name another user. Default 256.
	StringBytes int
	// PropsBytes is the largest Props of an event, in bytes; larger ones
	// are dropped. It also bounds the Traits that the event keeps in
	// Recent: larger traits are still merged into Profile.Traits (within
	// TraitsBytes) but dropped from the copy in Recent. Default 4 KiB.
	PropsBytes int
	// EventItems is the largest number of items of an event; further
	// items are dropped (an order's Revenue, when the event gives none,
	// still sums every item). Default 100.
	EventItems int
}

// DefaultLimits are the limits used for zero fields of Limits.
var DefaultLimits = Limits{
	Recent:        200,
	Pages:         200,
	Categories:    100,
	Items:         500,
	EventNames:    200,
	TraitsBytes:   16 << 10,
	RememberedIDs: 512,
	Producers:     64,
	Aliases:       100,
	PathBytes:     512,
	ReferrerBytes: 2 << 10,
	StringBytes:   256,
	PropsBytes:    4 << 10,
	EventItems:    100,
}

// WithDefaults returns l with every zero or negative field set to its
// default.
func (l Limits) WithDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.Recent, DefaultLimits.Recent)
	def(&l.Pages, DefaultLimits.Pages)
	def(&l.Categories, DefaultLimits.Categories)
	def(&l.Items, DefaultLimits.Items)
	def(&l.EventNames, DefaultLimits.EventNames)
	def(&l.TraitsBytes, DefaultLimits.TraitsBytes)
	def(&l.RememberedIDs, DefaultLimits.RememberedIDs)
	def(&l.Producers, DefaultLimits.Producers)
	def(&l.Aliases, DefaultLimits.Aliases)
	def(&l.PathBytes, DefaultLimits.PathBytes)
	def(&l.ReferrerBytes, DefaultLimits.ReferrerBytes)
	def(&l.StringBytes, DefaultLimits.StringBytes)
	def(&l.PropsBytes, DefaultLimits.PropsBytes)
	def(&l.EventItems, DefaultLimits.EventItems)
	return l
}

// A Profile is everything tailor knows about one visitor: the fold of the
// visitor's events. Its JSON form is the document that segment conditions
// are evaluated against.
//
// A Profile is not safe for concurrent use; Stores hand out profiles that
// the caller owns.
type Profile struct {
	ID     string `json:"id"`
	UserID string `json:"userId,omitempty"`
	// Version is the store's compare-and-swap version: 0 for a profile that
	// was never stored, incremented by one by every successful Apply (and
	// by one per batch of an ApplyBatch). A cache that folded the same
	// events itself can so tell that its copy is the stored one.
	Version   uint64    `json:"version"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	// Visits counts visits: runs of requests without a long pause.
	Visits int `json:"visits"`
	// Counts holds the number of events per name: "page", "identify", and
	// each track event's name.
	Counts map[string]int `json:"counts,omitempty"`
	// Pages counts page views per path (bounded by Limits.Pages).
	Pages map[string]int `json:"pages,omitempty"`
	// Categories counts page views per content category.
	Categories map[string]int `json:"categories,omitempty"`
	// Views counts page views per item.
	Views     map[string]int `json:"views,omitempty"`
	Purchases Purchases      `json:"purchases"`
	// Traits is a JSON object of facts about the visitor (CRM stage, plan,
	// email...), merged from identify calls, newest value wins per key.
	Traits json.RawMessage `json:"traits,omitempty"`
	// Recent is the ring of the most recent events, oldest first.
	Recent Ring `json:"recent"`
	// Applied remembers which events were applied, for exactly-once.
	Applied Applied `json:"applied"`
	// Truncated counts updates dropped, and events cut, at a bound of
	// Limits.
	Truncated int `json:"truncated,omitempty"`

	// MergedInto is set on a profile that was merged into another, the
	// profile of the user the visitor identified as (see TypeAlias). Such
	// a profile is frozen: it stays exactly what was merged, and its fold
	// ignores every later event (producers forward those to MergedInto).
	MergedInto string `json:"mergedInto,omitempty"`
	// Aliases are the ids of every profile merged into this one, oldest
	// first. The list is complete, whatever its length: a profile is
	// merged into another once (a merge of a profile already listed is
	// skipped), and erasing a user erases every profile listed. It grows
	// by one id for each browser the user identifies with.
	Aliases []string `json:"aliases,omitempty"`

	// Segments are the segments the profile was last classified into, as
	// recorded by segments events (TypeSegments); nil if none was recorded.
	// They are not part of the JSON form that conditions see.
	Segments []string `json:"-"`
	// SegmentChanges are the latest changes of Segments, oldest first (at
	// most MaxSegmentChanges), each naming the segments event that made
	// it, so that the producer of that event reports it, exactly once,
	// even when its write is retried.
	SegmentChanges []SegmentChange `json:"-"`
	// Recheck is when the segments may next change without the visitor
	// doing anything (a window of "the last 7 days" moving past an event),
	// as recorded by the latest segments event (Classification.Until);
	// zero if they cannot. Stores that implement Rechecker index it.
	Recheck time.Time `json:"-"`
	// Counted is set on a profile that a store keeping aggregates (see
	// Counter) has counted: stores set it on every profile they write. A
	// profile written before the store kept aggregates is counted when it
	// is next written, and not before (see CountDelta).
	Counted bool `json:"-"`

	changes uint64 // changes made to this value in memory (not stored)
	// touched are the parts changed since changes was touchFrom (see
	// TouchedSince); not stored.
	touched   Touch
	touchFrom uint64
	keeping   bool // KeepTouches was called: apply notes the parts touched
	// journal holds the purchases applied to this value since the last
	// TakePurchases (not stored), for stores that keep a Journal.
	journal []Purchase
	// mem is the encoding the profile was decoded from (UnmarshalString),
	// which its strings are parts of: Size counts it once.
	mem string
}

// Changes counts the events applied to this value since it was made or
// decoded (it is not stored), so that a cache of something computed from
// the profile can tell that it is out of date.
func (p *Profile) Changes() uint64 { return p.changes }

// A SegmentChange is a change of Profile.Segments made by the segments
// event EventID, on behalf of the visitor Visitor.
type SegmentChange struct {
	EventID string
	Visitor string
	Time    time.Time
	Entered []string
	Exited  []string
}

// MaxSegmentChanges is how many changes Profile.SegmentChanges keeps. A
// producer reports its changes once its write is acknowledged, so this
// bounds the changes of one profile in one write (one flush).
const MaxSegmentChanges = 32

// Purchases summarises the visitor's orders.
type Purchases struct {
	Count   int       `json:"count"`
	Revenue float64   `json:"revenue"`
	First   time.Time `json:"first,omitzero"`
	Last    time.Time `json:"last,omitzero"`
	// Categories and Items count units bought per category and item.
	Categories map[string]int `json:"categories,omitempty"`
	Items      map[string]int `json:"items,omitempty"`
	// Months counts orders per calendar month, January first.
	Months [12]int `json:"months"`
}

// New returns an empty profile for id.
func New(id string) *Profile {
	return &Profile{ID: id}
}

// Apply folds events into p in order, skipping events that p has already
// applied, and reports how many were applied. Apply is deterministic: the
// same events applied to equal profiles give equal profiles. A merged
// profile (MergedInto set) applies nothing.
func (p *Profile) Apply(lim Limits, events ...Event) int {
	lim = lim.WithDefaults()
	p.Recent.reserve(len(events))
	n := 0
	for i := range events {
		if p.apply(lim, &events[i]) {
			n++
		}
	}
	return n
}

func (p *Profile) apply(lim Limits, e *Event) bool {
	if p.MergedInto != "" {
		return false
	}
	traits := e.Traits // merged whole; the copy in Recent may go without
	e, cut := lim.bound(e)
	if !p.Applied.add(e.ID, lim) {
		return false
	}
	if cut {
		p.Truncated++
	}
	if p.keeping {
		// Noted before the fold changes p. The keys' bits cost a hash
		// each: only for a value that keeps them (a cache's), not for a
		// store's fold.
		p.touched |= p.touches(e, len(traits) > 0)
	}
	switch e.Type {
	case TypeSegments:
		// Not a change of what rules see: a cached classification stays.
		p.classified(e)
		return true
	case TypeMerge:
		if e.Merge != nil && (e.Merge.ID == p.ID || slices.Contains(p.Aliases, e.Merge.ID)) {
			return true // merged already: once per profile, however often sent
		}
		p.changes++
		p.merge(lim, e.Merge)
		return true
	}
	p.changes++
	switch e.Type {
	case TypeAlias:
		if into := UserPrefix + e.UserID; e.UserID != "" && into != p.ID {
			// Frozen from now on: its segments change no more.
			p.MergedInto, p.UserID, p.Recheck = into, e.UserID, time.Time{}
		}
		return true
	}
	t := e.Time
	if p.FirstSeen.IsZero() || t.Before(p.FirstSeen) {
		p.FirstSeen = t
	}
	if t.After(p.LastSeen) {
		p.LastSeen = t
	}
	// A visit begins where the producer says, and with the first page view
	// of a profile that has none: an event a server sends about a user
	// (an email opened, a CRM stage) is not a visit.
	if e.NewVisit || (p.Visits == 0 && e.Type == TypePage) {
		p.Visits++
	}
	p.Counts = p.count(p.Counts, e.key(), 1, lim.EventNames)
	switch e.Type {
	case TypePage:
		if e.Path != "" {
			p.Pages = p.count(p.Pages, e.Path, 1, lim.Pages)
		}
		if e.Category != "" {
			p.Categories = p.count(p.Categories, e.Category, 1, lim.Categories)
		}
		if e.Item != "" {
			p.Views = p.count(p.Views, e.Item, 1, lim.Items)
		}
	case TypeTrack:
		if e.Name == EventPurchase {
			p.purchase(lim, e)
		}
	case TypeIdentify:
		if e.UserID != "" {
			p.UserID = e.UserID
		}
	}
	if len(traits) > 0 {
		merged, err := MergeTraits(p.Traits, traits)
		if err != nil || len(merged) > lim.TraitsBytes {
			p.Truncated++
		} else {
			p.Traits = merged
		}
	}
	p.Recent.Push(*e, lim.Recent)
	return true
}

// classified applies a segments event: if the producer saw the segments
// that are stored, its segments replace them and the difference is logged.
func (p *Profile) classified(e *Event) {
	c := e.Classified
	if c == nil || c.Version != 0 && c.Version != p.Version || !SameSegments(c.Was, p.Segments) {
		return
	}
	ch := SegmentChange{EventID: e.ID, Visitor: c.Visitor, Time: e.Time}
	for _, s := range c.Segments {
		if !slices.Contains(p.Segments, s) && !slices.Contains(ch.Entered, s) {
			ch.Entered = append(ch.Entered, s)
		}
	}
	for _, s := range p.Segments {
		if !slices.Contains(c.Segments, s) {
			ch.Exited = append(ch.Exited, s)
		}
	}
	p.Segments = slices.Clone(c.Segments)
	p.Recheck = c.Until
	if p.Segments == nil {
		p.Segments = []string{}
	}
	if ch.Entered == nil && ch.Exited == nil {
		return
	}
	if len(p.SegmentChanges) >= MaxSegmentChanges {
		p.SegmentChanges = slices.Delete(p.SegmentChanges, 0, len(p.SegmentChanges)-MaxSegmentChanges+1)
	}
	p.SegmentChanges = append(p.SegmentChanges, ch)
}

// SegmentChange returns the change that the segments event id made, if it
// made one and it is still logged.
func (p *Profile) SegmentChange(id string) (SegmentChange, bool) {
	for i := len(p.SegmentChanges) - 1; i >= 0; i-- {
		if p.SegmentChanges[i].EventID == id {
			return p.SegmentChanges[i], true
		}
	}
	return SegmentChange{}, false
}

// SameSegments reports whether a and b hold the same segments, in any
// order, nil being empty.
func SameSegments(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	for _, s := range b {
		if !slices.Contains(a, s) {
			return false
		}
	}
	return true
}

func (p *Profile) purchase(lim Limits, e *Event) {
	pu := &p.Purchases
	p.journalPurchase(lim, e)
	pu.Count++
	rev := e.Revenue
	if rev == 0 {
		for _, it := range e.Items {
			rev += it.Price * float64(it.Qty())
		}
	}
	pu.Revenue += rev
	if pu.First.IsZero() || e.Time.Before(pu.First) {
		pu.First = e.Time
	}
	if e.Time.After(pu.Last) {
		pu.Last = e.Time
	}
	if !e.Time.IsZero() {
		pu.Months[e.Time.Month()-1]++
	}
	for _, it := range e.Items {
		if it.ID != "" {
			pu.Items = p.count(pu.Items, it.ID, it.Qty(), lim.Items)
		}
		if it.Category != "" {
			pu.Categories = p.count(pu.Categories, it.Category, it.Qty(), lim.Categories)
		}
	}
}

// count adds n to m[k], unless k is new and m already holds max keys.
func (p *Profile) count(m map[string]int, k string, n, max int) map[string]int {
	if m == nil {
		m = make(map[string]int, 4)
	}
	if _, ok := m[k]; !ok && len(m) >= max {
		p.Truncated++
		return m
	}
	m[k] += n
	return m
}

// Size estimates the bytes of memory that p holds, for a cache to account
// for it: its strings, maps, events and still encoded events. It costs
// O(keys and events), with no allocation nor encoding. It is meant to be
// within a factor of 2 of the heap the profile holds: map and slice
// overheads are averages, and a string that several fields share (a map
// key and the events that name it) is counted once as far as a small table
// of the strings seen remembers, and else once per field, which
// overestimates.
func (p *Profile) Size() int {
	seen := seenStrings{mem: p.mem}
	n := int(unsafe.Sizeof(*p)) + len(p.mem) + seen.add(p.ID) + seen.add(p.UserID) + seen.add(p.MergedInto) + len(p.Traits)
	for _, m := range [...]map[string]int{p.Counts, p.Pages, p.Categories, p.Views, p.Purchases.Categories, p.Purchases.Items} {
		if m != nil {
			n += 48 + mapBytes*len(m)
		}
		for k := range m {
			n += seen.add(k)
		}
	}
	a := &p.Applied
	n += cap(a.Seq) * int(unsafe.Sizeof(Mark{}))
	for _, m := range a.Seq {
		n += seen.add(m.Producer)
	}
	n += (cap(a.IDs) + cap(p.Aliases)) * int(unsafe.Sizeof(""))
	for _, s := range a.IDs {
		n += seen.add(s)
	}
	for _, s := range p.Aliases {
		n += seen.add(s)
	}
	n += cap(p.Segments)*int(unsafe.Sizeof("")) + cap(p.SegmentChanges)*int(unsafe.Sizeof(SegmentChange{}))
	for _, s := range p.Segments {
		n += seen.add(s)
	}
	for i := range p.SegmentChanges {
		c := &p.SegmentChanges[i]
		n += seen.add(c.EventID) + seen.add(c.Visitor) + (cap(c.Entered)+cap(c.Exited))*int(unsafe.Sizeof(""))
		for _, s := range c.Entered {
			n += seen.add(s)
		}
		for _, s := range c.Exited {
			n += seen.add(s)
		}
	}
	return n + p.Recent.size(&seen)
}

// mapBytes is the memory a map of strings to ints takes per key, besides
// the key's bytes, on average over the map's load factors.
const mapBytes = 48

// size estimates the memory of the ring, as Profile.Size.
func (r *Ring) size(seen *seenStrings) int {
	n := seen.add(r.raw) + cap(r.tab)*int(unsafe.Sizeof("")) + cap(r.buf)*int(unsafe.Sizeof(Event{}))
	for _, s := range r.tab {
		n += seen.add(s)
	}
	for i := range r.buf {
		e := &r.buf[i]
		n += seen.add(e.ID) + len(e.Props) + len(e.Traits) + cap(e.Items)*int(unsafe.Sizeof(Item{}))
		for _, f := range refFields(e) {
			n += seen.add(*f)
		}
		for _, it := range e.Items {
			n += seen.add(it.ID) + seen.add(it.Category)
		}
	}
	return n
}

// seenStrings tells which strings Size counted already, so that the bytes
// that several strings share are counted once: those of mem (counted
// whole), and those of the strings of a hash table of data pointers and
// lengths where a string overwrites the one of its slot.
type seenStrings struct {
	mem   string
	slots [256]struct {
		p *byte
		n int
	}
}

// add returns the length of s, or 0 if the same bytes were counted before.
func (t *seenStrings) add(s string) int {
	if len(s) == 0 {
		return 0
	}
	p := unsafe.StringData(s)
	at, mem := uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(unsafe.StringData(t.mem)))
	if len(t.mem) > 0 && at >= mem && at < mem+uintptr(len(t.mem)) {
		return 0
	}
	h := (uint64(at) ^ uint64(len(s))) * 0x9E3779B97F4A7C15
	sl := &t.slots[h>>56]
	if sl.p == p && sl.n == len(s) {
		return 0
	}
	sl.p, sl.n = p, len(s)
	return len(s)
}

// Clone returns a deep copy of p.
func (p *Profile) Clone() *Profile {
	if p == nil {
		return nil
	}
	c := *p
	c.Counts = maps.Clone(p.Counts)
	c.Pages = maps.Clone(p.Pages)
	c.Categories = maps.Clone(p.Categories)
	c.Views = maps.Clone(p.Views)
	c.Purchases.Categories = maps.Clone(p.Purchases.Categories)
	c.Purchases.Items = maps.Clone(p.Purchases.Items)
	c.Traits = bytes.Clone(p.Traits)
	c.Recent = p.Recent.clone()
	c.Applied = p.Applied.clone()
	c.Aliases = slices.Clone(p.Aliases)
	c.Segments = slices.Clone(p.Segments)
	c.SegmentChanges = slices.Clone(p.SegmentChanges)
	c.journal = nil
	return &c
}

// Merge folds the profile o into p, as TypeMerge events do: what p knows
// and what o knows, as if p had applied o's events too. Counts, page,
// category and item views, purchases and visits add up (within Limits);
// FirstSeen is the earlier, LastSeen the later; the recent events of both
// are interleaved by time, keeping the newest; traits are merged key by
// key, those of the profile seen last winning; o's id and aliases join
// p.Aliases. p's Applied marks are kept as they are: o's events are never
// applied to p one by one (o is frozen once merged; producers forward its
// later events under new ids), and adopting o's producer marks could make
// p skip an event still on its way to p.
func (p *Profile) Merge(lim Limits, o *Profile) {
	p.changes++
	p.touched = TouchAll
	p.merge(lim.WithDefaults(), o)
}

func (p *Profile) merge(lim Limits, o *Profile) {
	if o == nil || o == p {
		return
	}
	// Traits first, while LastSeen still tells which profile is newer.
	if len(o.Traits) > 0 {
		base, update := p.Traits, o.Traits
		if p.LastSeen.After(o.LastSeen) {
			base, update = o.Traits, p.Traits
		}
		if len(p.Traits) == 0 {
			p.Traits = bytes.Clone(o.Traits)
		} else if merged, err := MergeTraits(base, update); err != nil || len(merged) > lim.TraitsBytes {
			p.Truncated++
		} else {
			p.Traits = merged
		}
	}
	if !o.FirstSeen.IsZero() && (p.FirstSeen.IsZero() || o.FirstSeen.Before(p.FirstSeen)) {
		p.FirstSeen = o.FirstSeen
	}
	if o.LastSeen.After(p.LastSeen) {
		p.LastSeen = o.LastSeen
	}
	if p.UserID == "" {
		p.UserID = o.UserID
	}
	p.Visits += o.Visits
	p.Counts = p.addAll(p.Counts, o.Counts, lim.EventNames)
	p.Pages = p.addAll(p.Pages, o.Pages, lim.Pages)
	p.Categories = p.addAll(p.Categories, o.Categories, lim.Categories)
	p.Views = p.addAll(p.Views, o.Views, lim.Items)
	pu, opu := &p.Purchases, &o.Purchases
	pu.Count += opu.Count
	pu.Revenue += opu.Revenue
	if !opu.First.IsZero() && (pu.First.IsZero() || opu.First.Before(pu.First)) {
		pu.First = opu.First
	}
	if opu.Last.After(pu.Last) {
		pu.Last = opu.Last
	}
	pu.Categories = p.addAll(pu.Categories, opu.Categories, lim.Categories)
	pu.Items = p.addAll(pu.Items, opu.Items, lim.Items)
	for i, n := range opu.Months {
		pu.Months[i] += n
	}
	p.Recent.merge(&o.Recent, lim.Recent)

	for _, id := range append([]string{o.ID}, o.Aliases...) {
		if id == "" || id == p.ID || slices.Contains(p.Aliases, id) {
			continue
		}
		p.Aliases = append(p.Aliases, id)
	}
	p.Truncated += o.Truncated
}

// addAll adds the counts of o to m, in key order so that the keys kept at
// the bound do not depend on map iteration.
func (p *Profile) addAll(m, o map[string]int, max int) map[string]int {
	if len(o) == 0 {
		return m
	}
	for _, k := range slices.Sorted(maps.Keys(o)) {
		m = p.count(m, k, o[k], max)
	}
	return m
}

// MayHaveRecent reports whether p.Recent may hold an event counted
// under key in Counts: a track event's name, or another event's type.
// Every event in Recent was counted, unless a bound dropped the count,
// which Truncated tells; so a false answer spares a search of Recent,
// which decodes a stored profile's events. Most visitors never filled a
// cart nor saw an experiment.
func (p *Profile) MayHaveRecent(key string) bool {
	return p.Truncated > 0 || p.Counts[key] > 0
}

// Trait returns the raw JSON value of the top-level trait key, or nil.
func (p *Profile) Trait(key string) json.RawMessage {
	if len(p.Traits) == 0 {
		return nil
	}
	// As json.Unmarshal into a map would find it (the last of equal keys),
	// without decoding the other traits.
	s := unsafe.String(&p.Traits[0], len(p.Traits))
	if !gjson.Valid(s) {
		return nil
	}
	t := gjson.Parse(s)
	if !t.IsObject() {
		return nil
	}
	var raw string
	t.ForEach(func(k, v gjson.Result) bool {
		if k.Str == key {
			raw = v.Raw
		}
		return true
	})
	if raw == "" {
		return nil
	}
	return json.RawMessage(raw) // a copy
}

// MergeTraits merges the JSON object update into the JSON object base, key
// by key, the update winning. A null value in update removes the key. Keys
// come out sorted, so the result is deterministic.
func MergeTraits(base, update json.RawMessage) (json.RawMessage, error) {
	var b, u map[string]json.RawMessage
	if len(base) > 0 {
		if err := json.Unmarshal(base, &b); err != nil {
			return nil, err
		}
	}
	if err := json.Unmarshal(update, &u); err != nil {
		return nil, err
	}
	if b == nil {
		b = make(map[string]json.RawMessage, len(u))
	}
	for k, v := range u {
		if string(bytes.TrimSpace(v)) == "null" {
			delete(b, k)
			continue
		}
		b[k] = v
	}
	if len(b) == 0 {
		return nil, nil
	}
	return json.Marshal(b) // encoding/json sorts map keys and compacts
}

// Ring is a bounded ring of events, oldest first. Its JSON form is an array.
type Ring struct {
	// raw holds the oldest rawN events still in their binary encoding, as
	// decoded by Unmarshal: a store's fold drops and appends events without
	// decoding them. They are decoded on the first read. While rawN > 0,
	// buf holds the newer events in order (head is 0).
	raw  string
	rawN int
	tab  []string // the string table raw's refs index
	base int64    // the seconds raw's times count from
	// churn counts the events dropped from raw since it was encoded whole.
	churn int
	buf   []Event
	head  int // index of the oldest event of buf once the ring is full
}

// Len returns the number of events in the ring.
func (r *Ring) Len() int { return r.rawN + len(r.buf) }

// load decodes the events still encoded.
func (r *Ring) load() {
	if r.rawN == 0 {
		return
	}
	out := make([]Event, 0, max(r.Len(), DefaultLimits.Recent))
	out = decodeRaw(r, out)
	*r = Ring{buf: append(out, r.buf...)}
}

// At returns the i-th event, 0 being the oldest.
func (r *Ring) At(i int) *Event {
	r.load()
	return &r.buf[(r.head+i)%len(r.buf)]
}

// Events returns the events oldest first, in a new slice.
func (r *Ring) Events() []Event {
	r.load()
	out := make([]Event, 0, len(r.buf))
	out = append(out, r.buf[r.head:]...)
	return append(out, r.buf[:r.head]...)
}

// reserve makes room for n more events in a ring whose older events are
// still encoded, where they are appended.
func (r *Ring) reserve(n int) {
	if r.rawN > 0 {
		r.buf = slices.Grow(r.buf, n)
	}
}

// Push adds e, dropping the oldest event when the ring holds limit events.
func (r *Ring) Push(e Event, limit int) {
	for r.rawN > 0 && r.Len() >= limit {
		r.raw, r.rawN, r.churn = dropRaw(r.raw), r.rawN-1, r.churn+1
	}
	if r.rawN > 0 {
		r.buf = append(r.buf, e)
		return
	}
	if len(r.buf) > limit { // the limit was lowered: keep the newest
		r.buf = r.Events()[len(r.buf)-limit:]
		r.head = 0
	}
	if len(r.buf) < limit {
		if r.head != 0 {
			r.buf = r.Events()
			r.head = 0
		}
		r.buf = append(r.buf, e)
		return
	}
	r.buf[r.head] = e
	r.head = (r.head + 1) % limit
}

// merge interleaves the events of o into r by time (r's first among
// events of the same time), keeping the newest limit.
func (r *Ring) merge(o *Ring, limit int) {
	if o.Len() == 0 {
		return
	}
	a, b := r.Events(), o.Events()
	out := make([]Event, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		if j == len(b) || (i < len(a) && !b[j].Time.Before(a[i].Time)) {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	r.buf, r.head = out, 0
}

func (r Ring) clone() Ring {
	r.buf = slices.Clone(r.buf)
	return r
}

// MarshalJSON encodes the ring as an array, oldest first.
func (r Ring) MarshalJSON() ([]byte, error) {
	r.load()
	if len(r.buf) == 0 {
		return []byte("[]"), nil
	}
	return json.Marshal(r.Events())
}

// UnmarshalJSON decodes an array of events.
func (r *Ring) UnmarshalJSON(b []byte) error {
	var evs []Event
	if err := json.Unmarshal(b, &evs); err != nil {
		return err
	}
	*r = Ring{buf: evs}
	return nil
}

// Applied remembers the events applied to a profile: per producer the
// highest sequence number (for at most Limits.Producers producers, the most
// recently advanced last), and a bounded list of other IDs.
type Applied struct {
	Seq []Mark   `json:"seq,omitempty"`
	IDs []string `json:"ids,omitempty"`
}

// A Mark is the highest sequence number applied from one producer.
type Mark struct {
	Producer string `json:"p"`
	Seq      uint64 `json:"n"`
}

// Has reports whether the event id was applied.
func (a *Applied) Has(id string) bool {
	if prod, seq, ok := SplitID(id); ok {
		i := a.mark(prod)
		return i >= 0 && a.Seq[i].Seq >= seq
	}
	return slices.Contains(a.IDs, id)
}

func (a *Applied) mark(prod string) int {
	for i := len(a.Seq) - 1; i >= 0; i-- {
		if a.Seq[i].Producer == prod {
			return i
		}
	}
	return -1
}

// add records id and reports whether it was new. An empty id is always new.
func (a *Applied) add(id string, lim Limits) bool {
	if id == "" {
		return true
	}
	if prod, seq, ok := SplitID(id); ok {
		i := a.mark(prod)
		switch {
		case i >= 0 && a.Seq[i].Seq >= seq:
			return false
		case i < 0:
			if len(a.Seq) >= lim.Producers {
				a.Seq = slices.Delete(a.Seq, 0, len(a.Seq)-lim.Producers+1)
			}
			a.Seq = append(a.Seq, Mark{prod, seq})
		case i == len(a.Seq)-1:
			a.Seq[i].Seq = seq
		default:
			a.Seq = append(slices.Delete(a.Seq, i, i+1), Mark{prod, seq})
		}
		return true
	}
	if slices.Contains(a.IDs, id) {
		return false
	}
	if len(a.IDs) >= lim.RememberedIDs {
		a.IDs = slices.Delete(a.IDs, 0, len(a.IDs)-lim.RememberedIDs+1)
	}
	a.IDs = append(a.IDs, id)
	return true
}

func (a Applied) clone() Applied {
	return Applied{Seq: slices.Clone(a.Seq), IDs: slices.Clone(a.IDs)}
}

// SplitID splits an event ID of the form "producer:sequence", where
// sequence is a positive decimal number, into its parts. IDs that begin
// with '#' (see OpaqueID) are never split.
func SplitID(id string) (producer string, seq uint64, ok bool) {
	if id != "" && id[0] == '#' {
		return "", 0, false
	}
	i := strings.LastIndexByte(id, ':')
	if i <= 0 || i == len(id)-1 || id[i+1] == '0' {
		return "", 0, false
	}
	// The decimal digits of a uint64, as strconv.ParseUint reads them
	// (without its sign, underscores and bases), on every event applied.
	var n uint64
	for _, c := range []byte(id[i+1:]) {
		d := uint64(c - '0')
		if d > 9 || n > (math.MaxUint64-d)/10 {
			return "", 0, false
		}
		n = n*10 + d
	}
	return id[:i], n, true
}

// OpaqueID returns the event ID for a client's own message id s (a
// Segment messageId): s behind a '#', so that it is remembered as it is
// and never read as a producer's sequence number, whatever its form.
func OpaqueID(s string) string { return "#" + s }

// EventID formats a sequenced event ID for producer.
func EventID(producer string, seq uint64) string {
	var b [20]byte // the digits, converted without a string of their own
	return producer + ":" + string(strconv.AppendUint(b[:0], seq, 10))
}
