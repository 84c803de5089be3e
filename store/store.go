package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors returned by stores. Test for them with errors.Is.
var (
	// ErrNotFound is returned by Load for an id that has no profile.
	ErrNotFound = errors.New("tailor/store: profile not found")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("tailor/store: store is closed")
	// ErrInvalidID is returned for an id that ValidateID rejects.
	ErrInvalidID = errors.New("tailor/store: invalid profile id")
	// ErrConflict is returned by Apply when its compare-and-swap kept
	// losing to concurrent writers until the store gave up.
	ErrConflict = errors.New("tailor/store: too many concurrent updates")
	// ErrErased is returned by Apply and Load for an id that Delete erased
	// less than its store's tombstone TTL ago (see Store). An erased
	// profile is not found: errors.Is(ErrErased, ErrNotFound) is true, so
	// code that handles ErrNotFound from Load needs no change.
	ErrErased error = erasedError{}
)

// erasedError is the type of ErrErased: it matches ErrNotFound too.
type erasedError struct{}

func (erasedError) Error() string        { return "tailor/store: profile erased" }
func (erasedError) Is(target error) bool { return target == ErrNotFound }

// DefaultTombstoneTTL is how long a tombstone left by Delete lives when a
// store's options do not say otherwise: long enough for the writes in
// flight and the pending queues of other instances that missed the
// deletion's announcement to reach the store and be refused, short enough
// that someone who erased their account can sign up again soon.
const DefaultTombstoneTTL = 10 * time.Minute

// MaxIDLength is the longest profile id a store accepts, in bytes.
const MaxIDLength = 256

// ValidateID reports whether id can name a profile: 1 to MaxIDLength bytes
// of valid UTF-8 without control characters. Stores call it on every id;
// errors wrap ErrInvalidID.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidID, len(id), MaxIDLength)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidID)
	}
	for i, r := range id {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: control character at byte %d", ErrInvalidID, i)
		}
	}
	return nil
}

// A Store keeps profiles.
//
// Contract, checked by storetest.Run:
//   - All methods are safe for concurrent use, also across processes sharing
//     the same backing store.
//   - Apply folds events into the newest stored profile (a new one if none)
//     with a compare-and-swap on Version, retrying on conflict, so concurrent
//     Applies on one id never lose an event. It is exactly-once: events the
//     profile already applied are skipped. A successful Apply is visible to
//     every later Load, from any process. On error nothing may be assumed
//     applied, but retrying the same events is always safe.
//   - Load returns ErrNotFound for an id without profile.
//   - Delete removes the profile and leaves a tombstone for the id, also
//     when there was no profile (deleting a missing id is not an error).
//     The tombstone lives for the store's tombstone TTL (DefaultTombstoneTTL
//     unless the store's options set another); a second Delete renews it.
//     While it lives, Apply of the id writes nothing and returns ErrErased,
//     and Load returns ErrErased, which also matches ErrNotFound. So an
//     erasure holds against events that other processes, which did not
//     hear of it (see Invalidator), still hold or are writing. After the
//     TTL, Apply starts a fresh profile as for a new id. The check against
//     the tombstone is atomic with the write: an Apply racing a Delete
//     either lands before it (and is deleted) or is refused.
//   - Tombstones are not profiles: Ranger.Range does not visit them, and
//     Expirer.Expire neither counts them nor ends them early; the store
//     removes them after their TTL.
//   - Ids are checked with ValidateID.
//   - Methods honour ctx cancellation and return ErrClosed after Close.
//   - Returned profiles belong to the caller.
//   - Apply and ApplyBatch do not keep the slices of events they are
//     given once they return (as io.Writer does not keep p): the caller
//     may reuse their memory. An Event copied keeps nothing of it.
type Store interface {
	Load(ctx context.Context, id string) (*Profile, error)
	Apply(ctx context.Context, id string, events []Event) (*Profile, error)
	Delete(ctx context.Context, id string) error
	Close() error
}

// A Batch is the events to apply to one profile.
type Batch struct {
	ID     string
	Events []Event
}

// BatchApplier is the optional ability to apply events to many profiles in
// one round trip. ApplyBatch returns the new profiles in the order of
// batches. A batch whose id has a live tombstone (see Store) is not
// applied: its profile is nil, and it is not an error, so the other
// batches are applied as usual. On error some batches may have been
// applied; retrying them all is safe, as Apply is exactly-once.
type BatchApplier interface {
	ApplyBatch(ctx context.Context, batches []Batch) ([]*Profile, error)
}

// ApplyBatch applies batches through s's ApplyBatch when it has one, and one
// Apply per batch otherwise, with BatchApplier's contract: the profile of a
// batch that Apply refused with ErrErased is nil.
func ApplyBatch(ctx context.Context, s Store, batches []Batch) ([]*Profile, error) {
	if ba, ok := s.(BatchApplier); ok {
		return ba.ApplyBatch(ctx, batches)
	}
	out := make([]*Profile, len(batches))
	for i, b := range batches {
		p, err := s.Apply(ctx, b.ID, b.Events)
		if errors.Is(err, ErrErased) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("apply %d events to profile %d of %d: %w", len(b.Events), i+1, len(batches), err)
		}
		out[i] = p
	}
	return out, nil
}

// Ranger is the optional ability to visit every stored profile, for exports
// and model rebuilds. Range stops early when fn returns false.
type Ranger interface {
	Range(ctx context.Context, fn func(*Profile) bool) error
}

// Expirer is the optional ability to delete profiles last seen before a time
// (retention). It returns how many were deleted. Tombstones are not counted;
// Expire may remove those whose TTL has passed, and never a live one.
type Expirer interface {
	Expire(ctx context.Context, before time.Time) (int, error)
}

// Invalidator is the optional ability to learn that a profile was changed by
// another process, so that caches drop their copy, and that a document was
// put (see Documents), so that processes that load definitions from it
// switch to the new ones. Subscribe calls fn with every change of a profile
// and every PutDocument through any store sharing the backend (including
// this one) until ctx is done, and returns once the subscription is in
// place. A Change whose Document is set announces a document, not a
// profile: code that tracks profiles must skip it.
type Invalidator interface {
	Subscribe(ctx context.Context, fn func(Change)) error
}

// Leaser is the optional ability to hold a lease: a named lock kept in the
// store, held by one holder at a time until it expires or is released, so
// that a job that must run once for the whole site (retention, snapshots)
// runs on one instance of many, and moves to another when that instance
// stops or dies. Expiry is measured by the store's clock.
//
//   - Lease takes the lease name for holder, or renews it when holder holds
//     it already, until ttl from now. It reports whether holder holds it
//     now: false, and no error, while another holder's lease lives.
//   - Release gives the lease up if holder holds it; then another holder
//     may take it at once. Releasing a lease one does not hold is not an
//     error.
//   - name and holder are not empty and at most MaxLeaseName bytes; ttl is
//     at least a millisecond. Otherwise they return ErrInvalidLease.
type Leaser interface {
	Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	Release(ctx context.Context, name, holder string) error
}

// MaxLeaseName bounds the names and holders of leases, in bytes.
const MaxLeaseName = 200

// ErrInvalidLease is returned for a lease's empty or too long name or
// holder, or a ttl under a millisecond.
var ErrInvalidLease = errors.New("tailor/store: invalid lease")

// CheckLease is Check for Leaser's methods: ErrClosed if closed, an
// invalid name or holder (ErrInvalidLease), or ctx's error. Lease checks
// its ttl with CheckLeaseTTL too.
func CheckLease(ctx context.Context, closed bool, name, holder string) error {
	switch {
	case closed:
		return ErrClosed
	case name == "" || len(name) > MaxLeaseName:
		return fmt.Errorf("lease name of %d bytes: %w", len(name), ErrInvalidLease)
	case holder == "" || len(holder) > MaxLeaseName:
		return fmt.Errorf("lease holder of %d bytes: %w", len(holder), ErrInvalidLease)
	}
	return ctx.Err()
}

// CheckLeaseTTL checks the ttl of Leaser.Lease.
func CheckLeaseTTL(ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("lease ttl %v, under a millisecond: %w", ttl, ErrInvalidLease)
	}
	return nil
}

// A Change is the announcement of a changed profile, or of a document put
// with Documents.PutDocument.
type Change struct {
	// ID is the id of the changed profile; "" when Document is set.
	ID string
	// Deleted is set when the profile was deleted with Delete: erased,
	// so that every process forgets what it holds of it (its cached copy,
	// its events not yet written). A profile written, or deleted by
	// Expire, is a Change without Deleted.
	Deleted bool
	// Document is set when the change announces that the document of this
	// name was put (see Documents); ID is then "" and Deleted false, and
	// no profile changed.
	Document string
}

// Marks that start the message of a change other than a profile written:
// control characters, which no profile id holds.
const (
	deletedMark  = "\x01"
	documentMark = "\x02"
)

// String returns the change as the message that stores which announce
// changes as text (Redis pub/sub, PostgreSQL NOTIFY) send: the id, after a
// byte 0x01 for a deletion; for a document, its name after a byte 0x02
// (when Document is set, ID and Deleted are not encoded). ParseChange
// reads it.
func (c Change) String() string {
	switch {
	case c.Document != "":
		return documentMark + c.Document
	case c.Deleted:
		return deletedMark + c.ID
	}
	return c.ID
}

// ParseChange reads a message made by Change.String. Every message is read
// as some Change whose String is the message again: one that no store
// sends (an id with control characters, or a lone 0x02) reads as a profile
// id that ValidateID rejects, so it matches no profile.
func ParseChange(msg string) Change {
	if name, ok := strings.CutPrefix(msg, documentMark); ok && name != "" {
		return Change{Document: name}
	}
	if id, ok := strings.CutPrefix(msg, deletedMark); ok {
		return Change{ID: id, Deleted: true}
	}
	return Change{ID: msg}
}

// LimitsOf returns the limits s folds profiles with: s's own if it has a
// Limits method, DefaultLimits otherwise.
func LimitsOf(s Store) Limits {
	if l, ok := s.(interface{ Limits() Limits }); ok {
		return l.Limits().WithDefaults()
	}
	return DefaultLimits
}

// Check returns the error a store method should return before doing any
// work: ErrClosed if closed, the id's validation error, or ctx's error.
func Check(ctx context.Context, closed bool, id string) error {
	if closed {
		return ErrClosed
	}
	if err := ValidateID(id); err != nil {
		return err
	}
	return ctx.Err()
}

// CheckBatch is Check for ApplyBatch: ErrClosed if closed, the first
// invalid id (saying which batch), or ctx's error.
func CheckBatch(ctx context.Context, closed bool, batches []Batch) error {
	if closed {
		return ErrClosed
	}
	for i, b := range batches {
		if err := ValidateID(b.ID); err != nil {
			return fmt.Errorf("apply batch %d of %d: %w", i+1, len(batches), err)
		}
	}
	return ctx.Err()
}
