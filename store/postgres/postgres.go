package postgres

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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"market/store/driver"
)

//go:embed migrations/*.sql
var migrations embed.FS

// IsURL reports whether a database setting names a PostgreSQL database.
func IsURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Engine is the market in a PostgreSQL database, shared by every instance.
type Engine struct {
	pgx     *pgxpool.Pool // sessions, limits, migrations, copy, notifications, pruning
	db      *sql.DB       // the use cases' connections
	path    string
	writer  *pgWriter
	commits *driver.CommitClock
	// sessions run on the sessions' pool, through database/sql (sessionsDB) for their contexts.
	sessions   *driver.SessionStore
	sessionsDB *sql.DB

	pgEngineState
	stop           context.CancelFunc // ends the listener and the notifier
	stopBackground context.CancelFunc // ends the poll and the pruning (nil before start)
}

// maxConns bounds the connections of one instance's use cases (the sessions have 8 more).
const maxConns = 24

// Open connects to the database at dsn and starts the listener.
func Open(ctx context.Context, dsn string, opts driver.Options) (*Engine, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = 8 // sessions only: one short query per request
	}
	// A confirmed trade is committed: whatever the server's default, wait for the WAL flush.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	cfg.ShouldPing = func(_ context.Context, p pgxpool.ShouldPingParams) bool { return p.IdleDuration > pingIdle }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	// The use cases have connections of their own, apart from the sessions' pool: database/sql
	// keeps idle connections, and on a shared pool those could starve the session store.
	db := sql.OpenDB(rebindConnector{stdlib.GetConnector(*cfg.ConnConfig, stdlib.OptionShouldPing(shouldPing))})
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	w := &pgWriter{db: db, commits: opts.Commits}
	e := &Engine{pgx: pool, db: db, path: redact(dsn), writer: w, commits: opts.Commits}
	e.sessionsDB = stdlib.OpenDBFromPool(pool, stdlib.OptionShouldPing(shouldPing))
	e.sessions = driver.NewSessionStore(e.sessionsDB, e.sessionsDB, dialect)
	e.sessions.ReadUserWith(e.sessionUser)
	e.changes, e.kick = make(chan struct{}), make(chan struct{}, 1)
	e.startListener(cfg.ConnConfig)
	return e, nil
}

// pingIdle is how long a connection may sit idle and still be used without a ping first. A
// ping is a round trip of its own before the request's first (pgx pings after a second by
// default, so a quiet instance paid one more round trip on most requests); a connection that
// died while idle for less fails its statement, which the request answers as the database's
// trouble (and a trade whose statement was sent as of unknown outcome).
const pingIdle = 10 * time.Second

func shouldPing(_ context.Context, p stdlib.ShouldPingParams) bool { return p.IdleDuration > pingIdle }

// Close ends the listener, the poll and the pruning, and closes every connection.
func (e *Engine) Close() error {
	e.writer.close()
	if e.stopBackground != nil {
		e.stopBackground()
	}
	e.stop()
	e.wg.Wait()
	// The pool waits for every connection to come back; one a caller leaked (a transaction never
	// ended) must not hold the process on its way out.
	e.sessionsDB.Close()
	closed := make(chan struct{})
	go func() { e.pgx.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
	}
	return e.db.Close()
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

// dialect: PostgreSQL checks its own integrity; Check has only the money to verify.
var dialect = driver.Dialect{Like: "ILIKE", SchemaVersion: `SELECT version FROM schema_version`, LockRow: ` FOR UPDATE`,
	SkipLocked: ` FOR UPDATE SKIP LOCKED`, SessionAlive: `current_timestamp < s.expiry`, SessionExpiryParam: `$3`,
	SessionExpiryArg: func(t time.Time) any { return t }}

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

// Path is the database's URL without its password.
func (e *Engine) Path() string { return e.path }

// DB is the use cases' pool: it reads and writes.
func (e *Engine) DB() *sql.DB { return e.db }

// Read is DB.
func (e *Engine) Read() *sql.DB { return e.db }

// Run runs fn in a transaction of its own, retried (see pgWriter).
func (e *Engine) Run(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return e.writer.run(ctx, fn)
}

// LockSchema takes an advisory lock on a connection of its own, so that instances starting
// together do not migrate twice.
func (e *Engine) LockSchema(ctx context.Context) (driver.SchemaLock, error) {
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
		l.Release()
		return nil, fmt.Errorf("schema version table: %w", err)
	}
	return l, nil
}

type pgSchema struct{ conn *pgxpool.Conn }

func (l pgSchema) Version(ctx context.Context) (int, error) {
	var v int
	err := l.conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&v)
	return v, err
}

func (l pgSchema) Apply(ctx context.Context, body string, version int) error {
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

func (l pgSchema) Release() {
	// Even when the migration was cancelled: the connection goes back to the pool.
	l.conn.Exec(context.Background(), `SELECT pg_advisory_unlock(7460137)`)
	l.conn.Release()
}

// DropAll drops the tables, with schema_version, and the functions, in one statement.
func (e *Engine) DropAll(ctx context.Context, schema driver.SchemaObjects) error {
	stmt := `DROP TABLE IF EXISTS ` + strings.Join(append(schema.Tables, "schema_version"), ", ") + ` CASCADE`
	for _, f := range schema.Functions {
		stmt += `; DROP FUNCTION IF EXISTS ` + f
	}
	_, err := e.pgx.Exec(ctx, stmt)
	return err
}

// IsUnique reports whether err is a unique violation of the index on table.column.
func (e *Engine) IsUnique(err error, column string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" &&
		strings.Contains(pe.ConstraintName, strings.ReplaceAll(column, ".", "_"))
}

// RecordEvent writes an operator's change: a purchase or a sale is in the feed already (its ledger row is,
// migrations/0005_trade_feed.sql); an operator's change (add, edit, retire,
// grant) is written here, with its kind and whom it concerns, beside the trigger's plain
// "change" row, so that the streams can tell an edited row or a granted budget.
func (e *Engine) RecordEvent(ctx context.Context, tx *sql.Tx, itemID int64, kind string, userID int64) error {
	if kind == "buy" || kind == "sell" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO market_feed (item_id, kind, user_id) VALUES (?, ?, ?)`,
		itemID, kind, userID)
	return err
}

// Sessions keeps sessions in the sessions table, through the sessions' own pool.
func (e *Engine) Sessions() *driver.SessionStore { return e.sessions }

// Limits keeps the counts in limit_events, for every instance.
func (e *Engine) Limits() driver.Limits { return limits{e.pgx} }

// Pools are the statistics of the sessions' pgx pool.
func (e *Engine) Pools() []driver.PoolStats {
	st := e.pgx.Stat()
	return []driver.PoolStats{{Name: "sessions", Acquired: int64(st.AcquiredConns()), Idle: int64(st.IdleConns()),
		Total: int64(st.TotalConns()), EmptyAcquires: st.EmptyAcquireCount()}}
}
