package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Event types.
const (
	TypePage     = "page"     // a page view
	TypeTrack    = "track"    // a named action: "purchase", "add_to_cart", "email_opened", ...
	TypeIdentify = "identify" // names the visitor's user id and sets traits
	// TypeAlias merges the profile into the profile of the user UserID
	// (UserProfileID): the fold sets Profile.MergedInto, and the profile
	// is frozen from then on. Only the first alias of a profile counts.
	TypeAlias = "alias"
	// TypeMerge folds the profile Event.Merge into this one, with
	// Profile.Merge. Merge events are not counted nor kept in Recent.
	TypeMerge = "merge"
	// TypeSegments records the segments a producer classified the profile
	// into (Event.Classified). The fold keeps them in Profile.Segments and
	// logs the entries and exits in Profile.SegmentChanges, so that a
	// change is decided once, in the store, whichever process classified.
	// Segments events are not counted nor kept in Recent.
	TypeSegments = "segments"
)

// UserPrefix begins the id of a user's profile, the profile that the
// profiles of every visitor who identified as the user are merged into.
const UserPrefix = "user:"

// MaxUserIDLength is the longest user id, so that UserPrefix + id is a
// valid profile id.
const MaxUserIDLength = MaxIDLength - len(UserPrefix)

// UserProfileID returns the id of the profile of the user userID, or an
// error wrapping ErrInvalidID when userID is empty, longer than
// MaxUserIDLength bytes, not valid UTF-8 or holds control characters.
func UserProfileID(userID string) (string, error) {
	if userID == "" {
		return "", fmt.Errorf("%w: empty user id", ErrInvalidID)
	}
	if len(userID) > MaxUserIDLength {
		return "", fmt.Errorf("%w: user id of %d bytes, more than %d", ErrInvalidID, len(userID), MaxUserIDLength)
	}
	id := UserPrefix + userID
	if err := ValidateID(id); err != nil {
		return "", err
	}
	return id, nil
}

// Well-known track event names that the fold treats specially.
const (
	// EventPurchase records an order: Items, Revenue. It updates
	// Profile.Purchases.
	EventPurchase = "purchase"
)

// An Event is one thing a visitor did. Events are values: once recorded they
// are never changed, and a Profile is the fold of its events.
type Event struct {
	// ID makes the event unique for exactly-once application; see the
	// package documentation. Required.
	ID string `json:"id"`
	// Type is TypePage, TypeTrack or TypeIdentify.
	Type string `json:"type"`
	// Name is the action for track events ("purchase"); optional otherwise.
	Name string    `json:"name,omitempty"`
	Time time.Time `json:"time"`
	// NewVisit marks the first event of a visit, as decided by the producer
	// when it recorded the event. It increments Profile.Visits.
	NewVisit bool `json:"newVisit,omitempty"`

	// Page facts.
	Path     string `json:"path,omitempty"`
	Category string `json:"category,omitempty"` // the content category of the page, if any
	Item     string `json:"item,omitempty"`     // the item (product) the page or action is about, if any
	Referrer string `json:"referrer,omitempty"` // referrer host
	Source   string `json:"utmSource,omitempty"`
	Medium   string `json:"utmMedium,omitempty"`
	Campaign string `json:"utmCampaign,omitempty"`
	Device   string `json:"device,omitempty"` // "desktop", "mobile", "tablet", "bot"

	// Purchase facts.
	Items   []Item  `json:"items,omitempty"`
	Revenue float64 `json:"revenue,omitempty"`

	// Props are the event's free-form properties, a JSON object.
	Props json.RawMessage `json:"props,omitempty"`
	// Traits, a JSON object, are merged into Profile.Traits (newer wins).
	Traits json.RawMessage `json:"traits,omitempty"`
	// UserID, on identify events, names the visitor's user; on alias
	// events, the user whose profile this one is merged into.
	UserID string `json:"userId,omitempty"`

	// Merge, on merge events, is the profile folded into this one. It has
	// no encoding: merge events are applied, never kept in Recent.
	Merge *Profile `json:"-"`
	// Classified, on segments events, is the classification to record. It
	// has no encoding: segments events are never kept in Recent.
	Classified *Classification `json:"-"`
}

// A Classification is what a segments event records: the visitor whose
// request was classified, the segments the producer saw the profile in
// (Profile.Segments as it knew it) and the segments it classified the
// profile into. The fold applies it only if Was still equals the stored
// Profile.Segments (as sets): a producer that classified a stale copy of
// the profile changes nothing, and the next classification of a fresh
// copy decides.
type Classification struct {
	Visitor  string
	Was      []string
	Segments []string
	// Until is when the classification may next change without a new
	// event (see Profile.Recheck); zero if it cannot.
	Until time.Time
	// Version, if not zero, is the Version of the stored profile the
	// producer classified: the fold applies the classification to that
	// version only. A job that reads a profile and classifies it without a
	// request sets it, so that an event written meanwhile, which may
	// change the segments without changing the stored ones, is not
	// overruled by a classification of the profile before it.
	Version uint64
}

// An Item is one line of a purchase or cart.
type Item struct {
	ID       string  `json:"id"`
	Category string  `json:"category,omitempty"`
	Price    float64 `json:"price,omitempty"`
	Quantity int     `json:"quantity,omitempty"` // 0 means 1
}

// Qty returns the quantity, counting 0 as 1.
func (it Item) Qty() int {
	if it.Quantity <= 0 {
		return 1
	}
	return it.Quantity
}

// key is the name the event is counted under in Profile.Counts.
func (e *Event) key() string {
	if e.Type == TypeTrack && e.Name != "" {
		return e.Name
	}
	return e.Type
}

// Truncate returns s cut to at most n bytes at a UTF-8 boundary: a
// character of several bytes is never split (invalid bytes may be). A cut
// string is a copy, so that it does not keep the longer one in memory.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := max(n, 0)
	// Cut before the character that byte i belongs to, if it is one that
	// ends after i.
	for j := i; j >= 0 && j > i-utf8.UTFMax; j-- {
		if utf8.RuneStart(s[j]) {
			if _, size := utf8.DecodeRuneInString(s[j:]); j+size > i {
				i = j
			}
			break
		}
	}
	return strings.Clone(s[:i])
}

// bound returns e within the bounds of lim (see Limits): e itself when it
// is, or else a bounded copy (e is never changed) and true.
func (lim *Limits) bound(e *Event) (*Event, bool) {
	if len(e.ID) <= lim.StringBytes && len(e.Path) <= lim.PathBytes && len(e.Referrer) <= lim.ReferrerBytes &&
		len(e.Name) <= lim.StringBytes && len(e.Category) <= lim.StringBytes && len(e.Item) <= lim.StringBytes &&
		len(e.Source) <= lim.StringBytes && len(e.Medium) <= lim.StringBytes && len(e.Campaign) <= lim.StringBytes &&
		len(e.Device) <= lim.StringBytes && len(e.UserID) <= MaxUserIDLength &&
		len(e.Props) <= lim.PropsBytes && len(e.Traits) <= lim.PropsBytes && lim.itemsFit(e.Items) {
		return e, false
	}
	c := *e
	if len(c.ID) > lim.StringBytes {
		sum := sha256.Sum256([]byte(c.ID))
		c.ID = OpaqueID("sha256:" + hex.EncodeToString(sum[:]))
	}
	c.Path = Truncate(c.Path, lim.PathBytes)
	c.Referrer = Truncate(c.Referrer, lim.ReferrerBytes)
	for _, f := range []*string{&c.Name, &c.Category, &c.Item, &c.Source, &c.Medium, &c.Campaign, &c.Device} {
		*f = Truncate(*f, lim.StringBytes)
	}
	if len(c.UserID) > MaxUserIDLength {
		c.UserID = ""
	}
	if len(c.Props) > lim.PropsBytes {
		c.Props = nil
	}
	if len(c.Traits) > lim.PropsBytes {
		c.Traits = nil
	}
	if !lim.itemsFit(c.Items) {
		if len(c.Items) > lim.EventItems && c.Revenue == 0 && c.Type == TypeTrack && c.Name == EventPurchase {
			for _, it := range c.Items {
				c.Revenue += it.Price * float64(it.Qty())
			}
		}
		c.Items = slices.Clone(c.Items[:min(len(c.Items), lim.EventItems)])
		for i := range c.Items {
			it := &c.Items[i]
			it.ID, it.Category = Truncate(it.ID, lim.StringBytes), Truncate(it.Category, lim.StringBytes)
		}
	}
	return &c, true
}

// itemsFit reports whether items are within lim.
func (lim *Limits) itemsFit(items []Item) bool {
	if len(items) > lim.EventItems {
		return false
	}
	for _, it := range items {
		if len(it.ID) > lim.StringBytes || len(it.Category) > lim.StringBytes {
			return false
		}
	}
	return true
}
