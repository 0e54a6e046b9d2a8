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
	withUser    UserRead            // nil: the engine reads a session's user apart
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

// UserRead reads an unexpired session's data and, in the same statement, fills su with the
// user its row names and the market version (sql.ErrNoRows: no such session).
type UserRead func(ctx context.Context, q SessionDB, token string, su *SessionUser) ([]byte, error)

// ReadUserWith makes the store read a session's user with the session (see SessionUser), by
// read: an engine far from the application saves the round trip.
func (ss *SessionStore) ReadUserWith(read UserRead) { ss.withUser = read }

// SessionUser is what a session's row says besides its data, carried by the request's context
// (WithSessionUser) from the session's load to its commit. UserID is the user the row names: a
// load fills it, and a commit writes it (its caller sets it from the session's data). An engine
// that reads the user with the session (ReadUserWith) also fills the rest.
type SessionUser struct {
	UserID  int64 // 0: none, or a row saved before the column was
	Read    bool  // the load read User (or Err) and Version along
	Version int64 // the market version the load saw (see Driver.Position)
	User    User
	Err     error // ErrNotFound: the user the row names is gone
}

type sessionUserKey struct{}

// WithSessionUser is ctx carrying su, for the session's load and commit.
func WithSessionUser(ctx context.Context, su *SessionUser) context.Context {
	return context.WithValue(ctx, sessionUserKey{}, su)
}

// SessionUserOf is the SessionUser ctx carries, or nil.
func SessionUserOf(ctx context.Context) *SessionUser {
	su, _ := ctx.Value(sessionUserKey{}).(*SessionUser)
	return su
}

// FindCtx returns the data of an unexpired session; found is false when there is none. When
// ctx carries a SessionUser and the engine reads users with sessions, it fills that too.
func (ss *SessionStore) FindCtx(ctx context.Context, token string) (b []byte, found bool, err error) {
	if su := SessionUserOf(ctx); su != nil && ss.withUser != nil {
		*su = SessionUser{}
		b, err = ss.withUser(ctx, ss.read, token, su)
	} else {
		err = ss.read.QueryRowContext(ctx, `SELECT s.data FROM sessions s WHERE s.token = $1 AND `+ss.alive, token).Scan(&b)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// CommitCtx saves a session's data until expiry, with the user id of the SessionUser ctx
// carries (none without one).
func (ss *SessionStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	var userID any
	if su := SessionUserOf(ctx); su != nil && su.UserID != 0 {
		userID = su.UserID
	}
	_, err := ss.write.ExecContext(ctx, `INSERT INTO sessions (token, data, expiry, user_id) VALUES ($1, $2, `+ss.expiry+`, $4)
		ON CONFLICT (token) DO UPDATE SET data = excluded.data, expiry = excluded.expiry, user_id = excluded.user_id`,
		token, b, ss.expiryArg(expiry), userID)
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

// Commit is CommitCtx without a context.
func (ss *SessionStore) Commit(token string, b []byte, expiry time.Time) error {
	return ss.CommitCtx(context.Background(), token, b, expiry)
}

// Delete is DeleteCtx without a context.
func (ss *SessionStore) Delete(token string) error { return ss.DeleteCtx(context.Background(), token) }
