package driver

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
)

// Trouble is the kind of failure an error says the database is in, as opposed to a request it
// refused: each is answered 503, to be tried again later (or, for CommitUnknown, looked at).
type Trouble int

// The kinds of trouble, from none.
const (
	NoTrouble     Trouble = iota
	Busy                  // the database is locked or overloaded for now
	Unavailable           // it cannot be reached or used at all: refused or dropped connections, a closed store
	CommitUnknown         // the connection failed while a commit was on its way
	DiskFull              // no space left for a write
	ReadOnly              // the database refuses writes (a read-only file, a standby)
	IOError               // the disk failed a read or a write
)

var troubles = [...]string{"none", "busy", "unavailable", "commit unknown", "disk full", "read-only", "I/O error"}

func (t Trouble) String() string { return troubles[t] }

// CommonTrouble classifies what every engine may return: a closed store, a dropped
// connection, the network; NoTrouble for the rest, which the engine's own Classify reads.
func CommonTrouble(err error) Trouble {
	var netErr net.Error
	switch {
	case err == nil:
		return NoTrouble
	case errors.Is(err, ErrCommitUnknown):
		return CommitUnknown
	// A call given up says nothing of the database: a caller that left is no trouble at all,
	// one whose time ran out (waiting for a connection, a lock, a slow answer) met a busy one.
	// Both before net.Error, which context.DeadlineExceeded satisfies.
	case errors.Is(err, context.Canceled):
		return NoTrouble
	case errors.Is(err, context.DeadlineExceeded):
		return Busy
	case errors.Is(err, ErrClosed), errors.Is(err, sql.ErrConnDone), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &netErr),
		strings.Contains(err.Error(), "sql: database is closed"): // database/sql does not export it
		return Unavailable
	}
	return NoTrouble
}
