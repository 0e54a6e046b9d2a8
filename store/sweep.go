package store

import (
	"context"
	"fmt"
	"time"
)

// Swept is what one Sweep deleted.
type Swept struct {
	Sessions    int64 // expired sessions
	LimitEvents int64 // limit counts older than every window
	Skipped     bool  // another instance holds the sweep (PostgreSQL)
}

// sweepBatch bounds one delete, so that a sweep after a flood never holds the tables (or, on
// SQLite, the writer connection) for long.
const sweepBatch = 1000

// SweepLockKey is the PostgreSQL advisory lock of the sweep: one instance sweeps at a time.
const SweepLockKey int64 = 0x6d61726b6574_01 // "market", 1

// Sweep deletes expired sessions and, on PostgreSQL, the limit counts older than limitsBefore
// (SQLite's are in the handlers' memory). Tables that grow with requests stay bounded by what
// their windows hold. On PostgreSQL an instance that finds another sweeping skips its turn.
func (s *Store) Sweep(ctx context.Context, limitsBefore time.Time) (Swept, error) {
	pool := s.eng.pool()
	if pool == nil {
		n, err := s.deleteInBatches(ctx, `DELETE FROM sessions WHERE token IN
			(SELECT token FROM sessions WHERE expiry < julianday('now') LIMIT ?)`)
		return Swept{Sessions: n}, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return Swept{}, fmt.Errorf("sweep: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, SweepLockKey).Scan(&locked); err != nil {
		return Swept{}, fmt.Errorf("sweep: lock: %w", err)
	}
	if !locked {
		return Swept{Skipped: true}, nil
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, SweepLockKey)
	var sw Swept
	sw.Sessions, err = s.deleteInBatches(ctx, `DELETE FROM sessions WHERE ctid IN
		(SELECT ctid FROM sessions WHERE expiry < now() LIMIT ?)`)
	if err != nil {
		return sw, err
	}
	sw.LimitEvents, err = s.deleteInBatches(ctx, `DELETE FROM limit_events WHERE ctid IN
		(SELECT ctid FROM limit_events WHERE at < ? LIMIT ?)`, limitsBefore)
	return sw, err
}

// deleteInBatches runs query (whose last parameter is the batch size) until it deletes less
// than a batch, and returns how many rows it deleted.
func (s *Store) deleteInBatches(ctx context.Context, query string, args ...any) (int64, error) {
	var total int64
	for {
		res, err := s.db.ExecContext(ctx, query, append(args, sweepBatch)...)
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

// Rows counts the rows of the tables that grow with requests: sessions and (PostgreSQL)
// limit_events, for tests and the abuse checks.
func (s *Store) Rows(ctx context.Context) (sessions, limitEvents int64, err error) {
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM sessions`).Scan(&sessions); err != nil {
		return 0, 0, fmt.Errorf("count sessions: %w", err)
	}
	if s.eng.pool() == nil {
		return sessions, 0, nil
	}
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM limit_events`).Scan(&limitEvents); err != nil {
		return 0, 0, fmt.Errorf("count limit events: %w", err)
	}
	return sessions, limitEvents, nil
}
