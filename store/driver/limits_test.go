package driver_test

import (
	"context"
	"testing"
	"time"

	"market/store/driver"
)

// Counts in memory: at most limit per window, an undone event does not count, and a sweep
// forgets what is older than every window but keeps what still counts.
func TestMemoryLimits(t *testing.T) {
	ctx := context.Background()
	var m driver.MemoryLimits
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		if wait, err := m.Take(ctx, "login", "k", 3, time.Minute, now.Add(time.Duration(i)*time.Second)); err != nil || wait != 0 {
			t.Fatalf("event %d: wait %v %v, want none", i, wait, err)
		}
	}
	if wait, _ := m.Take(ctx, "login", "k", 3, time.Minute, now.Add(3*time.Second)); wait != 57*time.Second {
		t.Errorf("the 4th event: wait %v, want 57s (the first leaves the window)", wait)
	}
	if wait, _ := m.Take(ctx, "signup", "k", 3, time.Minute, now); wait != 0 {
		t.Errorf("another bucket: wait %v, want none", wait)
	}
	m.Undo(ctx, "login", "k", now.Add(2*time.Second))
	if wait, _ := m.RetryAfter(ctx, "login", "k", 3, time.Minute, now.Add(3*time.Second)); wait != 0 {
		t.Errorf("after an undo: wait %v, want none", wait)
	}
	m.Forget(now.Add(time.Second / 2)) // the first event is older than every window
	if wait, _ := m.RetryAfter(ctx, "login", "k", 1, time.Minute, now.Add(3*time.Second)); wait != 58*time.Second {
		t.Errorf("after a sweep: wait %v, want 58s (the second event still counts)", wait)
	}
	m.Reset(ctx, "login", "k")
	if wait, _ := m.RetryAfter(ctx, "login", "k", 1, time.Minute, now.Add(3*time.Second)); wait != 0 {
		t.Errorf("after a reset: wait %v, want none", wait)
	}
}
