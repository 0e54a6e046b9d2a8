package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The counts that protect users (failed logins, sign-ups) are kept in the database, so that
// N instances do not allow N times the guesses.

// limits keeps the counts in limit_events, for every instance. Keys come hashed
// and times truncated to what timestamptz keeps.
type limits struct{ pool *pgxpool.Pool }

// tx runs fn holding a transaction-scoped advisory lock on (bucket, key): checking and
// recording under one lock is what makes a limit hold across instances.
func (l limits) tx(ctx context.Context, bucket, key string, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))`, bucket, key); err != nil {
			return err
		}
		return fn(tx)
	})
}

// recentLimit drops key's events older than window and returns the start of the wait when
// at least limit are left: the limit-th newest event plus the window.
func recentLimit(ctx context.Context, tx pgx.Tx, bucket, key string, limit int, window time.Duration, now time.Time) (time.Duration, error) {
	if _, err := tx.Exec(ctx, `DELETE FROM limit_events WHERE bucket = $1 AND key = $2 AND at <= $3`,
		bucket, key, now.Add(-window)); err != nil {
		return 0, err
	}
	var at time.Time
	err := tx.QueryRow(ctx, `SELECT at FROM limit_events WHERE bucket = $1 AND key = $2 ORDER BY at DESC OFFSET $3 LIMIT 1`,
		bucket, key, limit-1).Scan(&at)
	if err == pgx.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return max(at.Add(window).Sub(now), time.Nanosecond), nil
}

// Take: see driver.Limits.
func (l limits) Take(ctx context.Context, bucket, key string, limit int, window time.Duration, now time.Time) (time.Duration, error) {
	var wait time.Duration
	err := l.tx(ctx, bucket, key, func(tx pgx.Tx) error {
		var err error
		if wait, err = recentLimit(ctx, tx, bucket, key, limit, window, now); err != nil || wait > 0 {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO limit_events (bucket, key, at) VALUES ($1, $2, $3)`, bucket, key, now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("limit %s: %w", bucket, err)
	}
	return wait, nil
}

// RetryAfter: see driver.Limits.
func (l limits) RetryAfter(ctx context.Context, bucket, key string, limit int, window time.Duration, now time.Time) (time.Duration, error) {
	var wait time.Duration
	err := l.tx(ctx, bucket, key, func(tx pgx.Tx) error {
		var err error
		wait, err = recentLimit(ctx, tx, bucket, key, limit, window, now)
		return err
	})
	return wait, err
}

// Undo: see driver.Limits.
func (l limits) Undo(ctx context.Context, bucket, key string, at time.Time) error {
	_, err := l.pool.Exec(ctx, `DELETE FROM limit_events WHERE ctid = (SELECT ctid FROM limit_events
		WHERE bucket = $1 AND key = $2 AND at = $3 LIMIT 1)`, bucket, key, at)
	return err
}

// Reset: see driver.Limits.
func (l limits) Reset(ctx context.Context, bucket, key string) error {
	_, err := l.pool.Exec(ctx, `DELETE FROM limit_events WHERE bucket = $1 AND key = $2`, bucket, key)
	return err
}
