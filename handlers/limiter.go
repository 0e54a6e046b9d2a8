package handlers

import (
	"context"
	"sync"
	"time"
)

// limiter counts events per key in a sliding window: at most limit events in window. A key is
// whatever a limit is per: an address block (addrBlock), or a username and an address block.
type limiter struct {
	limit  int
	window time.Duration

	mu     sync.Mutex
	events map[string][]time.Time
	swept  time.Time // when idle keys were last forgotten

	shared *sharedLimits // counts kept in the database for every instance (limiter_shared.go)
}

func newLimiter(limit int, window time.Duration) *limiter {
	return &limiter{limit: limit, window: window, events: make(map[string][]time.Time)}
}

// retryAfter is how long key must wait before its next event is allowed; 0 means now.
func (l *limiter) retryAfter(key string, now time.Time) time.Duration {
	if sl := l.shared; sl != nil {
		ctx, cancel := sl.ctx()
		defer cancel()
		if wait, err := sl.store.LimitRetryAfter(ctx, sl.bucket, key, l.limit, l.window, now); sl.ok(err) {
			return wait
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := l.recent(key, now)
	if len(ev) < l.limit {
		return 0
	}
	return ev[len(ev)-l.limit].Add(l.window).Sub(now)
}

// take records an event for key and returns 0 when fewer than limit are in the window; at the
// limit it records nothing and returns how long key must wait. Checking and recording under one
// lock is what makes it a limit: parallel requests cannot all pass the check before any counts.
func (l *limiter) take(key string, now time.Time) time.Duration {
	if sl := l.shared; sl != nil {
		ctx, cancel := sl.ctx()
		defer cancel()
		if wait, err := sl.store.LimitTake(ctx, sl.bucket, key, l.limit, l.window, now); sl.ok(err) {
			return wait
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := l.recent(key, now)
	if len(ev) >= l.limit {
		return ev[len(ev)-l.limit].Add(l.window).Sub(now)
	}
	l.events[key] = append(ev, now)
	// Forget idle keys, so that memory stays bounded; at most once a minute, so that a flood of
	// distinct keys does not make every request walk them all.
	if len(l.events) > 10_000 && now.Sub(l.swept) > time.Minute {
		l.forgetIdle(now)
	}
	return 0
}

// forgetIdle drops the keys with no event in the window; l.mu is held.
func (l *limiter) forgetIdle(now time.Time) {
	l.swept = now
	for k := range l.events {
		l.recent(k, now)
	}
}

// sweep forgets idle keys (the timer's turn, see Handler.Sweep).
func (l *limiter) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgetIdle(now)
}

// undo forgets one event take recorded for key at the given time: the attempt did not count.
func (l *limiter) undo(key string, at time.Time) {
	if sl := l.shared; sl != nil {
		ctx, cancel := sl.ctx()
		defer cancel()
		sl.ok(sl.store.LimitUndo(ctx, sl.bucket, key, at))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := l.events[key]
	for i := len(ev) - 1; i >= 0; i-- {
		if ev[i].Equal(at) {
			ev = append(ev[:i], ev[i+1:]...)
			break
		}
	}
	if len(ev) == 0 {
		delete(l.events, key)
	} else {
		l.events[key] = ev
	}
}

// reset forgets key's events.
func (l *limiter) reset(key string) {
	if sl := l.shared; sl != nil {
		ctx, cancel := sl.ctx()
		defer cancel()
		sl.ok(sl.store.LimitReset(ctx, sl.bucket, key))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.events, key)
}

// recent drops key's events older than the window and returns the rest; l.mu is held.
func (l *limiter) recent(key string, now time.Time) []time.Time {
	ev := l.events[key]
	i := 0
	for i < len(ev) && now.Sub(ev[i]) >= l.window {
		i++
	}
	if i > 0 {
		ev = ev[i:]
		if len(ev) == 0 {
			delete(l.events, key)
		} else {
			l.events[key] = ev
		}
	}
	return ev
}

// Sweep runs until ctx ends, every period: the limiters forget idle keys, and the store deletes
// expired sessions and limit counts older than every window (on PostgreSQL one instance at a
// time). Requests then never pay for the cleanup, and the tables stay bounded.
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
	for _, l := range []*limiter{h.loginByUser, h.loginByAddr, h.signups, h.mailMinute, h.mailHour, h.resets} {
		l.sweep(now)
	}
	oldest := now.Add(-max(h.cfg.LoginWindow, time.Hour)) // the longest window: sign-ups'
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
