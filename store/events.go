package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"market/store/driver"
)

// MarketEvent is one change of the market as the live streams tell it (see driver.MarketEvent).
type MarketEvent = driver.MarketEvent

// EventsKept is how many market events are kept; older ones are pruned as new ones come.
const EventsKept = driver.EventsKept

// recordEvent writes the event of a trade in the trade's transaction, after its changes: the
// engine stamps it with the market version after the change (at once on SQLite; at commit on
// PostgreSQL, whose version moves only then), and prunes the events beyond EventsKept.
func (s *Store) recordEvent(ctx context.Context, tx *sql.Tx, itemID int64, kind string, userID int64) error {
	if err := s.d.RecordEvent(ctx, tx, itemID, kind, userID); err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	return nil
}

// EventsSince returns up to limit events after version since, oldest first. complete is false
// when events after since have been pruned, or since is from another history of the database
// (before a Reset, a copy or a restore): the caller cannot replay them and must refresh
// whatever it built from the market.
func (s *Store) EventsSince(ctx context.Context, since int64, limit int) (events []MarketEvent, complete bool, err error) {
	tx, err := s.snapshot(ctx)
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback()
	until, _, err := s.d.Position(ctx, tx)
	if err != nil {
		return nil, false, err
	}
	return s.d.EventsSince(ctx, tx, since, until, limit)
}

// PruneEvents deletes the events beyond the newest keep: a stream or page from before them
// gets a refresh. The store prunes by itself (EventsKept); tests and administrators may ask.
func (s *Store) PruneEvents(ctx context.Context, keep int) error {
	return s.d.Prune(ctx, keep)
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
// the events may have changed: see touched.go): the events end at the version, and the pages
// are as of the version. On PostgreSQL a snapshot taken while a transaction of the market's
// database older than the newest change still runs is not Exact: its pages could not be
// cached, nor handed to the live streams. So the version is read first, and while it moved
// but is not exact, read again in a new snapshot, at growing intervals (exactPause), for up to
// exactWait: on a busy machine a short transaction can be held off its core for tens of
// milliseconds. When none is exact by then (a long transaction), the last snapshot is read:
// its pages may hold changes after the version, which come with the next version's events.
func (s *Store) ChangesSince(ctx context.Context, since int64, limit int, queries []MarketQuery, pages Pages) (Changes, error) {
	deadline := time.Now().Add(exactWait)
	pause := exactPause
	for {
		c, done, err := s.changesSince(ctx, since, limit, queries, pages, !time.Now().Before(deadline))
		if err != nil || done {
			return c, err
		}
		wait := time.NewTimer(min(pause, time.Until(deadline)))
		select {
		case <-ctx.Done():
			wait.Stop()
			return Changes{}, ctx.Err()
		case <-wait.C:
		}
		pause = min(2*pause, exactMaxPause)
	}
}

// ChangesSince looks for an exact version for up to exactWait, first after exactPause, then
// after twice as long each time, up to exactMaxPause.
const (
	exactWait     = 300 * time.Millisecond
	exactPause    = 500 * time.Microsecond
	exactMaxPause = 25 * time.Millisecond
)

// changesSince is one try of ChangesSince: done is false when the version moved from since but
// is not exact, and it was not the last try (nothing is read then).
func (s *Store) changesSince(ctx context.Context, since int64, limit int, queries []MarketQuery, pages Pages, last bool) (c Changes, done bool, err error) {
	tx, err := s.snapshot(ctx)
	if err != nil {
		return Changes{}, true, err
	}
	defer tx.Rollback()
	c = Changes{Complete: true, Pages: make(map[MarketQuery]MarketPage, len(queries))}
	var exact bool
	if c.Version, exact, err = s.d.Position(ctx, tx); err != nil {
		return Changes{}, true, err
	}
	if !exact {
		if !last && s.d.Moved(c.Version, since) {
			return Changes{}, false, nil
		}
		// Not moved (a long transaction holds the horizon back: looking again now would find
		// the same), or the last try: the changes above the horizon are final in a moment.
		s.d.LookAgain()
	}
	if limit > 0 {
		if c.Events, c.Complete, err = s.d.EventsSince(ctx, tx, since, c.Version, limit); err != nil {
			return Changes{}, true, err
		}
	}
	if pages == TouchedPages {
		if queries, c.Untouched, err = s.touched(ctx, tx, c, since, limit, queries); err != nil {
			return Changes{}, true, err
		}
	}
	for _, q := range queries {
		q = q.Normalize()
		if _, ok := c.Pages[q]; ok {
			continue
		}
		if c.Pages[q], err = s.market(driver.TxBatch(ctx, tx, s.d.Position, false), q, false); err != nil {
			return Changes{}, true, err
		}
	}
	return c, true, nil
}

// Changed returns a channel that is closed when the market version may have moved. Fetch it
// again after each wake-up. On SQLite it closes after a trade of this process commits, or when
// a slow poll (every ChangePoll) sees the version moved by another process (an admin command).
// On PostgreSQL it also closes after this process's trades commit, and the listener closes it
// when another instance says it traded (one NOTIFY after its commits, sent out of them), or
// the poll when it sees the feed move (a lost notification, an administrator's SQL); a
// wake-up may also mean that changes may have been missed (the listener reconnected), never
// that nothing changed when something did.
func (s *Store) Changed() <-chan struct{} { return s.d.Changed() }

// Listening reports whether changes made by other instances are heard as they commit (always
// on SQLite, whose Changed watches the file itself).
func (s *Store) Listening() bool { return s.d.Listening() }

// ChangePoll is how often the version is read to see changes made by other processes.
const ChangePoll = driver.ChangePoll
