package driver

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// SessionStore keeps scs sessions in the sessions table. Every call takes its request's
// context (scs's CtxStore), so that a session read or written while the database hangs ends
// with the request's budget instead of waiting as long as the database. Finds go through read,
// commits and deletes through write: on SQLite the readers and the writer connection, so that
// loading a session never waits for a trade.
type SessionStore struct {
	write, read SessionDB
	alive       string              // SQL: the session s has not expired
	expiry      string              // SQL: the third parameter as the expiry column keeps it
	expiryArg   func(time.Time) any // the expiry as that parameter
}

// SessionDB is what the session store needs of a connection pool.
type SessionDB interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// NewSessionStore is the session store of an engine whose dialect is d.
func NewSessionStore(write, read SessionDB, d Dialect) *SessionStore {
	return &SessionStore{write: write, read: read, alive: d.SessionAlive, expiry: d.SessionExpiryParam, expiryArg: d.SessionExpiryArg}
}

// FindCtx returns the data of an unexpired session; found is false when there is none.
func (ss *SessionStore) FindCtx(ctx context.Context, token string) (b []byte, found bool, err error) {
	err = ss.read.QueryRowContext(ctx, `SELECT s.data FROM sessions s WHERE s.token = $1 AND `+ss.alive, token).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// CommitCtx saves a session's data until expiry.
func (ss *SessionStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	_, err := ss.write.ExecContext(ctx, `INSERT INTO sessions (token, data, expiry) VALUES ($1, $2, `+ss.expiry+`)
		ON CONFLICT (token) DO UPDATE SET data = excluded.data, expiry = excluded.expiry`, token, b, ss.expiryArg(expiry))
	return err
}

// DeleteCtx deletes a session.
func (ss *SessionStore) DeleteCtx(ctx context.Context, token string) error {
	_, err := ss.write.ExecContext(ctx, `DELETE FROM sessions WHERE token = $1`, token)
	return err
}

// Find is FindCtx without a context (as Commit and Delete are CommitCtx and DeleteCtx), for
// scs's other callers.
func (ss *SessionStore) Find(token string) ([]byte, bool, error) {
	return ss.FindCtx(context.Background(), token)
}

func (ss *SessionStore) Commit(token string, b []byte, expiry time.Time) error {
	return ss.CommitCtx(context.Background(), token, b, expiry)
}

func (ss *SessionStore) Delete(token string) error { return ss.DeleteCtx(context.Background(), token) }
