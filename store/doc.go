// Package store defines the visitor Profile, the Event it is folded from,
// and the Store interface that keeps profiles.
//
// # Profiles are folds of events
//
// Every change to a profile is an [Event]: a page view, a tracked action, an
// identify call. A [Profile] is the deterministic result of applying events in
// order with [Profile.Apply]. Write-behind, several app instances writing the
// same visitor, and retried deliveries are therefore one problem: apply the
// pending events to the newest stored profile with a compare-and-swap on
// [Profile.Version], and retry on conflict. Every Store does exactly that
// inside [Store.Apply].
//
// # Exactly once
//
// Each event carries an ID. IDs of the form "producer:sequence" (what the
// middleware's write-behind queue produces) are remembered as a high-water
// mark per producer; any other ID, and every ID that begins with '#' (a
// client's messageId, through [OpaqueID]), is remembered in a bounded list
// of recent IDs. An event whose ID was already applied is skipped, so an
// Apply retried after a lost acknowledgement never counts twice.
//
// # Merges
//
// When a visitor identifies as a user, their profile is merged into the
// user's profile (id [UserPrefix] + user id) in two steps, each an ordinary
// exactly-once event: a [TypeAlias] event on the visitor's profile sets
// [Profile.MergedInto] and freezes it, and a [TypeMerge] event on the
// user's profile carries the frozen profile and folds it in with
// [Profile.Merge]. A frozen profile ignores later events, so it stays
// exactly what was merged, whoever merges it and however often the merge
// is retried; events that still reach it are forwarded to the user's
// profile by their producer (see the middleware package).
//
// # Erasure
//
// [Store.Delete] erases a profile and leaves a tombstone for its id that
// lives for a TTL ([DefaultTombstoneTTL] unless the store's options set
// another). While it lives, Apply of the id writes nothing and returns
// [ErrErased], so events that other instances still hold for the profile,
// queued or in a write under way, cannot bring it back; Load returns
// ErrErased, which also matches [ErrNotFound]. [ApplyBatch] gives a nil
// profile for such a batch and applies the others. After the TTL the id
// starts afresh.
//
// # Bounds
//
// A profile never grows without bound: see [Limits] for the ring of recent
// events, the distinct pages, categories and items kept, the size of traits
// and the number of remembered IDs. What does not fit is dropped and counted
// in [Profile.Truncated].
//
// # Encoding
//
// Stores keep a profile as the bytes of [Marshal] (or [Profile.AppendBinary])
// and read it back with [Unmarshal] or [UnmarshalString]. The encoding is
// binary and compact: the profile's repeated strings (paths, items,
// categories, producers) are stored once, so 200 recent page views take
// about 4 KB. A decoded profile's recent events stay encoded until they are
// read, so a store's fold (decode, apply a few events, encode) does not
// decode them. Every earlier version of the encoding still decodes, but
// older versions of tailor cannot read what this one writes: upgrade the
// instances that share a store together.
//
// # Implementations
//
// The sub-packages memory and bolt implement Store for one process; redis and
// postgres for sites on several machines. storetest is the conformance suite
// they all pass; run it against your own Store too.
package store
