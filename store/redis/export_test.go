package redis

import "time"

// SetChunk sets how many ids Range and Expire handle per bucket and round
// trip, so that tests cross chunk boundaries with few profiles.
func (s *Store) SetChunk(n int) { s.chunk = n }

// BucketOf is bucketOf, for tests that check the layout.
func BucketOf(id string) uint32 { return bucketOf(id) }

// SetJournalRecheck sets how long Purchases trusts the journal's tick, so
// that tests see a lost tick's purchases without waiting a minute.
func (s *Store) SetJournalRecheck(d time.Duration) { s.jmemo.ttl = d }

// SetEraseChunk sets how many journal entries of a profile Delete and
// Expire delete per script, so that tests drain an index with few.
func (s *Store) SetEraseChunk(n int) { s.eraseChunk = n }

// SetDueRepair sets how often Due repairs the due hints from every
// bucket, so that tests see the repair without waiting five minutes.
func (s *Store) SetDueRepair(d time.Duration) {
	s.due.lock <- struct{}{}
	s.due.every = d
	<-s.due.lock
}

// SetDueRead sets the function Due calls after it has read the buckets
// and before it tightens their hints, so that tests can run a writer
// there.
func (s *Store) SetDueRead(fn func()) { s.due.read = fn }
