package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tailorhq/tailor/store"
)

// flushBytes is how much writeAll buffers before it sends: the server
// starts writing while the rest is still being folded. It is small because
// pgx shrinks its send buffer to 1 kB after every flush and grows it again
// by a quarter at a time: sending each large profile on its own allocates
// about half as much as buffering 64 kB.
const flushBytes = 8 << 10

// Parameter types of the update, insert and addCounts statements.
var (
	updateOIDs = []uint32{pgtype.TextOID, pgtype.Int8OID, pgtype.Int8OID, pgtype.TimestamptzOID, pgtype.ByteaOID, pgtype.TextOID,
		pgtype.TimestamptzOID, pgtype.ByteaArrayOID}
	insertOIDs = []uint32{pgtype.TextOID, pgtype.Int8OID, pgtype.TimestamptzOID, pgtype.ByteaOID, pgtype.TextOID,
		pgtype.TimestamptzOID, pgtype.ByteaArrayOID}
	countsOIDs  = []uint32{pgtype.ByteaArrayOID, pgtype.Int8ArrayOID, pgtype.Int2OID}
	journalOIDs = []uint32{pgtype.ByteaArrayOID, pgtype.TextArrayOID}
	binaryFmt   = []int16{1} // one format code for every parameter
)

// shards is how many rows share the count of one key, so that writers
// that change the same count (every new profile changes CountProfiles)
// mostly lock different rows. A transaction adds its deltas to one shard,
// chosen at random: a count is the sum of its shards, whatever shard
// added or subtracted what.
const shards = 16

// shard returns a shard for a transaction's deltas.
func shard() int16 { return int16(rand.N(shards)) }

// writeAll writes the folded profiles of groups, in their order, in one
// pipeline that ends with one Sync, so in one transaction: the implicit
// transaction of the pipeline, or, with lock, the transaction that the read
// began, which it commits. It waits for ready[i] (if ready is not nil)
// before it sends writes[i]. It returns the groups whose compare-and-swap
// failed.
//
// When a write changes the counts or applied a purchase, the transaction
// adds to the counts the deltas of the profiles actually written, and
// journals their purchases: it reads the results of the compare-and-swaps
// (a Flush, without ending the transaction), then sends one statement with
// the sum of their deltas, sorted by key, one with their purchases, and
// only then the Sync. A transaction thus locks profile rows first, in id
// order, then count rows, in key order, as Delete and Expire do, and the
// journal's head row last; no two can deadlock. Writes that change no
// count and apply no purchase (most of them: a page view keeps the
// profile's keys) cost no extra round trip.
//
// writeAll speaks the extended protocol through pgconn rather than a
// pgx.Batch, which would buffer every profile of the chunk before sending
// the first: it encodes the parameters in binary itself and flushes every
// flushBytes. It uses prepared statements when the connection caches
// statements (pgx's default), and unnamed statements otherwise, as for a
// connection pooler.
func (s *Store) writeAll(ctx context.Context, c *pgx.Conn, groups []group, writes []write, ready []chan struct{}, lock bool) ([]group, error) {
	var update, insert, counts, journal *pgconn.StatementDescription
	if c.Config().DefaultQueryExecMode == pgx.QueryExecModeCacheStatement {
		var err error
		if update, err = prepare(ctx, c, s.sql.update, updateOIDs); err != nil {
			return nil, err
		}
		if insert, err = prepare(ctx, c, s.sql.insert, insertOIDs); err != nil {
			return nil, err
		}
		if counts, err = prepare(ctx, c, s.sql.addCounts, countsOIDs); err != nil {
			return nil, err
		}
		if journal, err = prepare(ctx, c, s.sql.journal, journalOIDs); err != nil {
			return nil, err
		}
	}

	pl := c.PgConn().StartPipeline(ctx)
	defer pl.Close() // after an error, reads what is left up to the Sync
	var (
		ints     [4 * 8]byte // the int8 and timestamptz parameters
		params   [8][]byte
		channel  = []byte(s.channel)
		pending  int
		tallying bool
	)
	for i := range groups {
		if ready != nil {
			<-ready[i]
		}
		w := &writes[i]
		if w.err != nil {
			return nil, fmt.Errorf("profile %q: %w", groups[i].id, w.err)
		}
		if w.erased {
			continue
		}
		tallying = tallying || len(w.delta) > 0 || w.purchases > 0
		// SendQuery* encode the parameters into the send buffer at once,
		// so ints and params are free again when they return.
		b := binary.BigEndian.AppendUint64(ints[:0], uint64(w.old))
		b = binary.BigEndian.AppendUint64(b, uint64(w.version))
		b = binary.BigEndian.AppendUint64(b, uint64(w.seen))
		b = binary.BigEndian.AppendUint64(b, uint64(w.recheck))
		var recheck []byte // NULL
		if w.hasRecheck {
			recheck = b[24:32]
		}
		p := params[:0]
		if w.exists {
			p = append(p, []byte(groups[i].id), b[0:8], b[8:16], b[16:24], w.data, channel, recheck, w.keys)
			send(pl, update, s.sql.update, updateOIDs, p)
		} else {
			p = append(p, []byte(groups[i].id), b[8:16], b[16:24], w.data, channel, recheck, w.keys)
			send(pl, insert, s.sql.insert, insertOIDs, p)
		}
		if pending += len(w.data); pending >= flushBytes {
			if err := pl.Flush(); err != nil {
				return nil, err
			}
			pending = 0
		}
	}

	var (
		lost []group
		done tally
	)
	if tallying {
		pl.SendFlushRequest()
		if err := pl.Flush(); err != nil {
			return nil, err
		}
		var err error
		if lost, done, err = written(pl, groups, writes, true); err != nil {
			pl.Sync() // ends the failed transaction, so that Close reads to its end
			return nil, err
		}
		if len(done.deltas) > 0 {
			keys, ns := sortedDeltas(done.deltas)
			p := append(params[:0], keys, ns, binary.BigEndian.AppendUint16(ints[:0], uint16(shard())))
			send(pl, counts, s.sql.addCounts, countsOIDs, p)
		}
		if done.purchases > 0 {
			ids := append(appendArrayHeader(nil, pgtype.TextOID, done.purchases), done.ids...)
			p := append(params[:0], entriesArray(done.purchases, done.entries), ids)
			send(pl, journal, s.sql.journal, journalOIDs, p)
		}
	}
	if lock {
		pl.SendQueryParams("COMMIT", nil, nil, nil, nil)
	}
	if err := pl.Sync(); err != nil {
		return nil, err
	}

	if !tallying {
		var err error
		if lost, _, err = written(pl, groups, writes, false); err != nil {
			return nil, err
		}
	} else {
		if len(done.deltas) > 0 {
			if _, err := result(pl); err != nil {
				return nil, err
			}
		}
		if done.purchases > 0 {
			if _, err := result(pl); err != nil {
				return nil, err
			}
		}
	}
	if lock {
		// A COMMIT of a failed transaction reports ROLLBACK, not an error.
		tag, err := result(pl)
		if err == nil && tag.String() != "COMMIT" {
			err = fmt.Errorf("transaction ended with %s", tag)
		}
		if err != nil {
			return nil, err
		}
	}
	res, err := pl.GetResults()
	if err != nil {
		return nil, err
	}
	if _, ok := res.(*pgconn.PipelineSync); !ok {
		return nil, fmt.Errorf("pipeline: got %T, want the end of the pipeline", res)
	}
	return lost, pl.Close()
}

// A tally is what the profiles written change beside themselves: the sum
// of their count deltas, and their purchases (elements of appendEntries)
// with the id of each one's profile (elements of a text[]).
type tally struct {
	deltas    map[string]int64
	entries   []byte
	ids       []byte
	purchases int
}

// written reads the results of the writes of groups sent on pl, and
// returns the groups whose compare-and-swap failed and, if sum, the tally
// of the others.
func written(pl *pgconn.Pipeline, groups []group, writes []write, sum bool) ([]group, tally, error) {
	var (
		lost []group
		t    tally
	)
	for i := range groups {
		w := &writes[i]
		if w.erased {
			continue
		}
		tag, err := result(pl)
		if err != nil {
			return nil, tally{}, err
		}
		if tag.RowsAffected() == 0 {
			lost = append(lost, groups[i])
			continue
		}
		if !sum {
			continue
		}
		if len(w.delta) > 0 {
			if t.deltas == nil {
				t.deltas = make(map[string]int64)
			}
			store.AddDeltas(t.deltas, w.delta)
		}
		if w.purchases > 0 {
			t.entries = append(t.entries, w.entries...)
			t.purchases += w.purchases
			for range w.purchases {
				t.ids = binary.BigEndian.AppendUint32(t.ids, uint32(len(groups[i].id)))
				t.ids = append(t.ids, groups[i].id...)
			}
		}
	}
	return lost, t, nil
}

// sortedDeltas returns the keys of deltas sorted, and their deltas, as the
// bytea[] and int8[] parameters of addCounts in binary form.
func sortedDeltas(deltas map[string]int64) (keys, ns []byte) {
	ks := slices.Sorted(maps.Keys(deltas))
	ns = appendArrayHeader(nil, pgtype.Int8OID, len(ks))
	for _, k := range ks {
		ns = binary.BigEndian.AppendUint32(ns, 8)
		ns = binary.BigEndian.AppendUint64(ns, uint64(deltas[k]))
	}
	return appendByteaArray(nil, ks), ns
}

// appendByteaArray appends elems as a one-dimensional bytea[] in
// PostgreSQL's binary form.
func appendByteaArray(b []byte, elems []string) []byte {
	n := 20 // the header
	for _, e := range elems {
		n += 4 + len(e)
	}
	b = slices.Grow(b, n)
	b = appendArrayHeader(b, pgtype.ByteaOID, len(elems))
	for _, e := range elems {
		b = binary.BigEndian.AppendUint32(b, uint32(len(e)))
		b = append(b, e...)
	}
	return b
}

// appendArrayHeader appends the header of a one-dimensional array of n
// elements of type oid, none NULL, in PostgreSQL's binary form; the n
// elements follow, each as its length (int4) and its bytes.
func appendArrayHeader(b []byte, oid uint32, n int) []byte {
	if n == 0 {
		b = binary.BigEndian.AppendUint32(b, 0) // no dimensions: '{}'
		b = binary.BigEndian.AppendUint32(b, 0) // no NULLs
		return binary.BigEndian.AppendUint32(b, oid)
	}
	b = binary.BigEndian.AppendUint32(b, 1) // one dimension
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, oid)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	return binary.BigEndian.AppendUint32(b, 1) // the lower bound
}

// prepare prepares sql on c (once per connection: pgx remembers it) and
// checks the types of its parameters.
func prepare(ctx context.Context, c *pgx.Conn, sql string, oids []uint32) (*pgconn.StatementDescription, error) {
	sd, err := c.Prepare(ctx, sql, sql)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(sd.ParamOIDs, oids) {
		return nil, fmt.Errorf("prepared statement has parameter types %v, want %v", sd.ParamOIDs, oids)
	}
	return sd, nil
}

// send queues a statement with binary parameters: prepared if sd is not
// nil, else unnamed.
func send(pl *pgconn.Pipeline, sd *pgconn.StatementDescription, sql string, oids []uint32, params [][]byte) {
	if sd != nil {
		pl.SendQueryStatement(sd, params, binaryFmt, nil)
	} else {
		pl.SendQueryParams(sql, params, oids, binaryFmt, nil)
	}
}

// result reads the result of the next statement of pl.
func result(pl *pgconn.Pipeline) (pgconn.CommandTag, error) {
	res, err := pl.GetResults()
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	rr, ok := res.(*pgconn.ResultReader)
	if !ok {
		return pgconn.CommandTag{}, fmt.Errorf("pipeline: got %T, want a statement's result", res)
	}
	return rr.Close()
}
