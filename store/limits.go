package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Shared limits: on PostgreSQL the counts that protect users (failed logins, sign-ups) are kept
// in the database, so that N instances do not allow N times the guesses. On SQLite there is
// one process, and the handlers count in memory.

// SharedLimits reports whether the store keeps limit counts for every instance (PostgreSQL).
func (s *Store) SharedLimits() bool { return s.pg != nil }

// limitTx runs fn holding a transaction-scoped advisory lock on (bucket, key): checking and
// recording under one lock is what makes a limit hold across instances.
func (s *Store) limitTx(ctx context.Context, bucket, key string, fn func(tx pgx.Tx) error) error {
	if s.pg == nil {
		return fmt.Errorf("shared limits need PostgreSQL")
	}
	return pgx.BeginFunc(ctx, s.pg.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))`, bucket, key); err != nil {
			return err
		}
		return fn(tx)
	})
}

// limitKey is how a key is stored: any bytes a client sent (NUL, invalid UTF-8, a megabyte)
// become a short text PostgreSQL takes.
func limitKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
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

// LimitTake records an event for key in bucket and returns 0 when fewer than limit are in the
// window; at the limit it records nothing and returns how long key must wait.
func (s *Store) LimitTake(ctx context.Context, bucket, key string, limit int, window time.Duration, now time.Time) (time.Duration, error) {
	key = limitKey(key)
	now = now.Truncate(time.Microsecond) // what timestamptz keeps
	var wait time.Duration
	err := s.limitTx(ctx, bucket, key, func(tx pgx.Tx) error {
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

// LimitRetryAfter is how long key must wait before its next event is allowed; 0 means now.
func (s *Store) LimitRetryAfter(ctx context.Context, bucket, key string, limit int, window time.Duration, now time.Time) (time.Duration, error) {
	key = limitKey(key)
	now = now.Truncate(time.Microsecond)
	var wait time.Duration
	err := s.limitTx(ctx, bucket, key, func(tx pgx.Tx) error {
		var err error
		wait, err = recentLimit(ctx, tx, bucket, key, limit, window, now)
		return err
	})
	return wait, err
}

// LimitUndo forgets one event recorded for key at the given time: the attempt did not count.
func (s *Store) LimitUndo(ctx context.Context, bucket, key string, at time.Time) error {
	key = limitKey(key)
	_, err := s.pg.pool.Exec(ctx, `DELETE FROM limit_events WHERE ctid = (SELECT ctid FROM limit_events
		WHERE bucket = $1 AND key = $2 AND at = $3 LIMIT 1)`, bucket, key, at.Truncate(time.Microsecond))
	return err
}

// LimitReset forgets key's events.
func (s *Store) LimitReset(ctx context.Context, bucket, key string) error {
	key = limitKey(key)
	_, err := s.pg.pool.Exec(ctx, `DELETE FROM limit_events WHERE bucket = $1 AND key = $2`, bucket, key)
	return err
}
