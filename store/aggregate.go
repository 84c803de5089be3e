package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Aggregates are counts over every stored profile (how many profiles, how
// many in each segment, how many exposed to each variant of an experiment
// and how many of those converted) that a store keeps exact by changing
// them in the same transaction that writes the profile they come from: a
// count changes exactly once per change of a profile, like the profile
// itself, and reading it costs one small read whatever the number of
// profiles.
//
// What a profile counts for is a function of the stored profile alone
// (CountKeys), the same in every process, so that a store adds the
// difference between the keys of the profile it replaces and those of the
// profile it writes (CountDelta), and subtracts the keys of a profile it
// deletes or expires.

// Count keys name what a profile counts for. Parts are separated by the
// byte 0x1f (the ASCII unit separator): a name that holds one is not
// counted.
const (
	// CountProfiles counts the live profiles that are not merged into
	// another (see Profile.MergedInto).
	CountProfiles = "profiles"
	// countSep separates the parts of a count key.
	countSep = "\x1f"
)

// Kinds of count keys, the first part of a key of more than one part.
const (
	KindSegment   = "segment"   // "segment", name
	KindExposed   = "exposed"   // "exposed", experiment, variant, segment
	KindConverted = "converted" // "converted", experiment, variant, segment
)

// SegmentKey is the count key of the profiles in the segment name.
func SegmentKey(name string) string { return KindSegment + countSep + name }

// ExposureKey is the count key of the profiles exposed to variant of
// experiment (converted: of those that converted since), in segment ("" if
// the experiment has no breakdown by segment).
func ExposureKey(experiment, variant, segment string, converted bool) string {
	k := KindExposed
	if converted {
		k = KindConverted
	}
	return k + countSep + experiment + countSep + variant + countSep + segment
}

// ParseCountKey splits a count key into its kind and its other parts:
// ("profiles", nil), ("segment", [name]), ("exposed" or "converted",
// [experiment, variant, segment]).
func ParseCountKey(key string) (kind string, parts []string) {
	kind, rest, ok := strings.Cut(key, countSep)
	if !ok {
		return kind, nil
	}
	return kind, strings.Split(rest, countSep)
}

// ExposureTraitPrefix starts the name of the trait that remembers a
// visitor's exposure to an experiment: ExposureTraitPrefix + the
// experiment's key. Its value is an object {"variant": ..., "segment": ...,
// "goals": {"<event>": <count at exposure>, ...}}; the profile counts as
// converted when the count of one of the goal events (Profile.Counts) is
// above its count at exposure. middleware/slots writes these traits.
const ExposureTraitPrefix = "experiment:"

// CountKeys appends to dst the count keys of p, a stored profile: none for
// nil or a merged profile; otherwise CountProfiles, SegmentKey of each of
// its Segments, and ExposureKey of each of its exposure traits (see
// ExposureTraitPrefix), converted or not. The keys of a profile are
// distinct; their order is not specified.
func CountKeys(dst []string, p *Profile) []string {
	if p == nil || p.MergedInto != "" {
		return dst
	}
	start := len(dst)
	dst = append(dst, CountProfiles)
	for _, s := range p.Segments {
		if k := SegmentKey(s); !strings.Contains(s, countSep) && !slices.Contains(dst[start:], k) {
			dst = append(dst, k)
		}
	}
	if len(p.Traits) == 0 || !bytes.Contains(p.Traits, []byte(`"`+ExposureTraitPrefix)) {
		return dst
	}
	gjson.ParseBytes(p.Traits).ForEach(func(k, v gjson.Result) bool {
		exp, ok := strings.CutPrefix(k.String(), ExposureTraitPrefix)
		if !ok || exp == "" || !v.IsObject() {
			return true
		}
		variant, seg := v.Get("variant"), v.Get("segment")
		if variant.Type != gjson.String || variant.Str == "" || seg.Exists() && seg.Type != gjson.String ||
			strings.Contains(exp+variant.Str+seg.Str, countSep) {
			return true
		}
		converted := false
		v.Get("goals").ForEach(func(goal, base gjson.Result) bool {
			if base.Type == gjson.Number && float64(p.Counts[goal.String()]) > base.Num {
				converted = true
				return false
			}
			return true
		})
		dst = append(dst, ExposureKey(exp, variant.Str, seg.Str, false))
		if converted {
			dst = append(dst, ExposureKey(exp, variant.Str, seg.Str, true))
		}
		return true
	})
	slices.Sort(dst[start:])
	return slices.Compact(dst)
}

// A Delta is a change of one count.
type Delta struct {
	Key string
	N   int64
}

// CountDelta returns the changes of the counts when the stored profile old
// becomes new (nil old: there was none; nil new: it is deleted), sorted by
// key, so that stores that lock a row per key lock them in one order. An
// old profile that is not Counted counts for nothing: it was written
// before its store kept aggregates. A store sets new.Counted before it
// writes new.
func CountDelta(old, new *Profile) []Delta {
	var a, b [16]string
	if old != nil && !old.Counted {
		old = nil
	}
	return KeyDelta(CountKeys(a[:0], old), CountKeys(b[:0], new))
}

// KeyDelta returns the changes of the counts when a profile that counted
// for the keys was counts for the keys now, sorted by key as CountDelta's.
func KeyDelta(was, now []string) []Delta {
	var out []Delta
	for _, k := range now {
		if !slices.Contains(was, k) {
			out = append(out, Delta{k, 1})
		}
	}
	for _, k := range was {
		if !slices.Contains(now, k) {
			out = append(out, Delta{k, -1})
		}
	}
	slices.SortFunc(out, func(a, b Delta) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// AddDeltas adds ds to the counts m, removing the counts that fall to
// zero.
func AddDeltas(m map[string]int64, ds []Delta) {
	for _, d := range ds {
		if n := m[d.Key] + d.N; n != 0 {
			m[d.Key] = n
		} else {
			delete(m, d.Key)
		}
	}
}

// Counter is the optional ability to keep aggregates: the count of
// profiles under each count key (see CountKeys), changed in the same
// transaction as the profile, by Apply, ApplyBatch, Delete and Expire.
// Counts returns every non-zero count. A count is exact: it equals the
// number of live stored profiles whose CountKeys hold the key.
type Counter interface {
	Counts(ctx context.Context) (map[string]int64, error)
}

// Rechecker is the optional ability to find the profiles whose segments
// may have changed without them doing anything: Due returns the ids of at
// most max profiles whose Profile.Recheck is not zero and not after t,
// earliest first. The index it reads is written in the same transaction as
// the profile. A store may find a profile late, by a bound it documents,
// if a writer failed after writing the profile but before a step that
// makes it cheap to find (store/redis: its due hints, five minutes).
type Rechecker interface {
	Due(ctx context.Context, t time.Time, max int) ([]string, error)
}

// Scanner is the optional ability to read every stored profile in pages,
// resumably, for a pass that must survive a restart (a backfill). Scan
// returns up to max profiles after cursor ("" starts at the beginning) and
// the cursor of the next page, "" after the last. A profile stored for the
// whole scan is returned once, in exactly one page; one written or deleted
// during the scan may or may not be. Cursors are strings a store makes and
// may be kept (in a Document) to resume later, also by another process.
type Scanner interface {
	Scan(ctx context.Context, cursor string, max int) (profiles []*Profile, next string, err error)
}

// Documents is the optional ability to keep small named documents in the
// store, shared by every process: the progress of a resumable pass, a
// model's snapshot. Document returns ErrNotFound for a name never put.
// Names follow the rules of lease names (at most MaxLeaseName bytes, not
// empty); a document is at most MaxDocument bytes.
//
// A store that is also an Invalidator announces every PutDocument that
// succeeds to every subscriber, of this process and of the others sharing
// the backend, as a Change whose Document is the name, once the document is
// durably written: a subscriber that reads the document when it hears of
// it reads the content put, or a newer one. Processes that load
// definitions (segments, slots) from documents hear of a new version this
// way, in about the time a profile's change takes to reach them. An
// announcement can be lost as a profile's can (a subscription's connection
// that drops): read the document now and then as well.
type Documents interface {
	Document(ctx context.Context, name string) ([]byte, error)
	PutDocument(ctx context.Context, name string, data []byte) error
}

// MaxDocument bounds the size of a document, in bytes.
const MaxDocument = 64 << 20

// ErrInvalidDocument is returned for a document's empty or too long name,
// or a document over MaxDocument bytes.
var ErrInvalidDocument = errors.New("tailor/store: invalid document")

// CheckDocument is Check for Documents' methods: ErrClosed if closed, an
// invalid name or size (ErrInvalidDocument), or ctx's error.
func CheckDocument(ctx context.Context, closed bool, name string, size int) error {
	switch {
	case closed:
		return ErrClosed
	case name == "" || len(name) > MaxLeaseName:
		return fmt.Errorf("document name of %d bytes: %w", len(name), ErrInvalidDocument)
	case size > MaxDocument:
		return fmt.Errorf("document %q of %d bytes, more than %d: %w", name, size, MaxDocument, ErrInvalidDocument)
	}
	return ctx.Err()
}

// CheckScan is Check for Scanner.Scan: ErrClosed if closed, a max under 1,
// or ctx's error.
func CheckScan(ctx context.Context, closed bool, max int) error {
	switch {
	case closed:
		return ErrClosed
	case max < 1:
		return fmt.Errorf("tailor/store: scan of %d profiles, fewer than 1", max)
	}
	return ctx.Err()
}
