package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"market/store/driver"
)

// sweepBatch bounds one delete, so that a sweep after a flood never holds the tables for long.
const sweepBatch = 1000

// SweepLockKey is the advisory lock of the sweep: one instance sweeps at a time.
const SweepLockKey int64 = 0x6d61726b6574_01 // "market", 1

// Sweep deletes expired sessions and the limit counts older than limitsBefore, a batch at a
// time; an instance that finds another sweeping skips its turn.
func (e *Engine) Sweep(ctx context.Context, limitsBefore time.Time) (driver.Swept, error) {
	conn, err := e.pgx.Acquire(ctx)
	if err != nil {
		return driver.Swept{}, fmt.Errorf("sweep: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, SweepLockKey).Scan(&locked); err != nil {
		return driver.Swept{}, fmt.Errorf("sweep: lock: %w", err)
	}
	if !locked {
		return driver.Swept{Skipped: true}, nil
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, SweepLockKey)
	var sw driver.Swept
	sw.Sessions, err = e.deleteInBatches(ctx, `DELETE FROM sessions WHERE ctid IN
		(SELECT ctid FROM sessions WHERE expiry < now() LIMIT ?)`)
	if err != nil {
		return sw, err
	}
	sw.LimitEvents, err = e.deleteInBatches(ctx, `DELETE FROM limit_events WHERE ctid IN
		(SELECT ctid FROM limit_events WHERE at < ? LIMIT ?)`, limitsBefore)
	return sw, err
}

// deleteInBatches runs query (whose last parameter is the batch size) until it deletes less
// than a batch, and returns how many rows it deleted.
func (e *Engine) deleteInBatches(ctx context.Context, query string, args ...any) (int64, error) {
	var total int64
	for {
		res, err := e.db.ExecContext(ctx, query, append(args, sweepBatch)...)
		if err != nil {
			return total, fmt.Errorf("sweep: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n < sweepBatch {
			return total, nil
		}
	}
}

// Rows counts the sessions and the limit counts.
func (e *Engine) Rows(ctx context.Context) (sessions, limitEvents int64, err error) {
	if err := e.db.QueryRowContext(ctx, `SELECT count(*) FROM sessions`).Scan(&sessions); err != nil {
		return 0, 0, fmt.Errorf("count sessions: %w", err)
	}
	if err := e.db.QueryRowContext(ctx, `SELECT count(*) FROM limit_events`).Scan(&limitEvents); err != nil {
		return 0, 0, fmt.Errorf("count limit events: %w", err)
	}
	return sessions, limitEvents, nil
}

// Backup is not supported: PostgreSQL's own tools do it better (see store.Backup's message).
func (e *Engine) Backup(context.Context, string) error { return driver.ErrNotSupported }

// Copy says a PostgreSQL market can be a copy's target (from SQLite).
func (e *Engine) Copy() driver.Copying { return driver.Copying{Target: true} }

// Load writes the tables with CopyFrom, in one transaction, then moves the id sequences
// beyond the copied ids. Its market versions are past the source's already: a PostgreSQL
// version carries the database's epoch, rolled when it was created, above every SQLite
// version; and the events are not copied, so a live stream from before the copy gets a refresh.
func (e *Engine) Load(ctx context.Context, tables func(driver.LoadFunc) error) error {
	return pgx.BeginFunc(ctx, e.pgx, func(tx pgx.Tx) error {
		err := tables(func(table string, cols []string, rows [][]any) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
			return err
		})
		if err != nil {
			return err
		}
		for _, t := range []string{"users", "items", "trades", "admin_log"} {
			if _, err := tx.Exec(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%s', 'id'),
				(SELECT coalesce(max(id), 0) + 1 FROM %[1]s), false)`, t)); err != nil {
				return fmt.Errorf("sequence of %s: %w", t, err)
			}
		}
		return nil
	})
}

// Moved compares the positions, without the bit that says whether a version is exact.
func (e *Engine) Moved(version, since int64) bool { return version/2 != since/2 }

// Exact is false for a version read while a transaction of this database older than the newest
// change still runs: it is odd (see feed.go); SQLite's small versions (a copy's source) are below
// the first epoch.
func (e *Engine) Exact(version int64) bool { return version < pgEpochUnit || version&1 == 0 }
