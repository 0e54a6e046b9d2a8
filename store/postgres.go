package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"golang.org/x/crypto/bcrypt"
)

// This file is what PostgreSQL does differently; the use cases are shared. The store's SQL is
// written once, with ? placeholders (rebound to $n here) and SQLite's COLLATE NOCASE (an ICU
// collation of that name here, see migrations/postgres). Writes are one transaction each, retried
// when PostgreSQL reports a serialization failure or a deadlock, instead of SQLite's group
// commits; the market version comes from the same catalogue row, and a listener hears every
// instance's changes (Changed).

//go:embed migrations/postgres/*.sql
var pgMigrations embed.FS

// IsPostgres reports whether a database setting names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// postgres is the state only the PostgreSQL engine has.
type postgres struct {
	pool *pgxpool.Pool
	url  string // without the password, for logs

	mu       sync.Mutex
	changed  chan struct{} // closed when the market version moves; then replaced
	listener bool          // LISTEN is in place: changes are heard
	stop     context.CancelFunc
	done     chan struct{}
}

// maxConns bounds the connections of one instance's use cases (the sessions have 8 more).
const maxConns = 24

// openPostgres connects to the database at dsn, applies pending migrations and starts the
// listener.
func openPostgres(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = 8 // sessions only: one short query per request
	}
	// A confirmed trade is committed: whatever the server's default, wait for the WAL flush.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
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
	db := sql.OpenDB(rebindConnector{stdlib.GetConnector(*cfg.ConnConfig)})
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pg := &postgres{pool: pool, url: redact(dsn), changed: make(chan struct{})}
	s := &Store{db: db, read: db, path: pg.url, cost: opts.BcryptCost, pg: pg, stats: &stats{}}
	if s.cost == 0 {
		s.cost = 12
	}
	if err := s.migratePostgres(ctx); err != nil {
		db.Close()
		pool.Close()
		return nil, err
	}
	s.writer = &pgWriter{db: db, stats: s.stats}
	s.dummyHash, err = bcrypt.GenerateFromPassword([]byte("not a real password"), s.cost)
	if err != nil {
		db.Close()
		pool.Close()
		return nil, fmt.Errorf("dummy hash: %w", err)
	}
	lctx, stop := context.WithCancel(context.Background())
	pg.stop, pg.done = stop, make(chan struct{})
	go pg.listen(lctx, cfg.ConnConfig)
	// A store that answers before its listener is in place would not hear the first trades.
	wait := time.NewTimer(5 * time.Second)
	defer wait.Stop()
	for !s.Listening() {
		select {
		case <-pg.changedChan():
		case <-wait.C:
			return s, nil // down for now: Changed polls until it is up
		}
	}
	return s, nil
}

func (pg *postgres) close() {
	pg.stop()
	<-pg.done
	// The pool waits for every connection to come back; one a caller leaked (a transaction never
	// ended) must not hold the process on its way out.
	closed := make(chan struct{})
	go func() { pg.pool.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
	}
}

// Pool is the PostgreSQL connection pool (nil on SQLite), for sessions and pool statistics.
func (s *Store) Pool() *pgxpool.Pool {
	if s.pg == nil {
		return nil
	}
	return s.pg.pool
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

// migratePostgres applies every embedded PostgreSQL migration newer than schema_version, each
// in its own transaction with the new version number. An advisory lock keeps instances that
// start together from migrating twice.
func (s *Store) migratePostgres(ctx context.Context) error {
	names, err := fs.Glob(pgMigrations, "migrations/postgres/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	conn, err := s.pg.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(7460137)`); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7460137)`)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
		return fmt.Errorf("schema version table: %w", err)
	}
	var current int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	for _, name := range names {
		version, err := strconv.Atoi(strings.SplitN(path.Base(name), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: bad name", name)
		}
		if version <= current {
			continue
		}
		body, err := pgMigrations.ReadFile(name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM schema_version`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, version)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
		current = version
	}
	return nil
}

// resetPostgres drops every table and migrates again; the version goes on from where it was.
func (s *Store) resetPostgres(ctx context.Context) error {
	version, _ := s.Version(ctx)
	if _, err := s.pg.pool.Exec(ctx, `DROP TABLE IF EXISTS trades, items, users, sessions, catalogue, market_events, market_events_horizon,
		limit_events, admin_log, schema_version CASCADE; DROP FUNCTION IF EXISTS market_changed()`); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	if err := s.migratePostgres(ctx); err != nil {
		return err
	}
	if _, err := s.pg.pool.Exec(ctx, `UPDATE catalogue SET version = greatest(version, $1) + 1`, version); err != nil {
		return fmt.Errorf("reset: market version: %w", err)
	}
	// The events of the old market are gone: a stream from before the reset gets a refresh.
	if _, err := s.pg.pool.Exec(ctx, `UPDATE market_events_horizon SET pruned_through = (SELECT version FROM catalogue)`); err != nil {
		return fmt.Errorf("reset: events horizon: %w", err)
	}
	return nil
}

// pgWriter runs each write in a transaction of its own. PostgreSQL's row locks decide between
// concurrent trades (the store's conditional updates are evaluated again on the row a waiting
// writer finally gets); when it gives up on one with a serialization failure or a deadlock,
// the whole operation runs again, so no user ever hears of it.
type pgWriter struct {
	db     *sql.DB
	stats  *stats
	closed atomic.Bool
}

// pgAttempts bounds the retries of one write.
const pgAttempts = 20

func (w *pgWriter) run(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if w.closed.Load() {
		return ErrClosed
	}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := w.once(ctx, fn)
		if !retryable(err) || attempt == pgAttempts {
			return err
		}
		time.Sleep(time.Duration(rand.IntN(attempt*2)+1) * time.Millisecond)
	}
}

// once runs fn in one transaction. Once begun, the transaction does not hear of the caller
// giving up: a commit cut short would leave the caller not knowing whether it traded.
func (w *pgWriter) once(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	ctx = context.WithoutCancel(ctx)
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if err := runOp(ctx, tx, fn); err != nil {
		return err
	}
	start := time.Now()
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	w.stats.committed(time.Since(start))
	return nil
}

func (w *pgWriter) close() { w.closed.Store(true) }

// retryable reports whether PostgreSQL asks for the transaction to be tried again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// isPgUnique reports whether err is a unique violation of the index on table.column.
func isPgUnique(err error, column string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" &&
		strings.Contains(pe.ConstraintName, strings.ReplaceAll(column, ".", "_"))
}

// listen keeps a connection LISTENing to the version trigger's notifications and wakes Changed
// on each. When the connection is lost it says so (Changed wakes, so that waiters read the
// version again), and connects again after a second.
func (pg *postgres) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	defer close(pg.done)
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			if _, err = conn.Exec(ctx, `LISTEN market`); err == nil {
				pg.wake(true) // what was missed while down: read the version again
				for err == nil {
					_, err = conn.WaitForNotification(ctx)
					if err == nil {
						pg.wake(true)
					}
				}
			}
			conn.Close(context.Background())
		}
		pg.wake(false)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// wake closes the current Changed channel and records whether the listener is up.
func (pg *postgres) wake(up bool) {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if !up && !pg.listener {
		return
	}
	pg.listener = up
	close(pg.changed)
	pg.changed = make(chan struct{})
}

// Listening reports whether changes made by other instances are heard as they commit (always
// on SQLite, whose Changed watches the file itself).
func (s *Store) Listening() bool {
	if s.pg == nil {
		return true
	}
	s.pg.mu.Lock()
	defer s.pg.mu.Unlock()
	return s.pg.listener
}

// changedChan is Changed on PostgreSQL: the listener's doorbell, or, while the listener is
// down, a poll: the channel closes after ChangePoll, and the waiter reads the version again.
func (pg *postgres) changedChan() <-chan struct{} {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if !pg.listener {
		poll := make(chan struct{})
		time.AfterFunc(ChangePoll, func() { close(poll) })
		return poll
	}
	return pg.changed
}

// pgSessionStore keeps sessions in the sessions table through scs's pgx store.
func (s *Store) pgSessionStore(cleanup time.Duration) sessionBackend {
	return pgxstore.NewWithCleanupInterval(s.pg.pool, cleanup)
}

// pgChecks are Check's queries in PostgreSQL's dialect (it has its own integrity: no check of
// pages here).
var pgChecks = []string{
	`SELECT format('user %s: budget %s but ledger sums to %s', u.username, u.budget, coalesce(sum(t.amount), 0))
	 FROM users u LEFT JOIN trades t ON t.user_id = u.id
	 GROUP BY u.id HAVING u.budget <> coalesce(sum(t.amount), 0)`,
	`SELECT format('user %s: negative budget %s', username, budget) FROM users WHERE budget < 0`,
	`WITH owners AS (
	   SELECT i.name, i.owner_id, (SELECT CASE t.kind WHEN 'buy' THEN t.user_id END FROM trades t
	                               WHERE t.item_id = i.id ORDER BY t.id DESC LIMIT 1) AS traded
	   FROM items i)
	 SELECT format('item %s: owner %s but its last trade says %s', name,
	               coalesce(owner_id::text, 'market'), coalesce(traded::text, 'market'))
	 FROM owners WHERE owner_id IS DISTINCT FROM traded`,
}

// rebindConnector gives database/sql connections to PostgreSQL that take the store's ?
// placeholders: each ? outside quotes becomes $1, $2...
type rebindConnector struct{ driver.Connector }

func (c rebindConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return rebindConn{conn.(*stdlib.Conn)}, nil
}

type rebindConn struct{ *stdlib.Conn }

func (c rebindConn) Prepare(query string) (driver.Stmt, error) {
	return c.Conn.Prepare(rebind(query))
}

func (c rebindConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, rebind(query))
}

func (c rebindConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, rebind(query), args)
}

func (c rebindConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, rebind(query), args)
}

// rebind turns ? placeholders into $n, leaving quoted text alone.
func rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
