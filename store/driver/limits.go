package driver

import (
	"context"
	"sync"
	"time"
)

// Limits keeps the counts of the rate limits: at most limit events per key of a bucket in a
// sliding window. Keys come hashed and times truncated to microseconds (see store.LimitTake).
type Limits interface {
	// Take records an event for key and returns 0 when fewer than limit are in the window; at
	// the limit it records nothing and returns how long key must wait. Checking and recording
	// are one step: parallel requests cannot all pass the check before any counts.
	Take(ctx context.Context, bucket, key string, limit int, window time.Duration, now time.Time) (time.Duration, error)
	// RetryAfter is how long key must wait before its next event is allowed; 0 means now.
	RetryAfter(ctx context.Context, bucket, key string, limit int, window time.Duration, now time.Time) (time.Duration, error)
	// Undo forgets one event recorded for key at the given time: the attempt did not count.
	Undo(ctx context.Context, bucket, key string, at time.Time) error
	// Reset forgets key's events.
	Reset(ctx context.Context, bucket, key string) error
}

// MemoryLimits counts in this process's memory: SQLite's limits (one process), and what counts
// meanwhile when the database that keeps them cannot answer. The zero value is ready.
type MemoryLimits struct {
	mu      sync.Mutex
	buckets map[string]*window
}

type window struct {
	length time.Duration
	events map[string][]time.Time
	swept  time.Time // when idle keys were last forgotten
}

// bucket is the window of bucket; m.mu is held.
func (m *MemoryLimits) bucket(name string, length time.Duration) *window {
	if m.buckets == nil {
		m.buckets = make(map[string]*window)
	}
	w := m.buckets[name]
	if w == nil {
		w = &window{events: make(map[string][]time.Time)}
		m.buckets[name] = w
	}
	if length > 0 {
		w.length = length
	}
	return w
}

// Take records an event, as Limits.Take says.
func (m *MemoryLimits) Take(_ context.Context, bucket, key string, limit int, length time.Duration, now time.Time) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.bucket(bucket, length)
	ev := w.recent(key, now)
	if len(ev) >= limit {
		return ev[len(ev)-limit].Add(w.length).Sub(now), nil
	}
	w.events[key] = append(ev, now)
	// Forget idle keys, so that memory stays bounded; at most once a minute, so that a flood of
	// distinct keys does not make every request walk them all.
	if len(w.events) > 10_000 && now.Sub(w.swept) > time.Minute {
		w.forgetIdle(now)
	}
	return 0, nil
}

// RetryAfter is the wait, as Limits.RetryAfter says.
func (m *MemoryLimits) RetryAfter(_ context.Context, bucket, key string, limit int, length time.Duration, now time.Time) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.bucket(bucket, length)
	ev := w.recent(key, now)
	if len(ev) < limit {
		return 0, nil
	}
	return ev[len(ev)-limit].Add(w.length).Sub(now), nil
}

// Undo forgets one event, as Limits.Undo says.
func (m *MemoryLimits) Undo(_ context.Context, bucket, key string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.bucket(bucket, 0)
	ev := w.events[key]
	for i := len(ev) - 1; i >= 0; i-- {
		if ev[i].Equal(at) {
			ev = append(ev[:i], ev[i+1:]...)
			break
		}
	}
	if len(ev) == 0 {
		delete(w.events, key)
	} else {
		w.events[key] = ev
	}
	return nil
}

// Reset forgets key's events, as Limits.Reset says.
func (m *MemoryLimits) Reset(_ context.Context, bucket, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.bucket(bucket, 0).events, key)
	return nil
}

// Forget drops the events before before, outside every window (a sweep's turn), and the keys
// left with none.
func (m *MemoryLimits) Forget(before time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range m.buckets {
		w.swept = before
		for k, ev := range w.events {
			i := 0
			for i < len(ev) && ev[i].Before(before) {
				i++
			}
			if i == len(ev) {
				delete(w.events, k)
			} else if i > 0 {
				w.events[k] = ev[i:]
			}
		}
	}
}

func (w *window) forgetIdle(now time.Time) {
	w.swept = now
	for k := range w.events {
		w.recent(k, now)
	}
}

// recent drops key's events older than the window and returns the rest.
func (w *window) recent(key string, now time.Time) []time.Time {
	ev := w.events[key]
	i := 0
	for i < len(ev) && now.Sub(ev[i]) >= w.length {
		i++
	}
	if i > 0 {
		ev = ev[i:]
		if len(ev) == 0 {
			delete(w.events, key)
		} else {
			w.events[key] = ev
		}
	}
	return ev
}
