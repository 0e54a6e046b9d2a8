package store

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
)

// ErrCommitUnknown says the connection failed while the transaction was committing: the store
// cannot tell whether it took effect. The write is not tried again (it may have happened); the
// user is told to look at what is recorded.
var ErrCommitUnknown = errors.New("store: commit outcome unknown")

// commitError says what a failed COMMIT means. The server's own answer (an error it sent,
// a serialization failure say) is a definite rollback; anything else (the connection dropped
// with the COMMIT sent, or perhaps sent) leaves the outcome unknown.
func commitError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Errorf("commit: %w", err)
	}
	return fmt.Errorf("commit: %w: %w", ErrCommitUnknown, err)
}

// statementError says what a failed statement that commits as it runs (market_trade) means:
// the server's own answer, or a failure before anything was sent (a refused connection), is
// a definite "not done"; a connection lost with the statement sent leaves it unknown.
func statementError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) || pgconn.SafeToRetry(err) || errors.Is(err, driver.ErrBadConn) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrCommitUnknown, err)
}

// Unavailable reports whether err says the database cannot be reached or used at all (refused
// or dropped connections, a closed store, a file that cannot be opened), as opposed to a
// request it refused: such a request is answered 503, to be tried again later.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrClosed) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "sql: database is closed") { // database/sql does not export it
		return true
	}
	var (
		netErr  net.Error
		connErr *pgconn.ConnectError
		pe      *pgconn.PgError
		se      sqlite3.Error
	)
	switch {
	case errors.As(err, &connErr), errors.As(err, &netErr):
		return true
	case errors.As(err, &pe):
		// 08: connection exceptions; 57P01-3: the server shutting down or starting;
		// 53300: too many connections.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P") || pe.Code == "53300"
	case errors.As(err, &se):
		switch se.Code {
		case sqlite3.ErrCantOpen, sqlite3.ErrIoErr, sqlite3.ErrNotADB, sqlite3.ErrPerm, sqlite3.ErrAuth, sqlite3.ErrReadonly:
			return true
		}
	}
	return pgconn.SafeToRetry(err) // pgx: the connection failed before anything was sent
}
