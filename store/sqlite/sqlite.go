package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"market/store/driver"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Engine is the market in one SQLite file.
type Engine struct {
	db, read *sql.DB
	path     string
	writer   *writer
	changes  changes // Changed's doorbell
	limits   driver.MemoryLimits
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

// Open opens the file at path (creating its directory if needed): the writer connection, its
// group commits and the readers. sql.Open connects lazily, so nothing touches the file before
// the migrations run.
func Open(_ context.Context, path string, opts driver.Options) (*Engine, error) {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
	}
	params := sqliteParams()
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
	return &Engine{db: db, read: read, path: path, writer: newWriter(db, opts.Commits)}, nil
}

var dialect = driver.Dialect{
	Like:          "LIKE", // SQLite's ignores letter case
	SchemaVersion: `PRAGMA user_version`,
	Integrity:     []string{`SELECT 'integrity: ' || integrity_check FROM pragma_integrity_check WHERE integrity_check <> 'ok'`},
	SessionAlive:  `julianday('now') < s.expiry`,
	Sessions:      `SELECT token, data, expiry FROM sessions WHERE expiry > julianday('now')`,
	SessionExpiry: julianExpiry,
	// scs's SQLite store wrote expiries so, and sessions from before are read the same way.
	SessionExpiryParam: `julianday($3)`,
	SessionExpiryArg:   func(t time.Time) any { return t.UTC().Format("2006-01-02T15:04:05.999") },
}

// julianExpiry turns a session's expiry from a Julian day into a time.
func julianExpiry(v any) (time.Time, error) {
	jd, ok := v.(float64)
	if !ok {
		return time.Time{}, fmt.Errorf("session expiry %v is not a Julian day", v)
	}
	sec, frac := math.Modf((jd - 2440587.5) * 86400)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// Dialect is how the engine spells what the shared SQL cannot.
func (e *Engine) Dialect() driver.Dialect { return dialect }

// Migrations are the numbered files of migrations/.
func (e *Engine) Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // a constant directory, embedded
	}
	return sub
}

// Path is the database file.
func (e *Engine) Path() string { return e.path }

// DB is the writer connection.
func (e *Engine) DB() *sql.DB { return e.db }

// Read is the pool of read-only connections.
func (e *Engine) Read() *sql.DB { return e.read }

// Snapshot is a read transaction of a reader: its statements cost no round trips, so they run
// one at a time.
func (e *Engine) Snapshot(ctx context.Context) (driver.Batch, error) {
	tx, err := e.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	return driver.TxBatch(ctx, tx, e.Position, true), nil
}

// Run runs fn in the writer's next group commit.
func (e *Engine) Run(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return e.writer.run(ctx, fn)
}

// LockSchema is the writer connection: the only one that writes, so it is the lock.
func (e *Engine) LockSchema(context.Context) (driver.SchemaLock, error) {
	return sqliteSchema{e.db}, nil
}

type sqliteSchema struct{ db *sql.DB }

func (l sqliteSchema) Version(ctx context.Context) (int, error) {
	var v int
	err := l.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v)
	return v, err
}

// Apply applies a migration unless another process (a command started beside the server) did
// since its version was read: its transaction is IMMEDIATE, so the version read in it is the
// one it would write over.
func (l sqliteSchema) Apply(ctx context.Context, body string, version int) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	var current int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current >= version {
		return nil
	}
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

func (sqliteSchema) Release() {}

// DropAll drops the tables (their indexes and triggers go with them) and sets the version
// back to 0. SQLite has no functions in its schema.
func (e *Engine) DropAll(ctx context.Context, schema driver.SchemaObjects) error {
	conn, err := e.db.Conn(ctx) // one connection, so that the pragmas hold for the drops
	if err != nil {
		return err
	}
	defer conn.Close() // now: the writer has one connection, and migrate needs it
	stmts := []string{`PRAGMA foreign_keys = OFF`}
	for _, t := range schema.Tables {
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

// IsUnique reports whether err is a unique violation on table.column.
func (e *Engine) IsUnique(err error, column string) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique &&
		strings.Contains(se.Error(), column)
}

// Sessions is the session store: commits and deletes go through the writer connection, finds
// (one per request) through the readers, so that loading a session never waits for a trade. A
// find reads the session's user and the version with it, for authenticate.
func (e *Engine) Sessions() *driver.SessionStore {
	ss := driver.NewSessionStore(e.db, e.read, dialect)
	ss.ReadUserWith(e.sessionUser)
	return ss
}

// Limits are kept in memory: one process.
func (e *Engine) Limits() driver.Limits { return &e.limits }

// Pools are none: database/sql's statistics (DB) are all SQLite has.
func (e *Engine) Pools() []driver.PoolStats { return nil }

// Close finishes the write in progress and closes every connection.
func (e *Engine) Close() error {
	e.writer.close()
	e.changes.stop()
	return errors.Join(e.read.Close(), e.db.Close())
}
