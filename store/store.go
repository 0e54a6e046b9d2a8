// Package store keeps the market's data (users, the catalogue, the ledger of trades, the live
// events and the sessions) in SQLite, or in PostgreSQL when several instances share one market.
// Every use case that writes is one method, atomic, and every rule about money is inside it.
//
// The use cases (users.go, items.go, trades.go, events.go, check.go, seed.go, copy.go,
// admin.go, and the mail's outbox and link tokens, mail.go and tokens.go) are written once, in
// SQL with ? placeholders, and call only the engine's driver (store/driver): they never ask
// which engine runs them. Open picks the engine from the URL (engines.go, the one place that
// names both); the driver package holds the one migrate loop and the objects Reset drops. Each
// engine is a package of its own with its own migrations:
//   - store/sqlite: one writer connection whose group commits run every write, beside
//     read-only connections; the money rules in Go and SQL; limit counts in memory.
//   - store/postgres: each write a retried transaction, a trade one statement (market_trade,
//     the money rules in PL/pgSQL); the market version a position in a change feed; Changed by
//     LISTEN/NOTIFY and a poll; limits and sessions in tables, for every instance.
//
// The money rules are written twice, once per engine, on purpose: PostgreSQL's trade is one
// round trip where SQLite's is nine statements in its group commit, and SQLite has no stored
// procedures. The conformance suite proves them equal: this package's tests of a store run on
// every engine the machine has (storetest.Each), and a property test runs the same seeded random
// trades and races on each, against a model of the rules, and compares every outcome.
package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"

	"market/store/driver"
)

// Errors the store returns for outcomes a caller is expected to handle.
var (
	ErrNotFound           = driver.ErrNotFound
	ErrDuplicateUsername  = errors.New("store: username taken")
	ErrDuplicateEmail     = errors.New("store: email taken")
	ErrInvalidCredentials = errors.New("store: invalid credentials")
	ErrInsufficientFunds  = driver.ErrInsufficientFunds
	ErrUnavailable        = driver.ErrUnavailable
	ErrNotOwner           = driver.ErrNotOwner
	// ErrClosed is returned by writes after Close.
	ErrClosed = driver.ErrClosed
	// ErrCommitUnknown says the connection failed while the transaction was committing: the
	// store cannot tell whether it took effect. The write is not tried again (it may have
	// happened); the user is told to look at what is recorded.
	ErrCommitUnknown = driver.ErrCommitUnknown
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

// Store is the market's database: the use cases, over one engine's driver. On SQLite writes
// queue in Go for one writer connection and commit in groups, beside a pool of read-only
// connections; on PostgreSQL each write is a transaction of its own.
type Store struct {
	d         driver.Driver // the engine
	cost      int
	dummyHash []byte // compared against when a username is unknown, so both failures take as long
	hashes    *hashSlots
	stats     *stats
	health    *health // how the last write went (Writable)
	names     names   // the items' names, for answers the database cannot give
}

// Open opens (creating if needed) the database at path, applies pending migrations and returns
// a ready Store. A postgres:// or postgresql:// URL opens PostgreSQL instead of a SQLite file.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	s := &Store{cost: cmp.Or(opts.BcryptCost, 12), stats: &stats{}, hashes: newHashSlots(opts.HashSlots, opts.HashWait),
		health: &health{}}
	d, err := openDriver(ctx, path, driver.Options{Commits: &s.stats.commits})
	if err != nil {
		return nil, err
	}
	s.d = watched{d, s.health}
	if err := driver.Migrate(ctx, s.d); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.d.Start(ctx); err != nil {
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
func (s *Store) Close() error { return s.d.Close() }

// Path is the database file (on PostgreSQL, its URL without the password).
func (s *Store) Path() string { return s.d.Path() }

// DB is the connection pool that writes (SQLite: the one writer connection; PostgreSQL: the
// pool that reads and writes), for administration, metrics and tests that must see what the
// store sees.
func (s *Store) DB() *sql.DB { return s.d.DB() }

// PoolStats are the statistics of the engine's connection pools beside DB (PostgreSQL: the
// sessions' pool), for /metrics; none on SQLite.
func (s *Store) PoolStats() []PoolStats { return s.d.Pools() }

// PoolStats are one connection pool's numbers.
type PoolStats = driver.PoolStats

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.d.Read().QueryRowContext(ctx, `SELECT 1`).Scan(&one)
}

// SchemaVersion is the number of the last migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.d.Read().QueryRowContext(ctx, s.d.Dialect().SchemaVersion).Scan(&v)
	return v, err
}

// Reset drops every table and applies the migrations again: an empty market. The market version
// goes on from where it was, so nothing cached under an old version can be taken for new, and
// the events of the old market are gone: a live stream from before the reset gets a refresh.
func (s *Store) Reset(ctx context.Context) error {
	version, err := s.Version(ctx) // the store is migrated (Open): it has one
	if err != nil {
		// Reset from 0, and the versions would start again below those already cached.
		return fmt.Errorf("reset: read the market version: %w", err)
	}
	schema, err := driver.MigrationObjects(s.d.Migrations())
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	if err := s.d.DropAll(ctx, schema); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	if err := driver.Migrate(ctx, s.d); err != nil {
		return err
	}
	return s.d.Reset(ctx, version)
}
