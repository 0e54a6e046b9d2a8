package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"market/store/driver"
)

// Limits: the counts that protect users (failed logins, sign-ups), kept by the engine: on
// PostgreSQL in the database, so that N instances do not allow N times the guesses; on SQLite,
// one process, in its memory.

// MemoryLimits counts in this process's memory (see driver.MemoryLimits): what a caller may
// count meanwhile when the store cannot answer.
type MemoryLimits = driver.MemoryLimits

// LimitTake records an event for key in bucket and returns 0 when fewer than limit are in the
// window; at the limit it records nothing and returns how long key must wait.
func (s *Store) LimitTake(ctx context.Context, bucket, key string, limit int, window time.Duration, now time.Time) (time.Duration, error) {
	return s.d.Limits().Take(ctx, bucket, limitKey(key), limit, window, now.Truncate(time.Microsecond))
}

// LimitRetryAfter is how long key must wait before its next event is allowed; 0 means now.
func (s *Store) LimitRetryAfter(ctx context.Context, bucket, key string, limit int, window time.Duration, now time.Time) (time.Duration, error) {
	return s.d.Limits().RetryAfter(ctx, bucket, limitKey(key), limit, window, now.Truncate(time.Microsecond))
}

// LimitUndo forgets one event recorded for key at the given time: the attempt did not count.
func (s *Store) LimitUndo(ctx context.Context, bucket, key string, at time.Time) error {
	return s.d.Limits().Undo(ctx, bucket, limitKey(key), at.Truncate(time.Microsecond))
}

// LimitReset forgets key's events.
func (s *Store) LimitReset(ctx context.Context, bucket, key string) error {
	return s.d.Limits().Reset(ctx, bucket, limitKey(key))
}

// limitKey is how a key is stored: any bytes a client sent (NUL, invalid UTF-8, a megabyte)
// become a short text PostgreSQL takes.
func limitKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}
