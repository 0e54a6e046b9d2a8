package driver

import (
	"context"
	"database/sql"
)

// Batch is a read-only snapshot whose statements are queued, then sent together by Send. On
// PostgreSQL each Send is one round trip, the snapshot's BEGIN going with the first and its
// end with the last: the reads of a page in one snapshot then wait for one round trip, not
// one each and two more for the snapshot.
type Batch interface {
	// Position queues the read of the market version the snapshot sees (Driver.Position;
	// whether it is exact, the version itself says: see Store.Exact).
	Position(version *int64)
	// Query queues a statement (the shared SQL, ? placeholders); row is called for each of its
	// rows, with the row's scan.
	Query(query string, args []any, row func(scan func(dest ...any) error) error)
	// Send runs what is queued, in order, and ends the snapshot with it when end. After an
	// error the snapshot is of no more use.
	Send(end bool) error
	// Close ends the snapshot if no Send did: on every path, after an error too.
	Close()
}

// TxBatch is a Batch whose statements run in tx as Send comes to them, one at a time, with
// position the engine's Position. When ends, the batch ends tx (read-only: a rollback); else
// tx is the caller's to end.
func TxBatch(ctx context.Context, tx *sql.Tx, position func(context.Context, Querier) (int64, bool, error), ends bool) Batch {
	return &txBatch{ctx: ctx, tx: tx, position: position, ends: ends}
}

type txBatch struct {
	ctx      context.Context
	tx       *sql.Tx
	position func(context.Context, Querier) (int64, bool, error)
	ends     bool
	queue    []func() error
}

func (b *txBatch) Position(version *int64) {
	b.queue = append(b.queue, func() (err error) {
		*version, _, err = b.position(b.ctx, b.tx)
		return err
	})
}

func (b *txBatch) Query(query string, args []any, row func(scan func(dest ...any) error) error) {
	b.queue = append(b.queue, func() error {
		rows, err := b.tx.QueryContext(b.ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := row(rows.Scan); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

func (b *txBatch) Send(end bool) error {
	queue := b.queue
	b.queue = nil
	for _, run := range queue {
		if err := run(); err != nil {
			return err
		}
	}
	if end {
		b.Close()
	}
	return nil
}

func (b *txBatch) Close() {
	if b.ends {
		b.tx.Rollback() // read-only: nothing to keep, and an error changes nothing
	}
}
