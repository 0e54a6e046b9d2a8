package postgres

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"market/store/driver"
)

// pgWriter runs each write in a transaction of its own. PostgreSQL's row locks decide between
// concurrent trades (the store's conditional updates are evaluated again on the row a waiting
// writer finally gets); when it gives up on one with a serialization failure or a deadlock,
// the whole operation runs again, so no user ever hears of it.
type pgWriter struct {
	db      *sql.DB
	commits *driver.CommitClock
	closed  atomic.Bool
}

// pgAttempts bounds the retries of one write.
const pgAttempts = 20

func (w *pgWriter) run(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if w.closed.Load() {
		return driver.ErrClosed
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
// giving up (a commit cut short would leave the caller not knowing whether it wrote), but it
// keeps the caller's deadline: the wait for a connection, a row lock or a hung database ends
// at the request's budget, rolled back, or as an unknown outcome if COMMIT was on its way.
func (w *pgWriter) once(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	ctx, cancel := uncancelled(ctx)
	defer cancel()
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if err := driver.RunOp(ctx, tx, fn); err != nil {
		return err
	}
	start := time.Now()
	if err := tx.Commit(); err != nil {
		return commitError(err)
	}
	w.commits.Committed(time.Since(start))
	return nil
}

func (w *pgWriter) close() { w.closed.Store(true) }

// rebindConnector gives database/sql connections to PostgreSQL that take the store's ?
// placeholders: each ? outside quotes becomes $1, $2...
type rebindConnector struct{ sqldriver.Connector }

func (c rebindConnector) Connect(ctx context.Context) (sqldriver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return rebindConn{conn.(*stdlib.Conn)}, nil
}

type rebindConn struct{ *stdlib.Conn }

func (c rebindConn) Prepare(query string) (sqldriver.Stmt, error) {
	return c.Conn.Prepare(rebind(query))
}

func (c rebindConn) PrepareContext(ctx context.Context, query string) (sqldriver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, rebind(query))
}

func (c rebindConn) ExecContext(ctx context.Context, query string, args []sqldriver.NamedValue) (sqldriver.Result, error) {
	return c.Conn.ExecContext(ctx, rebind(query), args)
}

func (c rebindConn) QueryContext(ctx context.Context, query string, args []sqldriver.NamedValue) (sqldriver.Rows, error) {
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
