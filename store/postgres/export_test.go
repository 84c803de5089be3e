package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/tailorhq/tailor/store"
)

// JournalIn runs, in tx, the statement with which a write journals the
// purchases it applied, so that a test can hold a journaling transaction
// open while others commit.
func (s *Store) JournalIn(ctx context.Context, tx pgx.Tx, ps ...store.Purchase) error {
	elems := make([][]byte, len(ps))
	ids := make([]string, len(ps))
	for i := range ps {
		elems[i] = appendPurchase(nil, &ps[i])
		ids[i] = ps[i].ID
	}
	_, err := tx.Exec(ctx, s.sql.journal, elems, ids)
	return err
}
