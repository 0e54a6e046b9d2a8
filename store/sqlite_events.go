package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// recordEvent on SQLite: the triggers have moved catalogue.version already, so the event
// takes it at once. Every pruneEvery-th version also prunes the events beyond EventsKept.
func (e *sqliteEngine) recordEvent(ctx context.Context, tx *sql.Tx, itemID int64, kind string, userID int64) error {
	res, err := tx.ExecContext(ctx,
		`INSERT INTO market_events (version, item_id, kind, user_id) SELECT version, ?, ?, ? FROM catalogue`,
		itemID, kind, userID)
	if err != nil {
		return err
	}
	// Prune when this event's version crosses a multiple of pruneEvery.
	v, _ := res.LastInsertId()
	var prev sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT max(version) FROM market_events WHERE version < ?`, v).Scan(&prev); err != nil {
		return err
	}
	if prev.Int64/pruneEvery == v/pruneEvery {
		return nil
	}
	var cutoff sql.NullInt64 // the oldest version kept
	if err := tx.QueryRowContext(ctx,
		`SELECT version FROM market_events ORDER BY version DESC LIMIT 1 OFFSET ?`, EventsKept-1).Scan(&cutoff); err != nil {
		if err == sql.ErrNoRows {
			return nil
		}
		return fmt.Errorf("prune events: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE market_events_horizon SET pruned_through =
		max(pruned_through, coalesce((SELECT max(version) FROM market_events WHERE version < ?), 0))`, cutoff.Int64); err != nil {
		return fmt.Errorf("prune events: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM market_events WHERE version < ?`, cutoff.Int64); err != nil {
		return fmt.Errorf("prune events: %w", err)
	}
	return nil
}

// changed: this process's trades ring the doorbell as they commit (committed), and a poll of
// the version hears the other processes (admin commands).
func (e *sqliteEngine) changed() <-chan struct{} { return e.changes.channel(e.read) }

func (e *sqliteEngine) committed() { e.changes.signal() }

// listening: the poll watches the file itself, so every change is heard.
func (e *sqliteEngine) listening() bool { return true }

// changes is the doorbell behind Changed: a channel closed and replaced on each change.
type changes struct {
	mu      sync.Mutex
	ch      chan struct{}
	polling bool
	closed  bool // after Close: no poll starts again
	quit    chan struct{}
	done    chan struct{}
}

func (c *changes) channel(read querier) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	if !c.polling && !c.closed {
		c.polling = true
		c.quit, c.done = make(chan struct{}), make(chan struct{})
		go c.poll(read, c.quit, c.done)
	}
	return c.ch
}

func (c *changes) signal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch != nil {
		close(c.ch)
		c.ch = nil // the next Changed makes a new one
	}
}

// poll reads the version every ChangePoll and rings when it moved.
func (c *changes) poll(read querier, quit, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(ChangePoll)
	defer t.Stop()
	last, _ := readVersion(context.Background(), read)
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), ChangePoll)
		v, err := readVersion(ctx, read)
		cancel()
		if err == nil && v != last {
			last = v
			c.signal()
		}
	}
}

// stop ends the poll, if it runs; Close calls it.
func (c *changes) stop() {
	c.mu.Lock()
	quit, done := c.quit, c.done
	c.quit = nil
	c.polling = false
	c.closed = true
	c.mu.Unlock()
	if quit != nil {
		close(quit)
		<-done
	}
}
