package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"market/store/driver"
)

// sweepBatch bounds one delete, so that a sweep after a flood never holds the writer
// connection for long.
const sweepBatch = 1000

// Sweep deletes expired sessions, a batch at a time, and forgets the limit counts (kept in
// memory) older than limitsBefore.
func (e *Engine) Sweep(ctx context.Context, limitsBefore time.Time) (driver.Swept, error) {
	e.limits.Forget(limitsBefore)
	var total int64
	for {
		res, err := e.db.ExecContext(ctx, `DELETE FROM sessions WHERE token IN
			(SELECT token FROM sessions WHERE expiry < julianday('now') LIMIT ?)`, sweepBatch)
		if err != nil {
			return driver.Swept{Sessions: total}, fmt.Errorf("sweep: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n < sweepBatch {
			return driver.Swept{Sessions: total}, nil
		}
	}
}

// Rows counts the sessions; the limit counts are in memory, none in the file.
func (e *Engine) Rows(ctx context.Context) (sessions, limitEvents int64, err error) {
	if err := e.read.QueryRowContext(ctx, `SELECT count(*) FROM sessions`).Scan(&sessions); err != nil {
		return 0, 0, fmt.Errorf("count sessions: %w", err)
	}
	return sessions, 0, nil
}

// Backup writes a consistent copy of the file to out, a file that must not exist yet, while
// the market keeps trading: VACUUM INTO reads one snapshot (every trade committed before it
// began, none after), and writers carry on beside it in WAL mode.
func (e *Engine) Backup(ctx context.Context, out string) error {
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("backup: %s already exists", out)
	}
	// A connection of its own: VACUUM INTO only reads this database, but the readers are
	// query-only (which refuses it), and on the writer it would hold up every trade.
	db, err := sql.Open("sqlite3", "file:"+strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(e.path)+
		"?_busy_timeout=10000")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// Copy says a SQLite market can be copied from (into PostgreSQL), not into.
func (e *Engine) Copy() driver.Copying { return driver.Copying{Source: true} }

// Load is not supported: a SQLite file is not a copy's target.
func (e *Engine) Load(context.Context, func(driver.LoadFunc) error) error {
	return driver.ErrNotSupported
}

// Classify reads SQLite's result codes.
func (e *Engine) Classify(err error) driver.Trouble { return Classify(err) }

// Classify says what trouble err is: the common kinds, then SQLite's result codes.
func Classify(err error) driver.Trouble {
	if t := driver.CommonTrouble(err); t != driver.NoTrouble {
		return t
	}
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return driver.NoTrouble
	}
	switch se.Code {
	case sqlite3.ErrBusy, sqlite3.ErrLocked:
		return driver.Busy
	case sqlite3.ErrFull:
		return driver.DiskFull
	case sqlite3.ErrReadonly:
		return driver.ReadOnly
	case sqlite3.ErrIoErr:
		return driver.IOError
	case sqlite3.ErrCantOpen, sqlite3.ErrNotADB, sqlite3.ErrPerm, sqlite3.ErrAuth:
		return driver.Unavailable
	}
	return driver.NoTrouble
}
