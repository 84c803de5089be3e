package store

// A Touch is a set of parts of a profile that applying events changed:
// the visit count, the first and last times seen, the ring of recent
// events, the purchases, the traits, and one bit for each key of the
// counters (Counts, Pages, Categories, Views), several keys sharing a bit
// when their names hash alike. It lets a cache of something computed from
// a few parts of a profile (a classification) tell that events since
// changed none of them, with a comparison: a page view touches the page
// counters, the times and the recent events, not the purchases.
//
// A Touch is coarse on purpose: two keys sharing a bit, or an event
// counting in several parts, only ever make it say "changed" for a part
// that did not change, never the reverse.
type Touch uint64

// The parts of a profile, each one bit of a Touch. The keys of the
// counters have the bits that TouchCount, TouchPage, TouchCategory and
// TouchView return.
const (
	TouchVisits    Touch = 1 << iota // Visits
	TouchSeen                        // FirstSeen, LastSeen
	TouchRecent                      // Recent
	TouchPurchases                   // Purchases
	TouchTraits                      // Traits and UserID
	TouchOther                       // anything else: a merge, MergedInto, Aliases
	touchPageCount                   // Counts["page"], which every page view changes

	// TouchAll is every part: what a rule that does not say what it reads
	// depends on.
	TouchAll Touch = ^Touch(0)
)

// Each counter's keys hash into bits of their own, so that the keys of
// one never share a bit with those of another: a page view's path never
// passes for a category or an event's name.
const (
	touchCounts     = 7  // the first bit of Counts' keys (but "page")
	touchPages      = 22 // of Pages' keys
	touchCategories = 36 // of Categories' keys
	touchViews      = 50 // of Views' keys
)

// touchKey returns the bit of key among the n bits from first: FNV-1a,
// the same in every process, so that which keys share a bit does not
// change from run to run.
func touchKey(first, n int, key string) Touch {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return 1 << (uint(first) + uint(h%uint64(n)))
}

// The parts of all the keys of one counter: what a reader of any of its
// keys depends on.
var (
	TouchCounts     = touchRange(touchCounts, touchPages) | touchPageCount // Counts
	TouchPages      = touchRange(touchPages, touchCategories)              // Pages
	TouchCategories = touchRange(touchCategories, touchViews)              // Categories
	TouchViews      = touchRange(touchViews, 64)                           // Views
)

// touchRange returns the bits from first up to end, excluded.
func touchRange(first, end int) Touch {
	var t Touch
	for i := first; i < end; i++ {
		t |= 1 << uint(i)
	}
	return t
}

// TouchCount returns the part Counts[name].
func TouchCount(name string) Touch {
	if name == TypePage {
		return touchPageCount
	}
	return touchKey(touchCounts, touchPages-touchCounts, name)
}

// TouchPage returns the part Pages[path].
func TouchPage(path string) Touch { return touchKey(touchPages, touchCategories-touchPages, path) }

// TouchCategory returns the part Categories[category].
func TouchCategory(category string) Touch {
	return touchKey(touchCategories, touchViews-touchCategories, category)
}

// TouchView returns the part Views[item].
func TouchView(item string) Touch { return touchKey(touchViews, 64-touchViews, item) }

// TouchedSince returns the parts of p that the events applied since
// p.Changes() was changes touched, if p has been keeping them since then
// (see KeepTouches); else false, and the caller must assume that
// anything changed.
func (p *Profile) TouchedSince(changes uint64) (Touch, bool) {
	if !p.keeping || p.touchFrom != changes || p.changes < changes {
		return TouchAll, false
	}
	return p.touched, true
}

// KeepTouches starts keeping the parts that events applied from now on
// touch, for TouchedSince(p.Changes()). The value keeps one such account
// at a time: whoever calls it last is the one TouchedSince answers.
func (p *Profile) KeepTouches() {
	p.touchFrom, p.touched, p.keeping = p.changes, 0, true
}

// Touches returns the parts of p that applying e under lim would touch, as
// far as p and e tell without applying it (more parts rather than fewer): for a
// caller that keeps events aside, unapplied, and must still tell whether
// they change what a cache computed from p.
func (p *Profile) Touches(lim Limits, e *Event) Touch {
	lim = lim.WithDefaults()
	b, _ := lim.bound(e) // the keys as apply counts them
	return p.touches(b, len(e.Traits) > 0)
}

// touches is Touches of e, bounded already, whose traits (before they
// were bounded) are merged if traits is set.
func (p *Profile) touches(e *Event, traits bool) Touch {
	switch {
	case e.Type == TypeSegments || p.MergedInto != "":
		return 0
	case e.Type == TypeMerge || e.Type == TypeAlias:
		return TouchAll
	}
	t := TouchRecent | TouchSeen | keyTouches(e)
	if e.NewVisit || (p.Visits == 0 && e.Type == TypePage) {
		t |= TouchVisits
	}
	if e.Type == TypeTrack && e.Name == EventPurchase {
		t |= TouchPurchases
	}
	if (e.Type == TypeIdentify && e.UserID != "") || traits {
		t |= TouchTraits
	}
	return t
}

// keyTouches returns the bits of the counters' keys that applying e
// counts in.
func keyTouches(e *Event) Touch {
	t := TouchCount(e.key())
	if e.Type == TypePage {
		if e.Path != "" {
			t |= TouchPage(e.Path)
		}
		if e.Category != "" {
			t |= TouchCategory(e.Category)
		}
		if e.Item != "" {
			t |= TouchView(e.Item)
		}
	}
	return t
}
