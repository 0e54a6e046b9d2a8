package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// This file is what PostgreSQL does differently; the use cases are shared. The store's SQL is
// written once, with ? placeholders (rebound to $n, postgres_sql.go) and SQLite's COLLATE
// NOCASE (an ICU collation of that name here, see migrations/postgres). Writes are one
// transaction each, retried when PostgreSQL reports a serialization failure or a deadlock,
// instead of SQLite's group commits, and a trade is one statement (market_trade,
// postgres_trade.go); the market version is a position in the change feed (postgres_feed.go),
// and a listener hears every instance's changes (Changed, postgres_listen.go).

//go:embed migrations/postgres/*.sql
var pgMigrations embed.FS

// IsPostgres reports whether a database setting names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// postgresEngine is the PostgreSQL side of the engine seam.
type postgresEngine struct {
	pgx    *pgxpool.Pool // sessions, limits, migrations, copy, notifications, pruning
	db     *sql.DB       // the use cases' connections
	writer *pgWriter
	stats  *stats

	pgEngineState
	stop           context.CancelFunc // ends the listener and the notifier
	stopBackground context.CancelFunc // ends the poll and the pruning (nil before start)
}

// maxConns bounds the connections of one instance's use cases (the sessions have 8 more).
const maxConns = 24

// openPostgres connects to the database at dsn and starts the listener.
func openPostgres(ctx context.Context, dsn string, st *stats) (connection, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return connection{}, fmt.Errorf("database URL: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = 8 // sessions only: one short query per request
	}
	// A confirmed trade is committed: whatever the server's default, wait for the WAL flush.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return connection{}, fmt.Errorf("connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return connection{}, fmt.Errorf("connect: %w", err)
	}
	// The use cases have connections of their own, apart from the sessions' pool: database/sql
	// keeps idle connections, and on a shared pool those could starve the session store.
	db := sql.OpenDB(rebindConnector{stdlib.GetConnector(*cfg.ConnConfig)})
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	w := &pgWriter{db: db, stats: st}
	e := &postgresEngine{pgx: pool, db: db, writer: w, stats: st}
	e.changes, e.kick = make(chan struct{}), make(chan struct{}, 1)
	e.startListener(cfg.ConnConfig)
	return connection{db: db, read: db, writer: w, path: redact(dsn), eng: e}, nil
}

func (e *postgresEngine) close() {
	if e.stopBackground != nil {
		e.stopBackground()
	}
	e.stop()
	e.wg.Wait()
	// The pool waits for every connection to come back; one a caller leaked (a transaction never
	// ended) must not hold the process on its way out.
	closed := make(chan struct{})
	go func() { e.pgx.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
	}
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

// postgresDialect: PostgreSQL checks its own integrity; Check has only the money to verify.
var postgresDialect = dialect{like: "ILIKE", schemaVersion: `SELECT version FROM schema_version`, lockRow: ` FOR UPDATE`,
	sessionAlive: `current_timestamp < s.expiry`}

func (e *postgresEngine) dialect() dialect { return postgresDialect }

func (e *postgresEngine) migrations() fs.FS { return subFS(pgMigrations, "migrations/postgres") }

// lockSchema takes an advisory lock on a connection of its own, so that instances starting
// together do not migrate twice.
func (e *postgresEngine) lockSchema(ctx context.Context) (schemaLock, error) {
	conn, err := e.pgx.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(7460137)`); err != nil {
		conn.Release()
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	l := pgSchema{conn}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
		l.release()
		return nil, fmt.Errorf("schema version table: %w", err)
	}
	return l, nil
}

type pgSchema struct{ conn *pgxpool.Conn }

func (l pgSchema) version(ctx context.Context) (int, error) {
	var v int
	err := l.conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&v)
	return v, err
}

func (l pgSchema) apply(ctx context.Context, body string, version int) error {
	return pgx.BeginFunc(ctx, l.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, body); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM schema_version`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, version)
		return err
	})
}

func (l pgSchema) release() {
	// Even when the migration was cancelled: the connection goes back to the pool.
	l.conn.Exec(context.Background(), `SELECT pg_advisory_unlock(7460137)`)
	l.conn.Release()
}

// dropAll drops the tables, with schema_version, and the functions, in one statement.
func (e *postgresEngine) dropAll(ctx context.Context, schema schemaObjects) error {
	stmt := `DROP TABLE IF EXISTS ` + strings.Join(append(schema.tables, "schema_version"), ", ") + ` CASCADE`
	for _, f := range schema.functions {
		stmt += `; DROP FUNCTION IF EXISTS ` + f
	}
	_, err := e.pgx.Exec(ctx, stmt)
	return err
}

// isUnique reports whether err is a unique violation of the index on table.column.
func (e *postgresEngine) isUnique(err error, column string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" &&
		strings.Contains(pe.ConstraintName, strings.ReplaceAll(column, ".", "_"))
}

// recordEvent on PostgreSQL: a purchase or a sale is in the feed already (its ledger row is,
// migrations/postgres/0005_trade_feed.sql); an operator's change (add, edit, retire,
// grant) is written here, with its kind and whom it concerns, beside the trigger's plain
// "change" row, so that the streams can tell an edited row or a granted budget.
func (e *postgresEngine) recordEvent(ctx context.Context, tx *sql.Tx, itemID int64, kind string, userID int64) error {
	if kind == "buy" || kind == "sell" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO market_feed (item_id, kind, user_id) VALUES (?, ?, ?)`,
		itemID, kind, userID)
	return err
}

// sessions keeps sessions in the sessions table through scs's pgx store.
func (e *postgresEngine) sessions(cleanup time.Duration) *SessionStore {
	ps := pgxstore.NewWithCleanupInterval(e.pgx, cleanup)
	return &SessionStore{sessionBackend: ps, finder: ps}
}

func (e *postgresEngine) limits() limiter { return pgLimits{e.pgx} }

func (e *postgresEngine) pool() *pgxpool.Pool { return e.pgx }
