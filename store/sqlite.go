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
	"strings"
	"time"

	"github.com/alexedwards/scs/sqlite3store"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mattn/go-sqlite3"
)

// This file is what SQLite does differently: one writer connection (group commits, writer.go)
// beside a pool of read-only connections, the schema version in PRAGMA user_version, and
// Changed rung by this process's trades and by a poll (sqlite_events.go).

//go:embed migrations/*.sql
var migrations embed.FS

// sqliteEngine is the SQLite side of the engine seam.
type sqliteEngine struct {
	db, read *sql.DB
	changes  changes // Changed's doorbell
}

// sqliteParams are the connection settings of every connection to the file.
func sqliteParams() url.Values {
	return url.Values{
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
}

// openSQLite opens the file at path (creating its directory if needed): the writer
// connection, its group commits and the readers. sql.Open connects lazily, so nothing touches
// the file before the migrations run.
func openSQLite(_ context.Context, path string, st *stats) (connection, error) {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return connection{}, fmt.Errorf("create database directory: %w", err)
		}
	}
	params := sqliteParams()
	// In a file: URI, SQLite decodes %XX, and ? and # would end the path.
	uri := "file:" + strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	db, err := sql.Open("sqlite3", uri+"?"+params.Encode())
	if err != nil {
		return connection{}, fmt.Errorf("open writer: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	params.Set("_query_only", "1")
	params.Del("_txlock")
	read, err := sql.Open("sqlite3", uri+"?"+params.Encode())
	if err != nil {
		db.Close()
		return connection{}, fmt.Errorf("open readers: %w", err)
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)
	read.SetConnMaxIdleTime(0)
	e := &sqliteEngine{db: db, read: read}
	return connection{db: db, read: read, writer: newWriter(db, st), path: path, eng: e}, nil
}

var sqliteDialect = dialect{
	like:          "LIKE", // SQLite's ignores letter case
	schemaVersion: `PRAGMA user_version`,
	integrity:     []string{`SELECT 'integrity: ' || integrity_check FROM pragma_integrity_check WHERE integrity_check <> 'ok'`},
	sessionAlive:  `julianday('now') < s.expiry`,
}

func (e *sqliteEngine) dialect() dialect { return sqliteDialect }

func (e *sqliteEngine) migrations() fs.FS { return subFS(migrations, "migrations") }

// lockSchema: the writer connection is the only one that writes, so it is the lock.
func (e *sqliteEngine) lockSchema(context.Context) (schemaLock, error) {
	return sqliteSchema{e.db}, nil
}

type sqliteSchema struct{ db *sql.DB }

func (l sqliteSchema) version(ctx context.Context) (int, error) {
	var v int
	err := l.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v)
	return v, err
}

func (l sqliteSchema) apply(ctx context.Context, body string, version int) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, version)); err != nil {
		return fmt.Errorf("set version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (sqliteSchema) release() {}

// dropAll drops the tables (their indexes and triggers go with them) and sets the version
// back to 0. SQLite has no functions in its schema.
func (e *sqliteEngine) dropAll(ctx context.Context, schema schemaObjects) error {
	conn, err := e.db.Conn(ctx) // one connection, so that the pragmas hold for the drops
	if err != nil {
		return err
	}
	defer conn.Close() // now: the writer has one connection, and migrate needs it
	stmts := []string{`PRAGMA foreign_keys = OFF`}
	for _, t := range schema.tables {
		stmts = append(stmts, `DROP TABLE IF EXISTS `+t)
	}
	stmts = append(stmts, `PRAGMA user_version = 0`, `PRAGMA foreign_keys = ON`)
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func (e *sqliteEngine) isUnique(err error, column string) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique &&
		strings.Contains(se.Error(), column)
}

// sessions: commits, deletes and cleanup go through the writer connection, finds (one per
// request) through the readers, so that loading a session never waits for a trade.
func (e *sqliteEngine) sessions(cleanup time.Duration) *SessionStore {
	return &SessionStore{
		sessionBackend: sqlite3store.NewWithCleanupInterval(e.db, cleanup),
		finder:         sqlite3store.NewWithCleanupInterval(e.read, 0),
	}
}

// limits: one process, so the handlers count in memory.
func (e *sqliteEngine) limits() limiter { return localLimits{} }

func (e *sqliteEngine) pool() *pgxpool.Pool { return nil }

func (e *sqliteEngine) close() { e.changes.stop() }
