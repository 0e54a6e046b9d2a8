// Package store keeps the market's data (users, the catalogue, the ledger of trades, the live
// events and the sessions) in SQLite, or in PostgreSQL when several instances share one market.
// Every use case that writes is one method, atomic, and every rule about money is inside it.
//
// The use cases (users.go, items.go, trades.go, events.go, check.go, seed.go, copy.go, and the
// mail's outbox and link tokens, mail.go and tokens.go) are written once, in SQL with ?
// placeholders, and never ask which engine runs them. Open picks the engine once; engine.go
// holds its interface and what both share (the one migrate loop, the objects Reset drops):
//   - SQLite (sqlite.go, sqlite_events.go, writer.go): one writer connection whose group commits
//     run every write, beside read-only connections; PRAGMA user_version; Changed rung by this
//     process's trades and by a poll; login limits counted by the handlers, in memory.
//   - PostgreSQL (postgres.go, postgres_sql.go, postgres_trade.go, postgres_feed.go,
//     postgres_listen.go): ? rebound to $n; each write a transaction, retried on a serialization
//     failure or deadlock, and a trade one statement (market_trade); schema_version under an
//     advisory lock; the market version a position in an insert-only change feed, read below
//     the snapshot's horizon, with an epoch; Changed by a NOTIFY each instance sends after its
//     commits, and a poll; limits and sessions in tables, for every instance.
//
// Each engine has its own numbered migrations: migrations/ and migrations/postgres/.
package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"
)

// Errors the store returns for outcomes a caller is expected to handle.
var (
	ErrNotFound           = errors.New("store: not found")
	ErrDuplicateUsername  = errors.New("store: username taken")
	ErrDuplicateEmail     = errors.New("store: email taken")
	ErrInvalidCredentials = errors.New("store: invalid credentials")
	ErrInsufficientFunds  = errors.New("store: insufficient funds")
	ErrUnavailable        = errors.New("store: item unavailable")
	ErrNotOwner           = errors.New("store: not the owner")
)

// StartingBudget is what every new account is granted.
const StartingBudget = 1000

// Options tune a Store; the zero value is what production uses.
type Options struct {
	// BcryptCost is the cost of new password hashes; 0 means bcrypt cost 12.
	BcryptCost int
	// HashSlots is how many password hashes may run at once (0: GOMAXPROCS), and HashWait how
	// long a request waits for one before ErrBusy (0: 2 s).
	HashSlots int
	HashWait  time.Duration
}

// Store is the market's database. On SQLite it holds one writer connection, so that writers
// queue in Go instead of in SQLite's unfair busy handler, beside a pool of read-only connections;
// trades and sign-ups go through the writer's group commits. On PostgreSQL db and read are one
// pool, and each write is a transaction of its own.
type Store struct {
	db        *sql.DB // the writer
	read      *sql.DB // readers
	path      string
	cost      int
	dummyHash []byte // compared against when a username is unknown, so both failures take as long
	hashes    *hashSlots
	writer    writes
	eng       engine // what differs between SQLite and PostgreSQL
	stats     *stats
}

// connection is what an engine's open hands the Store.
type connection struct {
	db, read *sql.DB
	writer   writes
	path     string // for logs: the file, or the URL without its password
	eng      engine
}

// writes runs the use cases that write: SQLite's group commits (writer.go), or PostgreSQL's
// retried transactions (postgres_sql.go).
type writes interface {
	run(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error
	close()
}

// PathFromURL turns a database setting into a file path: a plain path, or a SQLAlchemy-style
// URL, sqlite:///relative.db or sqlite:////absolute/path.db.
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

// Open opens (creating if needed) the database at path, applies pending migrations and returns
// a ready Store. A postgres:// or postgresql:// URL opens PostgreSQL instead of a SQLite file.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	connect := openSQLite
	if IsPostgres(path) {
		connect = openPostgres
	}
	s := &Store{cost: cmp.Or(opts.BcryptCost, 12), stats: &stats{}, hashes: newHashSlots(opts.HashSlots, opts.HashWait)}
	c, err := connect(ctx, path, s.stats)
	if err != nil {
		return nil, err
	}
	s.db, s.read, s.writer, s.path, s.eng = c.db, c.read, c.writer, c.path, c.eng
	if err := migrate(ctx, s.eng); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.eng.start(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.dummyHash, err = bcrypt.GenerateFromPassword([]byte("not a real password"), s.cost)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("dummy hash: %w", err)
	}
	return s, nil
}

// Close finishes the write in progress and closes every connection.
func (s *Store) Close() error {
	s.writer.close()
	s.eng.close()
	if s.read == s.db {
		return s.db.Close()
	}
	return errors.Join(s.read.Close(), s.db.Close())
}

// Path is the database file (on PostgreSQL, its URL without the password).
func (s *Store) Path() string { return s.path }

// DB is the writer connection, for administration and tests that must see what the store sees.
func (s *Store) DB() *sql.DB { return s.db }

// Pool is the PostgreSQL connection pool (nil on SQLite), for sessions and pool statistics.
func (s *Store) Pool() *pgxpool.Pool { return s.eng.pool() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.read.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
}

// SchemaVersion is the number of the last migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.read.QueryRowContext(ctx, s.eng.dialect().schemaVersion).Scan(&v)
	return v, err
}

// Reset drops every table and applies the migrations again: an empty market. The market version
// goes on from where it was, so nothing cached under an old version can be taken for new, and
// the events of the old market are gone: a live stream from before the reset gets a refresh.
func (s *Store) Reset(ctx context.Context) error {
	version, _ := s.Version(ctx) // 0 if the database is too old to have one
	schema, err := migrationObjects(s.eng.migrations())
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	if err := s.eng.dropAll(ctx, schema); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	if err := migrate(ctx, s.eng); err != nil {
		return err
	}
	return s.eng.reset(ctx, version)
}
