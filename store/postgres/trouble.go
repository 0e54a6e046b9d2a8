package postgres

import (
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"market/store/driver"
)

// commitError says what a failed COMMIT means. The server's own answer (an error it sent,
// a serialization failure say) is a definite rollback; anything else (the connection dropped
// with the COMMIT sent, or perhaps sent) leaves the outcome unknown.
func commitError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Errorf("commit: %w", err)
	}
	return fmt.Errorf("commit: %w: %w", driver.ErrCommitUnknown, err)
}

// statementError says what a failed statement that commits as it runs (market_trade) means:
// the server's own answer, or a failure before anything was sent (a refused connection), is
// a definite "not done"; a connection lost with the statement sent leaves it unknown.
func statementError(err error) error {
	var (
		pe      *pgconn.PgError
		connErr *pgconn.ConnectError
	)
	if errors.As(err, &pe) || errors.As(err, &connErr) || pgconn.SafeToRetry(err) || errors.Is(err, sqldriver.ErrBadConn) {
		return err
	}
	return fmt.Errorf("%w: %w", driver.ErrCommitUnknown, err)
}

// retryable reports whether PostgreSQL asks for the transaction to be tried again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// Classify reads PostgreSQL's answers.
func (e *Engine) Classify(err error) driver.Trouble { return Classify(err) }

// Classify says what trouble err is: the common kinds, then pgx's connection errors and
// PostgreSQL's SQLSTATE codes.
func Classify(err error) driver.Trouble {
	if t := driver.CommonTrouble(err); t != driver.NoTrouble {
		return t
	}
	var (
		connErr *pgconn.ConnectError
		pe      *pgconn.PgError
	)
	switch {
	case errors.As(err, &connErr):
		return driver.Unavailable
	case errors.As(err, &pe):
		return sqlState(pe.Code)
	case pgconn.SafeToRetry(err): // the connection failed before anything was sent
		return driver.Unavailable
	}
	return driver.NoTrouble
}

// sqlState is the trouble a SQLSTATE code says.
func sqlState(code string) driver.Trouble {
	switch {
	// 08: connection exceptions; 57P01-3: the server shutting down or starting;
	// 53300: too many connections.
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "57P"), code == "53300":
		return driver.Unavailable
	case code == "53100": // disk_full
		return driver.DiskFull
	case code == "25006": // read_only_sql_transaction: a standby
		return driver.ReadOnly
	case code == "58030": // io_error
		return driver.IOError
	case code == "53000", code == "53200", code == "55P03": // insufficient resources, out of memory, lock not available
		return driver.Busy
	}
	return driver.NoTrouble
}
