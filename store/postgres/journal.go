package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tailorhq/tailor/internal/wire"
	"github.com/tailorhq/tailor/store"
)

// trimChunk is the most journal entries TrimPurchases deletes in one
// statement, so that each of its transactions stays short.
const trimChunk = 5000

// Purchases implements store.Journal with one query: the entries after the
// cursor's position, in the order of their positions (see the package
// documentation). The cursor is the position of the last entry returned,
// in decimal; "" is the start.
func (s *Store) Purchases(ctx context.Context, cursor string, max int) ([]store.Purchase, string, error) {
	if err := store.CheckScan(ctx, s.closed.Load(), max); err != nil {
		return nil, "", err
	}
	var after int64
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n < 0 {
			return nil, "", fmt.Errorf("tailor/store/postgres: journal cursor %q of table %s: want a position, as Purchases returns", cursor, s.table)
		}
		after = n
	}
	var (
		out  []store.Purchase
		last int64
	)
	err := s.again(ctx, func() error {
		out, last = out[:0], after
		rows, err := s.pool.Query(ctx, s.sql.purchases, after, max)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var data []byte
			if err := rows.Scan(&last, &data); err != nil {
				return err
			}
			p, err := decodePurchase(data)
			if err != nil {
				return fmt.Errorf("journal entry %d: %w", last, err)
			}
			out = append(out, p)
		}
		return rows.Err()
	})
	switch {
	case isUndefinedTable(err):
		// Migrated before the journal, and no purchase written since.
		return nil, cursor, nil
	case err != nil:
		return nil, "", fmt.Errorf("tailor/store/postgres: purchases of table %s after %q: %w", s.table, cursor, err)
	case len(out) == 0:
		return nil, cursor, nil
	}
	return out, strconv.FormatInt(last, 10), nil
}

// TrimPurchases implements store.Journal: it deletes the entries journaled
// before before by the server's clock, up to 5000 per statement, in the
// order of their positions, up to the first entry journaled at or after
// before. Cursors stay valid: positions are never reused.
func (s *Store) TrimPurchases(ctx context.Context, before time.Time) error {
	if err := store.CheckScan(ctx, s.closed.Load(), 1); err != nil {
		return err
	}
	limit := timestamp(before)
	var after int64
	for {
		if s.closed.Load() {
			return store.ErrClosed
		}
		var n, last int64
		err := s.again(ctx, func() error {
			// Deleting again what a broken connection may have deleted is
			// harmless.
			return s.pool.QueryRow(ctx, s.sql.trim, limit, after, trimChunk).Scan(&n, &last)
		})
		switch {
		case isUndefinedTable(err):
			return nil // no journal: nothing to forget
		case err != nil:
			return fmt.Errorf("tailor/store/postgres: trim the purchases of table %s journaled before %v: %w", s.table, before, err)
		case n < trimChunk:
			return nil
		}
		after = last
	}
}

// journalFormat is the first byte of an encoded journal entry.
const journalFormat = 1

// appendPurchase appends the compact encoding of p to b: a format byte,
// the profile id, the time (Unix seconds as a varint, then nanoseconds),
// the items and the prior ids, with the pieces of package wire. Items and
// prior ids are sorted by id, so each id is front-coded: kept as the
// length of the prefix it shares with the one before and the rest
// ("sku-1041", "sku-1042" cost 10 and 3 bytes); an item's category is 0
// when it is the previous item's (or empty for the first), else its
// length plus one and its bytes.
func appendPurchase(b []byte, p *store.Purchase) []byte {
	b = append(b, journalFormat)
	b = wire.AppendString(b, p.ID)
	b = wire.AppendTime(b, p.Time, 0)
	b = binary.AppendUvarint(b, uint64(len(p.Items)))
	prev, cat := "", ""
	for _, it := range p.Items {
		b = wire.AppendFrontCoded(b, prev, it.ID)
		if it.Category == cat {
			b = append(b, 0)
		} else {
			b = binary.AppendUvarint(b, uint64(len(it.Category))+1)
			b = append(b, it.Category...)
		}
		prev, cat = it.ID, it.Category
	}
	return wire.AppendFrontCodedList(b, p.Prior)
}

// errEntry is the error of an entry that appendPurchase did not make.
var errEntry = errors.New("malformed journal entry")

// decodePurchase decodes an entry of appendPurchase. The strings share
// one copy of b.
func decodePurchase(b []byte) (store.Purchase, error) {
	if len(b) == 0 || b[0] != journalFormat {
		return store.Purchase{}, fmt.Errorf("%w: want format %d", errEntry, journalFormat)
	}
	d := wire.NewDecoder(string(b))
	d.Next(1) // the format
	p := store.Purchase{ID: d.Str(), Time: d.Time(0)}
	if n := d.Count(1); n > 0 {
		p.Items = make([]store.Item, n)
		prev, cat := "", ""
		for i := range p.Items {
			prev = d.FrontCoded(prev)
			if c := d.Uvarint(); c > 0 {
				cat = d.Next(c - 1)
			}
			p.Items[i] = store.Item{ID: prev, Category: cat}
		}
	}
	p.Prior = d.FrontCodedList()
	if err := d.End(); err != nil {
		return store.Purchase{}, fmt.Errorf("%w: %w", errEntry, err)
	}
	return p, nil
}

// appendEntries appends the purchases to entries as elements of a bytea[]
// in binary form (each its length and its bytes), for the journal
// statement, and returns them and how many there are.
func appendEntries(entries []byte, ps []store.Purchase) ([]byte, int) {
	for i := range ps {
		at := len(entries)
		entries = append(entries, 0, 0, 0, 0)
		entries = appendPurchase(entries, &ps[i])
		binary.BigEndian.PutUint32(entries[at:], uint32(len(entries)-at-4))
	}
	return entries, len(ps)
}

// entriesArray returns the bytea[] parameter of the journal statement: n
// elements of appendEntries.
func entriesArray(n int, elems []byte) []byte {
	b := make([]byte, 0, 20+len(elems))
	b = appendArrayHeader(b, pgtype.ByteaOID, n)
	return append(b, elems...)
}
