package redis

// SetChunk sets how many ids Range and Expire handle per bucket and round
// trip, so that tests cross chunk boundaries with few profiles.
func (s *Store) SetChunk(n int) { s.chunk = n }

// BucketOf is bucketOf, for tests that check the layout.
func BucketOf(id string) uint32 { return bucketOf(id) }
