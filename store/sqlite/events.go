package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"market/store/driver"
)

// pruneEvery is how often (in versions) the old events are pruned.
const pruneEvery = 500

// RecordEvent writes the event: the triggers have moved catalogue.version already, so it takes it at
// once. Every pruneEvery-th version also prunes the events beyond driver.EventsKept.
func (e *Engine) RecordEvent(ctx context.Context, tx *sql.Tx, itemID int64, kind string, userID int64) error {
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
	return prune(ctx, tx, driver.EventsKept)
}

// prune deletes the events beyond the newest keep, in the writer's transaction.
func prune(ctx context.Context, tx execQuerier, keep int) error {
	var cutoff sql.NullInt64 // the oldest version kept
	err := tx.QueryRowContext(ctx,
		`SELECT version FROM market_events ORDER BY version DESC LIMIT 1 OFFSET ?`, max(keep-1, 0)).Scan(&cutoff)
	switch {
	case err == sql.ErrNoRows:
		return nil
	case err != nil:
		return fmt.Errorf("prune events: %w", err)
	}
	if keep == 0 {
		cutoff.Int64++ // none kept: the newest goes too
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

// execQuerier is a transaction: what pruning needs.
type execQuerier interface {
	driver.Querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Prune runs in a write of its own; trades prune as they go (RecordEvent).
func (e *Engine) Prune(ctx context.Context, keep int) error {
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := prune(ctx, tx, keep); err != nil {
		return err
	}
	return tx.Commit()
}

// LookAgain does nothing: every SQLite version is exact.
func (e *Engine) LookAgain() {}

// Exact is true: every SQLite version names one state of the market.
func (e *Engine) Exact(int64) bool { return true }

// Moved is true for another version: every version is a position of its own.
func (e *Engine) Moved(version, since int64) bool { return version != since }

// Position is the catalogue row's version, which triggers move in every change's transaction.
// SQLite has one writer, so every version q sees is exact.
func (e *Engine) Position(ctx context.Context, q driver.Querier) (int64, bool, error) {
	v, err := readVersion(ctx, q)
	return v, err == nil, err
}

// VersionedUser reads the version and the user in one statement. A parameter is joined from a
// row of its own, as in sqliteSessionUser: in a join's ON it made SQLite compile the statement
// again at every run (12 µs, not 4).
func (e *Engine) VersionedUser(ctx context.Context, q driver.Querier, id int64) (int64, driver.User, error) {
	var (
		v int64
		u driver.NullUser
	)
	err := q.QueryRowContext(ctx, `SELECT c.version, u.id, u.username, u.email, u.budget, u.role, u.session_gen,
		u.email_confirmed FROM (SELECT ? AS id) p CROSS JOIN catalogue c LEFT JOIN users u ON u.id = p.id`, id).Scan(append([]any{&v}, u.Dest()...)...)
	if err != nil {
		return 0, driver.User{}, fmt.Errorf("market version: %w", err)
	}
	user, err := u.User(id)
	return v, user, err
}

// sqliteSessionUser reads a session, the user its row names and the version: a request's first
// read, one statement (no row: no such session, or it expired). The token comes from a row of
// its own: compared in the WHERE of a join, it made SQLite compile the statement again at every
// run, which cost more than a second statement.
const sqliteSessionUser = `SELECT c.version, s.data, coalesce(s.user_id, 0), u.id, u.username, u.email, u.budget, u.role,
	u.session_gen, u.email_confirmed
	FROM (SELECT ? AS token) p JOIN sessions s ON s.token = p.token CROSS JOIN catalogue c LEFT JOIN users u ON u.id = s.user_id
	WHERE julianday('now') < s.expiry`

// sessionUser is the sessions' driver.UserRead.
func (e *Engine) sessionUser(ctx context.Context, q driver.SessionDB, token string, su *driver.SessionUser) ([]byte, error) {
	var (
		v, userID int64
		data      []byte
		u         driver.NullUser
	)
	err := q.QueryRowContext(ctx, sqliteSessionUser, token).Scan(append([]any{&v, &data, &userID}, u.Dest()...)...)
	if err != nil {
		return nil, err
	}
	su.UserID = userID
	if userID != 0 {
		su.Read, su.Version = true, v
		su.User, su.Err = u.User(userID)
	}
	return data, nil
}

func readVersion(ctx context.Context, q driver.Querier) (int64, error) {
	var v int64
	if err := q.QueryRowContext(ctx, `SELECT version FROM catalogue`).Scan(&v); err != nil {
		return 0, fmt.Errorf("market version: %w", err)
	}
	return v, nil
}

// EventsSince reads the events after since up to until, unless since is before the horizon of
// the pruned.
func (e *Engine) EventsSince(ctx context.Context, q driver.Querier, since, until int64, limit int) (events []driver.MarketEvent, complete bool, err error) {
	var horizon int64
	if err := q.QueryRowContext(ctx, `SELECT pruned_through FROM market_events_horizon`).Scan(&horizon); err != nil {
		return nil, false, fmt.Errorf("events horizon: %w", err)
	}
	if since < horizon {
		return nil, false, nil
	}
	return driver.ScanEvents(q.QueryContext(ctx,
		`SELECT e.version, e.item_id, coalesce(i.name, ''), e.kind, e.user_id
		 FROM market_events e LEFT JOIN items i ON i.id = e.item_id
		 WHERE e.version > ? AND e.version <= ? ORDER BY e.version LIMIT ?`, since, until, limit))
}

// Reset moves the version on from past old, and the events before are gone.
func (e *Engine) Reset(ctx context.Context, old int64) error {
	if _, err := e.db.ExecContext(ctx,
		`UPDATE catalogue SET version = CASE WHEN version > ? THEN version ELSE ? END + 1`, old, old); err != nil {
		return fmt.Errorf("reset: market version: %w", err)
	}
	if _, err := e.db.ExecContext(ctx, `UPDATE market_events_horizon SET pruned_through = (SELECT version FROM catalogue)`); err != nil {
		return fmt.Errorf("reset: events horizon: %w", err)
	}
	return nil
}

// Start does nothing: nothing runs in the background before the first Changed.
func (e *Engine) Start(context.Context) error { return nil }

// Changed is the doorbell: this process's trades ring it as they commit (Committed), and a poll of
// the version hears the other processes (admin commands).
func (e *Engine) Changed() <-chan struct{} { return e.changes.channel(e.read) }

// Committed rings Changed.
func (e *Engine) Committed() { e.changes.signal() }

// Listening is true: the poll watches the file itself, so every change is heard.
func (e *Engine) Listening() bool { return true }

// changes is the doorbell behind Changed: a channel closed and replaced on each change.
type changes struct {
	mu      sync.Mutex
	ch      chan struct{}
	polling bool
	closed  bool // after Close: no poll starts again
	quit    chan struct{}
	done    chan struct{}
}

func (c *changes) channel(read driver.Querier) <-chan struct{} {
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

// poll reads the version every driver.ChangePoll and rings when it moved.
func (c *changes) poll(read driver.Querier, quit, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(driver.ChangePoll)
	defer t.Stop()
	last, _ := readVersion(context.Background(), read)
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), driver.ChangePoll)
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
