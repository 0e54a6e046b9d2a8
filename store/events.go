package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// MarketEvent is one trade as the live streams tell it: the market version right after it,
// the item, what happened to it and who did it.
type MarketEvent struct {
	Version  int64
	ItemID   int64
	ItemName string // "" if the item has since been deleted
	Kind     string // "buy" or "sell"
	UserID   int64
}

// EventsKept is how many market events are kept; older ones are pruned as new ones come.
const EventsKept = 10000

// pruneEvery is how often (in versions) the old events are pruned.
const pruneEvery = 500

// recordEvent writes the event of a trade in the trade's transaction, after its changes (so
// that catalogue.version, moved by the triggers, is the version after the trade). Every
// pruneEvery-th event also prunes the events beyond EventsKept.
//
// On PostgreSQL the version moves only at commit (a deferred trigger), so the event is written
// without one; the same commit trigger stamps it with the new version and prunes (see
// migrations/postgres/0002_events.sql). The version row's lock serializes those commits.
func (s *Store) recordEvent(ctx context.Context, tx *sql.Tx, itemID int64, kind string, userID int64) error {
	if s.pg != nil {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO market_events (version, item_id, kind, user_id) VALUES (NULL, ?, ?, ?)`,
			itemID, kind, userID); err != nil {
			return fmt.Errorf("record event: %w", err)
		}
		return nil
	}
	res, err := tx.ExecContext(ctx,
		`INSERT INTO market_events (version, item_id, kind, user_id) SELECT version, ?, ?, ? FROM catalogue`,
		itemID, kind, userID)
	if err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	// Prune when this event's version crosses a multiple of pruneEvery.
	v, _ := res.LastInsertId()
	var prev sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT max(version) FROM market_events WHERE version < ?`, v).Scan(&prev); err != nil {
		return fmt.Errorf("record event: %w", err)
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

// EventsSince returns up to limit events after version since, oldest first. complete is false
// when events after since have been pruned: the caller cannot replay them and must refresh
// whatever it built from the market.
func (s *Store) EventsSince(ctx context.Context, since int64, limit int) (events []MarketEvent, complete bool, err error) {
	tx, err := s.snapshot(ctx)
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback()
	return eventsSince(ctx, tx, since, limit)
}

// eventsSince is EventsSince inside tx.
func eventsSince(ctx context.Context, tx *sql.Tx, since int64, limit int) (events []MarketEvent, complete bool, err error) {
	var horizon int64
	if err := tx.QueryRowContext(ctx, `SELECT pruned_through FROM market_events_horizon`).Scan(&horizon); err != nil {
		return nil, false, fmt.Errorf("events horizon: %w", err)
	}
	if since < horizon {
		return nil, false, nil
	}
	rows, err := tx.QueryContext(ctx,
		`SELECT e.version, e.item_id, coalesce(i.name, ''), e.kind, e.user_id
		 FROM market_events e LEFT JOIN items i ON i.id = e.item_id
		 WHERE e.version > ? ORDER BY e.version LIMIT ?`, since, limit)
	if err != nil {
		return nil, false, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e MarketEvent
		if err := rows.Scan(&e.Version, &e.ItemID, &e.ItemName, &e.Kind, &e.UserID); err != nil {
			return nil, false, err
		}
		events = append(events, e)
	}
	return events, true, rows.Err()
}

// Changes is what a live stream needs to follow the market, as of one version: the version,
// the events after a version (Complete is false when some were pruned), and a page of the
// market for each query asked.
type Changes struct {
	Version  int64
	Events   []MarketEvent
	Complete bool
	Pages    map[MarketQuery]MarketPage // by normalized query
}

// ChangesSince reads, in one snapshot, the market version, up to limit events after version
// since (none when limit is 0) and the page of each query: the pages are exactly as of the
// version, and the events end at it.
func (s *Store) ChangesSince(ctx context.Context, since int64, limit int, queries []MarketQuery) (Changes, error) {
	tx, err := s.snapshot(ctx)
	if err != nil {
		return Changes{}, err
	}
	defer tx.Rollback()
	c := Changes{Complete: true, Pages: make(map[MarketQuery]MarketPage, len(queries))}
	if c.Version, err = readVersion(ctx, tx); err != nil {
		return Changes{}, err
	}
	if limit > 0 {
		if c.Events, c.Complete, err = eventsSince(ctx, tx, since, limit); err != nil {
			return Changes{}, err
		}
	}
	for _, q := range queries {
		q = q.Normalize()
		if _, ok := c.Pages[q]; ok {
			continue
		}
		if c.Pages[q], err = s.market(ctx, tx, q); err != nil {
			return Changes{}, err
		}
	}
	return c, nil
}

// Changed returns a channel that is closed when the market version may have moved: after a
// trade of this process commits, or when a slow poll (every ChangePoll) sees the version moved
// by another process (an admin command). Fetch it again after each wake-up.
//
// On PostgreSQL the channel is closed by the LISTEN/NOTIFY listener (postgres.go), so a change
// made by any instance wakes every instance; a wake-up may also mean that changes may have been
// missed (the listener reconnected), never that nothing changed when something did.
func (s *Store) Changed() <-chan struct{} {
	if s.pg != nil {
		return s.pg.changedChan()
	}
	return s.changes.channel(s)
}

// ChangePoll is how often the version is read to see changes made by other processes.
const ChangePoll = 500 * time.Millisecond

// changes is the doorbell behind Changed: a channel closed and replaced on each change.
type changes struct {
	mu      sync.Mutex
	ch      chan struct{}
	polling bool
	closed  bool // after Close: no poll starts again
	quit    chan struct{}
	done    chan struct{}
}

func (c *changes) channel(s *Store) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	if !c.polling && !c.closed {
		c.polling = true
		c.quit, c.done = make(chan struct{}), make(chan struct{})
		go c.poll(s, c.quit, c.done)
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
func (c *changes) poll(s *Store, quit, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(ChangePoll)
	defer t.Stop()
	last, _ := s.Version(context.Background())
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), ChangePoll)
		v, err := s.Version(ctx)
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
