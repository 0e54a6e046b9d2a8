package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"market/store/driver"
	"market/store/postgres"
	"market/store/sqlite"
)

// This file is the one place that names the engines: which one a database setting opens, and
// how each classifies the errors it returns.

// PathFromURL turns a database setting into a file path: a plain path, or a SQLAlchemy-style
// URL, sqlite:///relative.db or sqlite:////absolute/path.db. A PostgreSQL URL stays as it is.
func PathFromURL(s string) (string, error) {
	if !strings.Contains(s, "://") || IsPostgres(s) {
		return s, nil
	}
	rest, ok := strings.CutPrefix(s, "sqlite:///")
	if !ok || rest == "" {
		return "", fmt.Errorf("unsupported database URL %q: want sqlite:///path.db", s)
	}
	return rest, nil
}

// IsPostgres reports whether a database setting names a PostgreSQL database.
func IsPostgres(dsn string) bool { return postgres.IsURL(dsn) }

// openDriver opens the engine the setting names.
func openDriver(ctx context.Context, dsn string, opts driver.Options) (driver.Driver, error) {
	if postgres.IsURL(dsn) {
		return postgres.Open(ctx, dsn, opts)
	}
	return sqlite.Open(ctx, dsn, opts)
}

// classifiers are the engines' readings of their errors.
var classifiers = []func(error) driver.Trouble{sqlite.Classify, postgres.Classify}

// Trouble says what kind of trouble err says the database is in (driver.NoTrouble: none, a
// request it refused or a bug), whichever engine returned it.
func Trouble(err error) driver.Trouble {
	if errors.Is(err, context.Canceled) { // a caller that left, whatever its error wraps
		return driver.NoTrouble
	}
	for _, classify := range classifiers {
		if t := classify(err); t != driver.NoTrouble {
			return t
		}
	}
	return driver.NoTrouble
}

// Unavailable reports whether err says the database cannot be reached or used at all (refused
// or dropped connections, a closed store, a file that cannot be opened), or that a commit was
// cut off, as opposed to a request it refused: such a request is answered 503, to be tried
// again later.
func Unavailable(err error) bool {
	switch Trouble(err) {
	case driver.Unavailable, driver.CommitUnknown:
		return true
	}
	return false
}

// CannotWrite reports whether err says the database can be read but not written: its disk is
// full, it is read-only, or the disk failed a write. Such a request is answered 503 too, and
// readiness (Store.Writable) says so to a load balancer.
func CannotWrite(err error) bool {
	switch Trouble(err) {
	case driver.DiskFull, driver.ReadOnly, driver.IOError:
		return true
	}
	return false
}

// Locked reports whether err says the database was too busy to take the request in time.
func Locked(err error) bool { return Trouble(err) == driver.Busy }
