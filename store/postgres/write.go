package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// flushBytes is how much writeAll buffers before it sends: the server
// starts writing while the rest is still being folded. It is small because
// pgx shrinks its send buffer to 1 kB after every flush and grows it again
// by a quarter at a time: sending each large profile on its own allocates
// about half as much as buffering 64 kB.
const flushBytes = 8 << 10

// Parameter types of the update and insert statements.
var (
	updateOIDs = []uint32{pgtype.TextOID, pgtype.Int8OID, pgtype.Int8OID, pgtype.TimestamptzOID, pgtype.ByteaOID, pgtype.TextOID}
	insertOIDs = []uint32{pgtype.TextOID, pgtype.Int8OID, pgtype.TimestamptzOID, pgtype.ByteaOID, pgtype.TextOID}
	binaryFmt  = []int16{1} // one format code for every parameter
)

// writeAll writes the folded profiles of groups, in their order, in one
// pipeline that ends with one Sync, so in one transaction: the implicit
// transaction of the pipeline, or, with lock, the transaction that the read
// began, which it commits. It waits for ready[i] (if ready is not nil)
// before it sends writes[i]. It returns the groups whose compare-and-swap
// failed.
//
// writeAll speaks the extended protocol through pgconn rather than a
// pgx.Batch, which would buffer every profile of the chunk before sending
// the first: it encodes the parameters in binary itself and flushes every
// flushBytes. It uses prepared statements when the connection caches
// statements (pgx's default), and unnamed statements otherwise, as for a
// connection pooler.
func (s *Store) writeAll(ctx context.Context, c *pgx.Conn, groups []group, writes []write, ready []chan struct{}, lock bool) ([]group, error) {
	var update, insert *pgconn.StatementDescription
	if c.Config().DefaultQueryExecMode == pgx.QueryExecModeCacheStatement {
		var err error
		if update, err = prepare(ctx, c, s.sql.update, updateOIDs); err != nil {
			return nil, err
		}
		if insert, err = prepare(ctx, c, s.sql.insert, insertOIDs); err != nil {
			return nil, err
		}
	}

	pl := c.PgConn().StartPipeline(ctx)
	defer pl.Close() // after an error, reads what is left up to the Sync
	var (
		ints    [3 * 8]byte // the int8 and timestamptz parameters
		params  [6][]byte
		channel = []byte(s.channel)
		pending int
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
		// SendQuery* encode the parameters into the send buffer at once,
		// so ints and params are free again when they return.
		b := binary.BigEndian.AppendUint64(ints[:0], uint64(w.old))
		b = binary.BigEndian.AppendUint64(b, uint64(w.version))
		b = binary.BigEndian.AppendUint64(b, uint64(w.seen))
		p := params[:0]
		if w.exists {
			p = append(p, []byte(groups[i].id), b[0:8], b[8:16], b[16:24], w.data, channel)
			send(pl, update, s.sql.update, updateOIDs, p)
		} else {
			p = append(p, []byte(groups[i].id), b[8:16], b[16:24], w.data, channel)
			send(pl, insert, s.sql.insert, insertOIDs, p)
		}
		if pending += len(w.data); pending >= flushBytes {
			if err := pl.Flush(); err != nil {
				return nil, err
			}
			pending = 0
		}
	}
	if lock {
		pl.SendQueryParams("COMMIT", nil, nil, nil, nil)
	}
	if err := pl.Sync(); err != nil {
		return nil, err
	}

	var lost []group
	for i := range groups {
		if writes[i].erased {
			continue
		}
		tag, err := result(pl)
		if err != nil {
			return nil, err
		}
		if tag.RowsAffected() == 0 {
			lost = append(lost, groups[i])
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
