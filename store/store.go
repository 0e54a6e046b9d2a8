// Package store keeps the market's data in SQLite, or in PostgreSQL when several instances share
// one market (postgres.go): users, the catalogue, the ledger of trades and the sessions. Every
// use case that writes is one method, atomic (a savepoint of a group commit on SQLite, see
// writer; a retried transaction on PostgreSQL), and every rule about money is enforced inside it.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/mattn/go-sqlite3"
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

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune a Store; the zero value is what production uses.
type Options struct {
	// BcryptCost is the cost of new password hashes; 0 means bcrypt cost 12.
	BcryptCost int
}

// Store is the market's database. It holds one writer connection, so that writers queue in Go
// instead of in SQLite's unfair busy handler, beside a pool of read-only connections. Trades and
// sign-ups go through the writer's group commits.
type Store struct {
	db        *sql.DB // the single writer
	read      *sql.DB // readers
	path      string
	cost      int
	dummyHash []byte // compared against when a username is unknown, so both failures take as long
	writer    writes
	pg        *postgres // nil on SQLite; see postgres.go
	stats     *stats
	changes   changes // the live streams' doorbell on SQLite (events.go)
}

// writes runs the use cases that write: SQLite's group commits (writer.go), or PostgreSQL's
// retried transactions (postgres.go).
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
// a ready Store. A postgres:// or postgresql:// URL opens PostgreSQL instead (postgres.go).
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if IsPostgres(path) {
		return openPostgres(ctx, path, opts)
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
	}
	params := url.Values{
		"_foreign_keys":  {"on"},
		"_journal_mode":  {"WAL"},
		"_synchronous":   {"FULL"},
		"_busy_timeout":  {"10000"},
		"_txlock":        {"immediate"},
		"_cache_size":    {"-16000"},
		"_auto_vacuum":   {"none"},
		"_secure_delete": {"off"},
		// Each connection keeps its compiled statements: the hot reads are parsed once.
		"_stmt_cache_size": {"32"},
	}
	// In a file: URI, SQLite decodes %XX, and ? and # would end the path.
	uri := "file:" + strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	db, err := sql.Open("sqlite3", uri+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("open writer: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	s := &Store{db: db, path: path, cost: opts.BcryptCost, stats: &stats{}}
	if s.cost == 0 {
		s.cost = 12
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}

	params.Set("_query_only", "1")
	params.Del("_txlock")
	read, err := sql.Open("sqlite3", uri+"?"+params.Encode())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open readers: %w", err)
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)
	read.SetConnMaxIdleTime(0)
	s.read = read
	s.writer = newWriter(db, s.stats)

	s.dummyHash, err = bcrypt.GenerateFromPassword([]byte("not a real password"), s.cost)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("dummy hash: %w", err)
	}
	return s, nil
}

// Close finishes the write in progress and closes every connection.
func (s *Store) Close() error {
	s.changes.stop()
	if s.writer != nil {
		s.writer.close()
	}
	if s.pg != nil {
		defer s.pg.close()
		return s.db.Close()
	}
	return errors.Join(s.read.Close(), s.db.Close())
}

// Path is the database file (on PostgreSQL, its URL without the password).
func (s *Store) Path() string { return s.path }

// DB is the writer connection, for administration and tests that must see what the store sees.
func (s *Store) DB() *sql.DB { return s.db }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.read.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
}

// migrate applies every embedded migration newer than the database's user_version, each in
// its own transaction together with the new version number.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	var current int
	if err := s.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	for _, name := range names {
		version, err := strconv.Atoi(strings.SplitN(filepath.Base(name), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: bad name", name)
		}
		if version <= current {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migration %s: begin: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, version)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: set version: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: commit: %w", name, err)
		}
		current = version
	}
	return nil
}

// SchemaVersion is the number of the last migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if s.pg != nil {
		err := s.read.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
		return v, err
	}
	err := s.read.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v)
	return v, err
}

// Reset drops every table and applies the migrations again: an empty market. The market version
// goes on from where it was, so nothing cached under an old version can be taken for new.
func (s *Store) Reset(ctx context.Context) error {
	if s.pg != nil {
		return s.resetPostgres(ctx)
	}
	version, _ := s.Version(ctx) // 0 if the database is too old to have one
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	stmts := []string{
		`PRAGMA foreign_keys = OFF`,
		`DROP TABLE IF EXISTS market_events`, `DROP TABLE IF EXISTS market_events_horizon`, `DROP TABLE IF EXISTS admin_log`,
		`DROP TABLE IF EXISTS trades`, `DROP TABLE IF EXISTS catalogue`, `DROP TABLE IF EXISTS items`,
		`DROP TABLE IF EXISTS users`, `DROP TABLE IF EXISTS sessions`,
		`PRAGMA user_version = 0`, `PRAGMA foreign_keys = ON`,
	}
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
	}
	conn.Close() // now: the writer has one connection, and migrate needs it
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE catalogue SET version = max(version, ?) + 1`, version); err != nil {
		return fmt.Errorf("reset: market version: %w", err)
	}
	return nil
}

// isUnique reports whether err is a UNIQUE constraint failure on the given column.
func isUnique(err error, column string) bool {
	if isPgUnique(err, column) {
		return true
	}
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique &&
		strings.Contains(se.Error(), column)
}
