package store

import (
	"context"
	"database/sql"
	"fmt"
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

// recordEvent writes the event of a trade in the trade's transaction, after its changes: the
// engine stamps it with the market version after the trade (at once on SQLite; at commit on
// PostgreSQL, whose version moves only then), and prunes the events beyond EventsKept every
// pruneEvery versions.
func (s *Store) recordEvent(ctx context.Context, tx *sql.Tx, itemID int64, kind string, userID int64) error {
	if err := s.eng.recordEvent(ctx, tx, itemID, kind, userID); err != nil {
		return fmt.Errorf("record event: %w", err)
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
	// Untouched are the queries asked whose page was not read, since the events cannot have
	// changed it (TouchedPages).
	Untouched []MarketQuery
}

// ChangesSince reads, in one snapshot, the market version, up to limit events after version
// since (none when limit is 0) and the page of each query (with TouchedPages, of each query
// the events may have changed: see touched.go): the pages are exactly as of the version, and
// the events end at it.
func (s *Store) ChangesSince(ctx context.Context, since int64, limit int, queries []MarketQuery, pages Pages) (Changes, error) {
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
	if pages == TouchedPages {
		if queries, c.Untouched, err = s.touched(ctx, tx, c, since, limit, queries); err != nil {
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

// Changed returns a channel that is closed when the market version may have moved. Fetch it
// again after each wake-up. On SQLite it closes after a trade of this process commits, or when
// a slow poll (every ChangePoll) sees the version moved by another process (an admin command).
// On PostgreSQL the LISTEN/NOTIFY listener closes it, so a change made by any instance wakes
// every instance; a wake-up may also mean that changes may have been missed (the listener
// reconnected), never that nothing changed when something did.
func (s *Store) Changed() <-chan struct{} { return s.eng.changed() }

// Listening reports whether changes made by other instances are heard as they commit (always
// on SQLite, whose Changed watches the file itself).
func (s *Store) Listening() bool { return s.eng.listening() }

// ChangePoll is how often the version is read to see changes made by other processes.
const ChangePoll = 500 * time.Millisecond
