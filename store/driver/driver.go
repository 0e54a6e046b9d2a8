// Package driver is the seam between the store's use cases (package store) and the two engines
// that keep the market: store/sqlite (one file, one writer) and store/postgres (several
// instances on one database). It holds the interface each engine implements, and the plain
// types and sentinel errors both return; package store re-exports them under the same names,
// so its callers never import this package.
//
// An engine owns everything it does differently: its migrations, how a write runs (SQLite's
// group commits, PostgreSQL's retried transactions), the trade, the market version and its
// change feed, sessions, limit counts, sweeping, backup, version exactness, pool statistics
// and the classification of its errors. The use cases run the SQL both share (written with ?
// placeholders) through Read and Run, and never ask which engine runs them.
package driver

import (
	"context"
	"database/sql"
	"io/fs"
	"time"
)

// Driver is one open engine: what the store's use cases call.
type Driver interface {
	// Path is the database for logs: the file, or the URL without its password.
	Path() string
	// DB is the connection pool that writes: SQLite's one writer connection, PostgreSQL's
	// use-case pool. For administration and tests that must see what the store sees.
	DB() *sql.DB
	// Read is the pool the use cases read from (on PostgreSQL, DB itself).
	Read() *sql.DB
	// Run runs fn as one write: in SQLite's next group commit, or in a transaction of its own
	// on PostgreSQL, run again on a serialization failure or a deadlock. fn must leave the
	// transaction usable (no Commit or Rollback of its own).
	Run(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error

	// Dialect is how the engine spells what the shared SQL cannot.
	Dialect() Dialect
	// Migrations are the engine's numbered *.sql files, at the root of the FS.
	Migrations() fs.FS
	// LockSchema holds the schema for one migration run (PostgreSQL: against other instances).
	LockSchema(ctx context.Context) (SchemaLock, error)
	// DropAll drops the market's tables and functions (and what hangs on them), and the
	// schema version with them.
	DropAll(ctx context.Context, schema SchemaObjects) error
	// IsUnique reports whether err is a unique violation on table.column.
	IsUnique(err error, column string) bool

	// Trade runs one purchase (buy) or sale, with every rule about money: an item is sold
	// once, a budget never goes below zero, the ledger and the market event are written in
	// the same transaction. Refusals are ErrNotFound, ErrUnavailable, ErrInsufficientFunds and
	// ErrNotOwner; on a refusal Trade.Budget is the budget that stands. after, when not nil,
	// is a read the caller makes next, which the engine may make with the trade (AfterTrade).
	Trade(ctx context.Context, userID, itemID int64, buy bool, after *AfterTrade) (Trade, error)
	// RecordEvent writes an operator's market event inside its transaction.
	RecordEvent(ctx context.Context, tx *sql.Tx, itemID int64, kind string, userID int64) error
	// Position is the market version q sees. exact is false when q may also see changes
	// after it: then nothing read may be cached under it, though every event up to it is final.
	Position(ctx context.Context, q Querier) (version int64, exact bool, err error)
	// Exact reports whether a version names one state of the market (see Position).
	Exact(version int64) bool
	// Moved reports whether version is another position of the market than since (an exact
	// version and the inexact one of the same position are not).
	Moved(version, since int64) bool
	// LookAgain rings Changed in a moment: a read found a version that is not exact.
	LookAgain()
	// Snapshot begins a read-only snapshot whose statements are sent in batches (Batch).
	Snapshot(ctx context.Context) (Batch, error)
	// VersionedUser is Position and the user id (ErrNotFound: none), in one statement.
	VersionedUser(ctx context.Context, q Querier, id int64) (version int64, u User, err error)
	// EventsSince is up to limit events after version since, up to version until (q's
	// Position, read before in the same snapshot); complete is false when some are gone
	// (pruned, or since is from another history).
	EventsSince(ctx context.Context, q Querier, since, until int64, limit int) (events []MarketEvent, complete bool, err error)
	// Prune deletes the events beyond the newest keep, and moves the horizon past them.
	Prune(ctx context.Context, keep int) error
	// Reset gives a market just migrated again a version past old, the version before.
	Reset(ctx context.Context, old int64) error
	// Start runs once the schema is migrated: what the engine runs besides the use cases.
	Start(ctx context.Context) error
	// Changed is a channel closed when the market may have changed; Listening says whether
	// other processes' changes are heard as they commit; Committed tells of this process's.
	Changed() <-chan struct{}
	Committed()
	Listening() bool

	// Sessions is the scs session store (expired sessions are deleted by Sweep).
	Sessions() *SessionStore
	// Limits keeps the counts of the rate limits (failed logins, sign-ups).
	Limits() Limits
	// Sweep deletes expired sessions and limit counts older than limitsBefore.
	Sweep(ctx context.Context, limitsBefore time.Time) (Swept, error)
	// Rows counts the rows of the tables that grow with requests.
	Rows(ctx context.Context) (sessions, limitEvents int64, err error)
	// Backup writes a consistent copy of the database to the file out (ErrNotSupported: the
	// engine's own tools do it).
	Backup(ctx context.Context, out string) error
	// Copy says whether the engine can be the source or the target of a copy (CopyTo).
	Copy() Copying
	// Load writes rows into the empty tables of a copy's target, in one transaction, and
	// moves the id sequences past them.
	Load(ctx context.Context, tables func(load LoadFunc) error) error
	// Pools are the statistics of the engine's connection pools, for /metrics.
	Pools() []PoolStats
	// Classify says what kind of trouble err is, if any.
	Classify(err error) Trouble
	// Close ends what the engine runs and closes its connections.
	Close() error
}

// Options are what the store hands an engine when it opens.
type Options struct {
	// Commits hears the time of every commit of a write.
	Commits *CommitClock
}

// Dialect is the SQL the engines spell differently.
type Dialect struct {
	Like          string   // LIKE that ignores letter case
	SchemaVersion string   // reads the number of the last migration applied
	Integrity     []string // Check's queries of the engine's own integrity, each row a problem
	// LockRow ends a read of a row the transaction is about to change, so that a concurrent
	// change of the row waits for it (PostgreSQL's FOR UPDATE; SQLite writes one at a time).
	LockRow string
	// SkipLocked ends a read of rows to claim: the rows another transaction holds are passed
	// over, not waited for (PostgreSQL's FOR UPDATE SKIP LOCKED; SQLite's one writer claims
	// alone).
	SkipLocked string
	// SessionAlive holds for a session s that has not expired.
	SessionAlive string
	// Sessions reads the unexpired sessions as token, data, expiry; SessionExpiry turns the
	// expiry read into a time (for a copy).
	Sessions      string
	SessionExpiry func(v any) (time.Time, error)
	// SessionExpiryParam spells the third parameter ($3) of a session's write as the expiry
	// column keeps it, and SessionExpiryArg turns a time into that parameter.
	SessionExpiryParam string
	SessionExpiryArg   func(time.Time) any
}

// Querier is a database or a transaction: what a read needs.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// SchemaLock reads and moves the schema version while migrations run.
type SchemaLock interface {
	Version(ctx context.Context) (int, error)
	// Apply runs one migration and records its version, in one transaction.
	Apply(ctx context.Context, body string, version int) error
	Release()
}

// SchemaObjects are the tables and functions the migrations create, in the order they are
// created: what Reset drops.
type SchemaObjects struct {
	Tables, Functions []string
}

// Copying says which ends of a copy an engine can be.
type Copying struct{ Source, Target bool }

// LoadFunc writes rows of cols into table.
type LoadFunc func(table string, cols []string, rows [][]any) error

// PoolStats are one connection pool's numbers.
type PoolStats struct {
	Name                                 string // "sessions"
	Acquired, Idle, Total, EmptyAcquires int64
}
