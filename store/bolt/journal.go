package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/tailorhq/tailor/internal/wire"
	"github.com/tailorhq/tailor/store"
)

// bucketJournal holds the journal of store.Journal: a sequence number of
// the bucket (NextSequence), 8 bytes big-endian, → an entry of
// appendEntry.
var bucketJournal = []byte("journal")

// bucketJournalIDs indexes the journal by profile, for Delete and
// Expire: the profile's id, a 0 byte (which no id holds) and the sequence
// number of one of its entries, 8 bytes big-endian, with an empty value.
// The bucket's own sequence is the last journal sequence number indexed:
// Open indexes the entries after it (see indexJournal).
var bucketJournalIDs = []byte("journalids")

// journalChunk is how many entries Purchases reads per read transaction
// and TrimPurchases deletes per write transaction, so that neither holds
// up writers for long.
const journalChunk = 1024

// journalIDKey returns the key of bucketJournalIDs of the entry seq of the
// profile id; with seq < 0, the prefix of every key of id.
func journalIDKey(id string, seq int64) []byte {
	k := make([]byte, 0, len(id)+9)
	k = append(append(k, id...), 0)
	if seq < 0 {
		return k
	}
	return binary.BigEndian.AppendUint64(k, uint64(seq))
}

// unjournal deletes the journal entries of the profile id, which the
// index finds with one seek, and their index keys: Delete and Expire call
// it in the transaction that removes the profile.
func unjournal(tx *bbolt.Tx, id string) error {
	j, ids := tx.Bucket(bucketJournal), tx.Bucket(bucketJournalIDs)
	prefix := journalIDKey(id, -1)
	var keys [][]byte
	c := ids.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if len(k) != len(prefix)+8 {
			return fmt.Errorf("malformed journal index key %q", k)
		}
		if err := j.Delete(k[len(prefix):]); err != nil {
			return fmt.Errorf("remove a journaled purchase of profile %q: %w", id, err)
		}
		if err := ids.Delete(k); err != nil {
			return fmt.Errorf("remove a journaled purchase of profile %q: %w", id, err)
		}
	}
	return nil
}

// indexJournal indexes, in bucketJournalIDs, the journal entries after
// the last it indexed: every entry of a file whose journal was written
// before the index existed, or the entries that an earlier version of
// tailor, which does not index, journaled since this one last wrote the
// file. Open calls it, journalChunk entries per write transaction; each
// moves the index's sequence past the entries it indexed, so that an
// interrupted run resumes where it stopped.
func indexJournal(db *bbolt.DB) error {
	for done := false; !done; {
		err := db.Update(func(tx *bbolt.Tx) error {
			j, ids := tx.Bucket(bucketJournal), tx.Bucket(bucketJournalIDs)
			last, through := j.Sequence(), ids.Sequence()
			if through >= last {
				done = true
				return nil
			}
			type entry struct {
				seq uint64
				id  string
			}
			var es []entry
			c := j.Cursor()
			k, v := c.Seek(seqKey(through + 1))
			for ; k != nil && len(es) < journalChunk; k, v = c.Next() {
				if len(k) != 8 {
					return fmt.Errorf("malformed journal key %q", k)
				}
				seq := binary.BigEndian.Uint64(k)
				p, _, err := decodeEntry(v)
				if err != nil {
					return fmt.Errorf("journal entry %d: %w", seq, err)
				}
				es = append(es, entry{seq, p.ID})
			}
			if k == nil {
				through, done = last, true
			} else {
				through = es[len(es)-1].seq
			}
			for _, e := range es {
				if err := ids.Put(journalIDKey(e.id, int64(e.seq)), nil); err != nil {
					return fmt.Errorf("index journal entry %d: %w", e.seq, err)
				}
			}
			return ids.SetSequence(through)
		})
		if err != nil {
			return fmt.Errorf("index the journal by profile: %w", err)
		}
	}
	return nil
}

// journalEntries appends the purchases taken from the profiles of an
// apply to the journal, each under the bucket's next sequence number, in
// the apply's write transaction, at being when they are journaled, and
// indexes them by profile. The entries are encoded into one buffer, which
// bbolt needs to stay as it is until the transaction ends: appending only
// ever writes past what the earlier entries use, so their slices stay
// valid when it grows.
type journalEntries struct {
	b   *bbolt.Bucket
	ids *bbolt.Bucket // bucketJournalIDs
	at  int64         // Unix nanoseconds
	buf []byte
}

func newJournalEntries(tx *bbolt.Tx, at time.Time) *journalEntries {
	b := tx.Bucket(bucketJournal)
	// Keys only ever go at the end: split pages are left full.
	b.FillPercent = 1
	return &journalEntries{b: b, ids: tx.Bucket(bucketJournalIDs), at: at.UnixNano()}
}

func (j *journalEntries) put(ps []store.Purchase) error {
	for i := range ps {
		seq, err := j.b.NextSequence()
		if err != nil {
			return fmt.Errorf("journal a purchase of profile %q: %w", ps[i].ID, err)
		}
		start := len(j.buf)
		j.buf = appendEntry(j.buf, j.at, &ps[i])
		if err := j.b.Put(seqKey(seq), j.buf[start:len(j.buf):len(j.buf)]); err != nil {
			return fmt.Errorf("journal a purchase of profile %q: %w", ps[i].ID, err)
		}
		if err := j.ids.Put(journalIDKey(ps[i].ID, int64(seq)), nil); err != nil {
			return fmt.Errorf("index a journaled purchase of profile %q: %w", ps[i].ID, err)
		}
	}
	// The index holds every entry up to the journal's sequence if it did
	// before these (Open saw to that): say so.
	if j.ids.Sequence() == j.b.Sequence()-uint64(len(ps)) {
		return j.ids.SetSequence(j.b.Sequence())
	}
	return nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

// Purchases implements store.Journal. The cursor is the sequence number of
// the last purchase returned, in decimal. Sequence numbers are taken in
// the writing transaction, and bbolt runs one at a time and shows readers
// only what has been committed, so the numbers a reader can see are all
// those up to the last committed one (but those trimmed): none can appear
// later below a cursor already returned. With nothing new, Purchases is
// one read transaction and one seek in the file's memory map: no system
// call, no disk read once the page is cached.
func (s *Store) Purchases(ctx context.Context, cursor string, max int) ([]store.Purchase, string, error) {
	if s.closed.Load() {
		return nil, "", store.ErrClosed
	}
	if max < 1 {
		return nil, "", fmt.Errorf("tailor/store/bolt: read of %d purchases of the journal, fewer than 1", max)
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	var after uint64
	if cursor != "" {
		n, err := strconv.ParseUint(cursor, 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("tailor/store/bolt: journal cursor %q: not a cursor of this store (a decimal sequence number)", cursor)
		}
		after = n
	}
	var out []store.Purchase
	for more := true; more && len(out) < max; {
		if s.closed.Load() {
			return nil, "", store.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		err := s.db.View(func(tx *bbolt.Tx) error {
			j := tx.Bucket(bucketJournal)
			if last := j.Sequence(); after > last {
				return fmt.Errorf("cursor %q is past the last purchase journaled, %d: a cursor of another file?", cursor, last)
			}
			c := j.Cursor()
			k, v := c.Seek(seqKey(after + 1))
			for n := min(max-len(out), journalChunk); k != nil && n > 0; k, v = c.Next() {
				if len(k) != 8 {
					return fmt.Errorf("malformed journal key %q", k)
				}
				seq := binary.BigEndian.Uint64(k)
				p, _, err := decodeEntry(v) // copies v
				if err != nil {
					return fmt.Errorf("journal entry %d: %w", seq, err)
				}
				out = append(out, p)
				after = seq
				n--
			}
			more = k != nil
			return nil
		})
		if err != nil {
			return nil, "", s.wrap(err, "read the journal after %q", cursor)
		}
	}
	if len(out) == 0 {
		return nil, cursor, nil
	}
	return out, strconv.FormatUint(after, 10), nil
}

// TrimPurchases implements store.Journal: it deletes entries from the
// start of the journal, which is in the order they were committed, while
// they were journaled before before, journalChunk per write transaction.
// The bucket's sequence is kept, so later purchases are numbered after
// every cursor handed out, and a cursor from before the trim resumes at
// the oldest entry kept.
func (s *Store) TrimPurchases(ctx context.Context, before time.Time) error {
	for {
		if s.closed.Load() {
			return store.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		full := false
		err := s.db.Update(func(tx *bbolt.Tx) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			j, ids := tx.Bucket(bucketJournal), tx.Bucket(bucketJournalIDs)
			var keys, idKeys [][]byte
			c := j.Cursor()
			for k, v := c.First(); k != nil && len(keys) < journalChunk; k, v = c.Next() {
				if len(v) < 8 {
					return fmt.Errorf("malformed journal entry %x: %d bytes", k, len(v))
				}
				if !time.Unix(0, int64(binary.BigEndian.Uint64(v))).Before(before) {
					break
				}
				keys = append(keys, bytes.Clone(k))
				// An entry that does not decode has no index key to find.
				if p, _, err := decodeEntry(v); err == nil && len(k) == 8 {
					idKeys = append(idKeys, journalIDKey(p.ID, int64(binary.BigEndian.Uint64(k))))
				}
			}
			full = len(keys) == journalChunk
			for _, k := range keys {
				if err := j.Delete(k); err != nil {
					return err
				}
			}
			for _, k := range idKeys {
				if err := ids.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return s.wrap(err, "trim the journal before %s", before.Format(time.RFC3339Nano))
		}
		if !full {
			return nil
		}
	}
}

// appendEntry appends the journal entry of p, journaled at at (Unix
// nanoseconds), to b:
//
//   - at: 8 bytes big-endian, first so that TrimPurchases reads it alone;
//   - the profile id (wire.AppendString);
//   - p.Time, as seconds after at's (wire.AppendTime: a few bytes, the
//     order being recent);
//   - the items: their number (uvarint), then per item its id and its
//     category (wire.AppendString);
//   - the prior ids, as they are sorted, front-coded
//     (wire.AppendFrontCodedList).
func appendEntry(b []byte, at int64, p *store.Purchase) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(at))
	b = wire.AppendString(b, p.ID)
	b = wire.AppendTime(b, p.Time, floorDiv(at, 1e9))
	b = binary.AppendUvarint(b, uint64(len(p.Items)))
	for _, it := range p.Items {
		b = wire.AppendString(b, it.ID)
		b = wire.AppendString(b, it.Category)
	}
	return wire.AppendFrontCodedList(b, p.Prior)
}

// floorDiv is a/b rounded down, for the seconds of Unix nanoseconds
// before 1970.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

var errEntry = errors.New("malformed entry")

// decodeEntry decodes what appendEntry appended. The strings share one
// copy of v, so the result stays valid after the transaction.
func decodeEntry(v []byte) (store.Purchase, time.Time, error) {
	if len(v) < 8 {
		return store.Purchase{}, time.Time{}, fmt.Errorf("%w: %d bytes, fewer than the 8 of when it was journaled", errEntry, len(v))
	}
	at := int64(binary.BigEndian.Uint64(v))
	d := wire.NewDecoder(string(v))
	d.Next(8) // at
	p := store.Purchase{ID: d.Str(), Time: d.Time(floorDiv(at, 1e9))}
	if n := d.Count(2); n > 0 {
		p.Items = make([]store.Item, n)
		for i := range p.Items {
			p.Items[i] = store.Item{ID: d.Str(), Category: d.Str()}
		}
	}
	p.Prior = d.FrontCodedList()
	if err := d.End(); err != nil {
		return store.Purchase{}, time.Time{}, fmt.Errorf("%w: %w", errEntry, err)
	}
	return p, time.Unix(0, at), nil
}
