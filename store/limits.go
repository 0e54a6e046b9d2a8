package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Shared limits: on PostgreSQL the counts that protect users (failed logins, sign-ups) are kept
// in the database, so that N instances do not allow N times the guesses. On SQLite there is
// one process, and the handlers count in memory.

// limiter keeps the limit counts for every instance (pgLimits), or refuses to (localLimits).
type limiter interface {
	shared() bool
	take(ctx context.Context, bucket, key string, limit int, window time.Duration, now time.Time) (time.Duration, error)
	retryAfter(ctx context.Context, bucket, key string, limit int, window time.Duration, now time.Time) (time.Duration, error)
	undo(ctx context.Context, bucket, key string, at time.Time) error
	reset(ctx context.Context, bucket, key string) error
}

// SharedLimits reports whether the store keeps limit counts for every instance (PostgreSQL).
func (s *Store) SharedLimits() bool { return s.eng.limits().shared() }

// LimitTake records an event for key in bucket and returns 0 when fewer than limit are in the
// window; at the limit it records nothing and returns how long key must wait.
func (s *Store) LimitTake(ctx context.Context, bucket, key string, limit int, window time.Duration, now time.Time) (time.Duration, error) {
	return s.eng.limits().take(ctx, bucket, limitKey(key), limit, window, now.Truncate(time.Microsecond))
}

// LimitRetryAfter is how long key must wait before its next event is allowed; 0 means now.
func (s *Store) LimitRetryAfter(ctx context.Context, bucket, key string, limit int, window time.Duration, now time.Time) (time.Duration, error) {
	return s.eng.limits().retryAfter(ctx, bucket, limitKey(key), limit, window, now.Truncate(time.Microsecond))
}

// LimitUndo forgets one event recorded for key at the given time: the attempt did not count.
func (s *Store) LimitUndo(ctx context.Context, bucket, key string, at time.Time) error {
	return s.eng.limits().undo(ctx, bucket, limitKey(key), at.Truncate(time.Microsecond))
}

// LimitReset forgets key's events.
func (s *Store) LimitReset(ctx context.Context, bucket, key string) error {
	return s.eng.limits().reset(ctx, bucket, limitKey(key))
}

// limitKey is how a key is stored: any bytes a client sent (NUL, invalid UTF-8, a megabyte)
// become a short text PostgreSQL takes.
func limitKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// errLocalLimits: on SQLite the handlers count in memory.
var errLocalLimits = errors.New("store: shared limits need PostgreSQL")

// localLimits is SQLite's: one process, nothing shared.
type localLimits struct{}

func (localLimits) shared() bool { return false }
func (localLimits) take(context.Context, string, string, int, time.Duration, time.Time) (time.Duration, error) {
	return 0, errLocalLimits
}
func (localLimits) retryAfter(context.Context, string, string, int, time.Duration, time.Time) (time.Duration, error) {
	return 0, errLocalLimits
}
func (localLimits) undo(context.Context, string, string, time.Time) error { return errLocalLimits }
func (localLimits) reset(context.Context, string, string) error           { return errLocalLimits }

// pgLimits keeps the counts in limit_events, for every instance. Keys come hashed (limitKey)
// and times truncated to what timestamptz keeps.
type pgLimits struct{ pool *pgxpool.Pool }

func (pgLimits) shared() bool { return true }

// tx runs fn holding a transaction-scoped advisory lock on (bucket, key): checking and
// recording under one lock is what makes a limit hold across instances.
func (l pgLimits) tx(ctx context.Context, bucket, key string, fn func(tx pgx.Tx) error) error {
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

func (l pgLimits) take(ctx context.Context, bucket, key string, limit int, window time.Duration, now time.Time) (time.Duration, error) {
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

func (l pgLimits) retryAfter(ctx context.Context, bucket, key string, limit int, window time.Duration, now time.Time) (time.Duration, error) {
	var wait time.Duration
	err := l.tx(ctx, bucket, key, func(tx pgx.Tx) error {
		var err error
		wait, err = recentLimit(ctx, tx, bucket, key, limit, window, now)
		return err
	})
	return wait, err
}

func (l pgLimits) undo(ctx context.Context, bucket, key string, at time.Time) error {
	_, err := l.pool.Exec(ctx, `DELETE FROM limit_events WHERE ctid = (SELECT ctid FROM limit_events
		WHERE bucket = $1 AND key = $2 AND at = $3 LIMIT 1)`, bucket, key, at)
	return err
}

func (l pgLimits) reset(ctx context.Context, bucket, key string) error {
	_, err := l.pool.Exec(ctx, `DELETE FROM limit_events WHERE bucket = $1 AND key = $2`, bucket, key)
	return err
}
