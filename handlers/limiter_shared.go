package handlers

import (
	"context"
	"log/slog"
	"time"

	"market/store"
)

// sharedLimits counts a limiter's events in the database (PostgreSQL), so that every instance
// of the app sees the same counts. When the database cannot answer, the limiter counts in memory
// meanwhile: a limit per instance is still a limit.
type sharedLimits struct {
	store  *store.Store
	bucket string
	logger *slog.Logger
}

// share makes l count in st for every instance, under bucket.
func (l *limiter) share(st *store.Store, bucket string, logger *slog.Logger) {
	l.shared = &sharedLimits{store: st, bucket: bucket, logger: logger}
}

func (sl *sharedLimits) ok(err error) bool {
	if err != nil {
		sl.logger.Error("shared limit", "bucket", sl.bucket, "err", err)
		return false
	}
	return true
}

func (sl *sharedLimits) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}
