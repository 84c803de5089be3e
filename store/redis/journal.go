package redis

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tailorhq/tailor/internal/wire"
	"github.com/tailorhq/tailor/store"
)

// journalRecheck bounds how long Purchases trusts the journal's tick: a
// reader whose cursor was at the end of the journal when the tick had
// some value reads the streams again when the tick changes, or this long
// after it last read them. The tick is incremented after the writes it
// announces; if a writer fails between the two, the purchases it
// journaled are read this much later, not lost.
const journalRecheck = time.Minute

// maxJournalRounds bounds the round trips of one Purchases.
const maxJournalRounds = 4

// tickKey returns the key of the journal's tick (see Journal in the
// package documentation): one key, outside the buckets.
func (s *Store) tickKey() string { return s.prefix + "journal" }

// Purchases implements store.Journal. It reads the bucket journals from
// the cursor's positions in one pipeline (XRANGE from the id after each),
// then, while the page is not full, reads on from the buckets that had
// more, and returns the purchases read, oldest first by the ids Redis
// gave them, up to max. A purchase is taken only after every earlier one
// of its bucket, so the cursor, which holds the id of the last purchase
// taken from each bucket, never passes one that was not returned.
//
// First it reads the journal's tick: if this Store read every bucket to
// its end from this cursor since the tick last changed, less than
// journalRecheck ago, it returns at once, with no purchase and the cursor
// unchanged. An idle reader's poll is then one GET.
func (s *Store) Purchases(ctx context.Context, cursor string, max int) ([]store.Purchase, string, error) {
	if err := store.CheckScan(ctx, s.closed.Load(), max); err != nil {
		return nil, "", err
	}
	tick, err := s.client.Get(ctx, s.tickKey()).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, "", s.wrap(err, "read the journal's tick")
	}
	if s.jmemo.atEnd(cursor, tick, time.Now()) { // a cursor parsed before
		return nil, cursor, nil
	}
	pos, err := parseJournalCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	// The purchases committed before tick was read are in the streams
	// now; any committed later changes the tick.
	read, drained, err := s.readJournal(ctx, pos, max)
	if err != nil {
		return nil, "", err
	}
	if len(read) == 0 {
		s.jmemo.put(cursor, tick, time.Now())
		return nil, cursor, nil
	}
	out := make([]store.Purchase, len(read))
	for i, e := range read {
		if out[i], err = decodePurchase(e.val); err != nil {
			return nil, "", fmt.Errorf("tailor/store/redis: journal entry %s of %s: %w", e.id, s.journalKey(uint32(e.b)), err)
		}
		pos[e.b] = e.id
	}
	next := pos.String()
	if drained {
		s.jmemo.put(next, tick, time.Now())
	}
	return out, next, nil
}

// jentry is an entry read from a bucket's journal.
type jentry struct {
	b   int
	id  streamID
	val string
}

// readJournal reads up to max entries after pos, oldest first, each
// bucket's in order. drained reports that every bucket was read to its
// end and every entry read is returned.
func (s *Store) readJournal(ctx context.Context, pos *journalCursor, max int) (read []jentry, drained bool, err error) {
	from := *pos // where each bucket's reading goes on
	want := make([]int, buckets)
	for b := range want {
		want[b] = b
	}
	count := (max + buckets - 1) / buckets
	for round := 0; ; round++ {
		if s.closed.Load() {
			return nil, false, store.ErrClosed
		}
		pipe := s.client.Pipeline()
		cmds := make([]*goredis.XMessageSliceCmd, len(want))
		for i, b := range want {
			start := "-"
			if id := from[b]; id != (streamID{}) {
				start = "(" + id.String()
			}
			cmds[i] = pipe.XRangeN(ctx, s.journalKey(uint32(b)), start, "+", int64(count))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, false, s.wrap(err, "read the journal")
		}
		var more []int
		for i, b := range want {
			msgs := cmds[i].Val()
			for _, m := range msgs {
				id, err := parseStreamID(m.ID)
				if err != nil {
					return nil, false, fmt.Errorf("tailor/store/redis: journal %s: %w", s.journalKey(uint32(b)), err)
				}
				val, ok := m.Values["p"].(string)
				if !ok {
					return nil, false, fmt.Errorf("tailor/store/redis: journal entry %s of %s: no field p", m.ID, s.journalKey(uint32(b)))
				}
				read = append(read, jentry{b, id, val})
				from[b] = id
			}
			if len(msgs) == count {
				more = append(more, b)
			}
		}
		if len(read) >= max || len(more) == 0 || round == maxJournalRounds-1 {
			drained = len(more) == 0 && len(read) <= max
			break
		}
		want, count = more, (max-len(read)+len(more)-1)/len(more)
	}
	// Oldest first: each bucket's entries stay in order, so the first max
	// hold, of each bucket, the entries up to some id.
	slices.SortFunc(read, func(x, y jentry) int {
		if c := x.id.compare(y.id); c != 0 {
			return c
		}
		return cmp.Compare(x.b, y.b)
	})
	return read[:min(len(read), max)], drained, nil
}

// TrimPurchases implements store.Journal: XTRIM MINID on every bucket's
// journal, in one pipeline, with the millisecond of before. Entry ids
// are the server's clock in milliseconds when the purchase was
// journaled, so the entries of before's own millisecond are kept.
func (s *Store) TrimPurchases(ctx context.Context, before time.Time) error {
	if err := store.CheckScan(ctx, s.closed.Load(), 1); err != nil {
		return err
	}
	ms := before.UnixMilli()
	if ms <= 0 { // before any id Redis gives
		return nil
	}
	minID := strconv.FormatInt(ms, 10)
	pipe := s.client.Pipeline()
	for b := range uint32(buckets) {
		pipe.XTrimMinID(ctx, s.journalKey(b), minID)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return s.wrap(err, "trim the journal before %s", before.Format(time.RFC3339Nano))
	}
	return nil
}

// journalMemo remembers the cursors this Store found at the end of the
// journal, each with the tick read before it looked: while the tick is
// the same, nothing was journaled since (see Store.cas).
type journalMemo struct {
	ttl time.Duration // journalRecheck; shorter in tests
	mu  sync.Mutex
	m   map[string]memoEntry
}

type memoEntry struct {
	tick string
	at   time.Time
}

// maxMemo bounds the cursors remembered: a reader polls with one.
const maxMemo = 8

// atEnd reports whether cursor was found at the end of the journal when
// the tick was tick, less than ttl before now.
func (j *journalMemo) atEnd(cursor, tick string, now time.Time) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok := j.m[cursor]
	return ok && e.tick == tick && now.Sub(e.at) < j.ttl
}

// put remembers that cursor was at the end of the journal when the tick
// was tick.
func (j *journalMemo) put(cursor, tick string, now time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.m == nil {
		j.m = make(map[string]memoEntry)
	}
	if _, ok := j.m[cursor]; !ok && len(j.m) >= maxMemo {
		for c, e := range j.m {
			if now.Sub(e.at) >= j.ttl {
				delete(j.m, c)
			}
		}
		if len(j.m) >= maxMemo {
			clear(j.m)
		}
	}
	j.m[cursor] = memoEntry{tick, now}
}

// A streamID is the id of a stream entry: milliseconds and a sequence
// number. The zero value is before every id Redis gives.
type streamID struct{ ms, seq uint64 }

func (id streamID) String() string {
	return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq, 10)
}

func (id streamID) compare(o streamID) int {
	if c := cmp.Compare(id.ms, o.ms); c != 0 {
		return c
	}
	return cmp.Compare(id.seq, o.seq)
}

func parseStreamID(s string) (streamID, error) {
	a, b, ok := strings.Cut(s, "-")
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return streamID{}, fmt.Errorf("stream id %q: not <ms>-<seq>", s)
	}
	return streamID{ms, seq}, nil
}

// A journalCursor holds, per bucket, the id of the last entry read from
// its journal (zero: none).
type journalCursor [buckets]streamID

// cursorVersion starts every encoded cursor.
const cursorVersion = 1

// String encodes c compactly, as URL-safe base64 of uvarints: the
// version, the largest millisecond m of its ids, then for each bucket with
// an id, in order, the number of buckets skipped since the previous one,
// and m minus the id's millisecond, times 2, plus 1 if the id's sequence
// number follows (it is not 0, which it is but for the second entry of a
// bucket in one millisecond). A bucket takes 2 bytes, 5 for ids an hour
// older than the newest, so a cursor through every bucket is about 7 KB
// of text; "" is the cursor of no id.
func (c *journalCursor) String() string {
	var top uint64
	found := false
	for _, id := range c {
		if id != (streamID{}) {
			top, found = max(top, id.ms), true
		}
	}
	if !found {
		return ""
	}
	b := []byte{cursorVersion}
	b = binary.AppendUvarint(b, top)
	prev := -1
	for i, id := range c {
		if id == (streamID{}) {
			continue
		}
		b = binary.AppendUvarint(b, uint64(i-prev-1))
		if id.seq == 0 {
			b = binary.AppendUvarint(b, (top-id.ms)<<1)
		} else {
			b = binary.AppendUvarint(b, (top-id.ms)<<1|1)
			b = binary.AppendUvarint(b, id.seq)
		}
		prev = i
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseJournalCursor decodes a cursor made by journalCursor.String.
func parseJournalCursor(s string) (*journalCursor, error) {
	c := new(journalCursor)
	if s == "" {
		return c, nil
	}
	bad := func(why string) error {
		shown := s
		if len(shown) > 40 {
			shown = shown[:40] + "..."
		}
		return fmt.Errorf("tailor/store/redis: journal cursor %q: %s: not a cursor this store made", shown, why)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad("not base64")
	}
	if len(b) == 0 || b[0] != cursorVersion {
		return nil, bad("unknown version")
	}
	b = b[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	top, ok := next()
	if !ok {
		return nil, bad("truncated")
	}
	bucket := -1
	for len(b) > 0 {
		skip, ok1 := next()
		back, ok2 := next()
		var seq uint64
		ok3 := true
		if back&1 == 1 {
			if seq, ok3 = next(); seq == 0 {
				return nil, bad("sequence number 0 written")
			}
		}
		back >>= 1
		if !ok1 || !ok2 || !ok3 {
			return nil, bad("truncated")
		}
		if skip >= buckets || uint64(bucket+1)+skip >= buckets {
			return nil, bad("bucket out of range")
		}
		if back > top {
			return nil, bad("id before the epoch")
		}
		bucket += 1 + int(skip)
		c[bucket] = streamID{top - back, seq}
		if c[bucket] == (streamID{}) {
			return nil, bad("id 0-0")
		}
	}
	if bucket < 0 {
		return nil, bad("no bucket")
	}
	return c, nil
}

// purchaseVersion starts every encoded purchase.
const purchaseVersion = 1

// appendPurchase appends the encoding of p that the journal keeps: the
// version, the profile id, the time (a byte 0 for the zero time, else 1
// and the time), the items (id and category) and the Prior ids. Items and
// Prior are sorted by id, so each id is front-coded: kept as the length
// of the prefix it shares with the one before it and the rest
// ("sku-1041", "sku-1077" take 10 and 4 bytes). The pieces are those of
// package wire.
func appendPurchase(b []byte, p *store.Purchase) []byte {
	b = append(b, purchaseVersion)
	b = wire.AppendString(b, p.ID)
	if p.Time.IsZero() {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = wire.AppendTime(b, p.Time, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Items)))
	prev := ""
	for _, it := range p.Items {
		b = wire.AppendFrontCoded(b, prev, it.ID)
		b = wire.AppendString(b, it.Category)
		prev = it.ID
	}
	return wire.AppendFrontCodedList(b, p.Prior)
}

// errPurchase is the error of an entry that appendPurchase did not make.
var errPurchase = errors.New("not a purchase this store encoded")

// decodePurchase decodes what appendPurchase encoded.
func decodePurchase(s string) (store.Purchase, error) {
	d := wire.NewDecoder(s)
	var p store.Purchase
	if v := d.Byte(); v != purchaseVersion && d.Err() == nil {
		return p, fmt.Errorf("%w: version %d, want %d", errPurchase, v, purchaseVersion)
	}
	p.ID = d.Str()
	switch f := d.Byte(); f {
	case 0:
	case 1:
		p.Time = d.Time(0)
	default:
		d.Failf("a time flag of %d, want 0 or 1", f)
	}
	if n := d.Count(2); n > 0 {
		p.Items = make([]store.Item, n)
		prev := ""
		for i := range p.Items {
			p.Items[i].ID = d.FrontCoded(prev)
			p.Items[i].Category = d.Str()
			prev = p.Items[i].ID
		}
	}
	p.Prior = d.FrontCodedList()
	if err := d.End(); err != nil {
		return store.Purchase{}, fmt.Errorf("%w: %w", errPurchase, err)
	}
	return p, nil
}
