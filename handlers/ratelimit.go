package handlers

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"market/store"
)

// rateLimit is one limit on what a client may do: at most limit events per key in a sliding
// window. A key is whatever a limit is per: an address block (addrBlock), or a username and an
// address block. The store keeps the counts (for every instance, when several share the
// database); when it cannot answer, the counts are kept in memory meanwhile: a limit per
// instance is still a limit.
type rateLimit struct {
	store     *store.Store
	bucket    string
	limit     int
	window    time.Duration
	logger    *slog.Logger
	meanwhile store.MemoryLimits // the counts while the store cannot answer
}

func newRateLimit(st *store.Store, bucket string, limit int, window time.Duration, logger *slog.Logger) *rateLimit {
	return &rateLimit{store: st, bucket: bucket, limit: limit, window: window, logger: logger}
}

// retryAfter is how long key must wait before its next event is allowed; 0 means now.
func (l *rateLimit) retryAfter(ctx context.Context, key string, now time.Time) time.Duration {
	ctx, cancel := limitContext(ctx)
	defer cancel()
	wait, err := l.store.LimitRetryAfter(ctx, l.bucket, key, l.limit, l.window, now)
	if l.failed(err) {
		wait, _ = l.meanwhile.RetryAfter(ctx, l.bucket, key, l.limit, l.window, now)
	}
	return wait
}

// take records an event for key and returns 0 when fewer than limit are in the window; at the
// limit it records nothing and returns how long key must wait.
func (l *rateLimit) take(ctx context.Context, key string, now time.Time) time.Duration {
	ctx, cancel := limitContext(ctx)
	defer cancel()
	wait, err := l.store.LimitTake(ctx, l.bucket, key, l.limit, l.window, now)
	if l.failed(err) {
		wait, _ = l.meanwhile.Take(ctx, l.bucket, key, l.limit, l.window, now)
	}
	return wait
}

// undo forgets one event take recorded for key at the given time: the attempt did not count.
func (l *rateLimit) undo(ctx context.Context, key string, at time.Time) {
	ctx, cancel := limitContext(ctx)
	defer cancel()
	l.failed(l.store.LimitUndo(ctx, l.bucket, key, at))
	l.meanwhile.Undo(ctx, l.bucket, key, at)
}

// reset forgets key's events.
func (l *rateLimit) reset(ctx context.Context, key string) {
	ctx, cancel := limitContext(ctx)
	defer cancel()
	l.failed(l.store.LimitReset(ctx, l.bucket, key))
	l.meanwhile.Reset(ctx, l.bucket, key)
}

// failed logs err, if any, and says whether there was one: a request that left, or a database
// too slow for the count's second, is no error of ours.
func (l *rateLimit) failed(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.Canceled):
		l.logger.Info("rate limit: request cancelled", "bucket", l.bucket)
	case errors.Is(err, context.DeadlineExceeded):
		l.logger.Warn("rate limit: counted in memory", "bucket", l.bucket, "err", err)
	default:
		l.logger.Error("rate limit", "bucket", l.bucket, "err", err)
	}
	return true
}

// limitContext bounds one call of the store's limits: a second at most, within the request's
// own budget; past it the count is kept in memory meanwhile.
func limitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, time.Second)
}

// Sweep runs until ctx ends, every period: the store deletes expired sessions and limit counts
// older than every window, then old link tokens and sent mails (one instance at a time), and
// the counts kept meanwhile in memory forget their idle keys. Requests then never pay for the
// cleanup, and the tables stay bounded.
func (h *Handler) Sweep(ctx context.Context, period time.Duration) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		h.SweepOnce(ctx)
	}
}

// SweepOnce is one turn of Sweep.
func (h *Handler) SweepOnce(ctx context.Context) {
	now := h.cfg.Now()
	oldest := now.Add(-max(h.cfg.LoginWindow, time.Hour)) // the longest window: sign-ups'
	for _, l := range []*rateLimit{h.loginByUser, h.loginByAddr, h.signups, h.mailMinute, h.mailHour, h.resets} {
		l.meanwhile.Forget(oldest)
	}
	sw, err := h.store.Sweep(ctx, oldest)
	if err != nil && ctx.Err() == nil {
		h.logger.Warn("sweep", "err", err)
		return
	}
	if sw.Sessions+sw.LimitEvents > 0 {
		h.logger.Info("swept", "sessions", sw.Sessions, "limit_events", sw.LimitEvents)
	}
	if sw.Skipped { // another instance sweeps
		return
	}
	if n, err := h.store.SweepMail(ctx, now); err != nil && ctx.Err() == nil {
		h.logger.Warn("sweep mail", "err", err)
	} else if n > 0 {
		h.logger.Info("swept", "mail_rows", n)
	}
}
