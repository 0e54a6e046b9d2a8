package sqlite_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/mattn/go-sqlite3"

	"market/store/driver"
	"market/store/sqlite"
)

// SQLite's result codes, wrapped as the store wraps them, are each the trouble they say.
func TestClassify(t *testing.T) {
	for code, want := range map[sqlite3.ErrNo]driver.Trouble{
		sqlite3.ErrBusy: driver.Busy, sqlite3.ErrLocked: driver.Busy, sqlite3.ErrFull: driver.DiskFull,
		sqlite3.ErrReadonly: driver.ReadOnly, sqlite3.ErrIoErr: driver.IOError, sqlite3.ErrCantOpen: driver.Unavailable,
		sqlite3.ErrNotADB: driver.Unavailable, sqlite3.ErrConstraint: driver.NoTrouble,
	} {
		err := fmt.Errorf("debit buyer: %w", sqlite3.Error{Code: code})
		if got := sqlite.Classify(err); got != want {
			t.Errorf("code %d: %s, want %s", code, got, want)
		}
	}
	for err, want := range map[error]driver.Trouble{
		nil: driver.NoTrouble, errors.New("bad input"): driver.NoTrouble,
		fmt.Errorf("write: %w", driver.ErrClosed): driver.Unavailable,
	} {
		if got := sqlite.Classify(err); got != want {
			t.Errorf("%v: %s, want %s", err, got, want)
		}
	}
}
