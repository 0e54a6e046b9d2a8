package store

import (
	"context"
	"fmt"
	"testing"

	"market/store/driver"
)

// Readiness follows the writes: a failure to write sets it, a write that worked (a refusal
// too) clears it, and a write given up by its caller says nothing either way.
func TestHealthFollowsWrites(t *testing.T) {
	h := &health{}
	down := fmt.Errorf("trade: %w", driver.ErrClosed)
	h.note(down)
	if h.failed == nil {
		t.Fatal("a write the database could not take left readiness clear")
	}
	h.note(fmt.Errorf("trade: %w", context.Canceled))
	if h.failed == nil {
		t.Error("a write given up by its caller cleared a failure to write")
	}
	h.note(fmt.Errorf("trade: %w", ErrInsufficientFunds))
	if h.failed != nil {
		t.Errorf("a refused trade (a write that worked) left readiness failed: %v", h.failed)
	}
	h.note(down)
	h.note(nil)
	if h.failed != nil {
		t.Errorf("a write that worked left readiness failed: %v", h.failed)
	}
}
