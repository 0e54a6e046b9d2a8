package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"market/store/driver"
)

// StreamSession is what a live stream checks at each ping, in one read: the data of the
// unexpired session token, and the session generation of the account userID. ok is false when
// the session or the account is gone.
func (s *Store) StreamSession(ctx context.Context, token string, userID int64) (data []byte, gen int64, ok bool, err error) {
	err = s.d.Read().QueryRowContext(ctx, `SELECT s.data, u.session_gen FROM sessions s JOIN users u ON u.id = ?
		WHERE s.token = ? AND `+s.d.Dialect().SessionAlive, userID, token).Scan(&data, &gen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("stream session: %w", err)
	}
	return data, gen, true, nil
}

// SessionStore keeps scs sessions in the sessions table; finds may take other connections than
// commits (SQLite: the readers), so that loading a session never waits for a trade.
type SessionStore = driver.SessionStore

// SessionUser is what a session's row says besides its data (see driver.SessionUser): on
// PostgreSQL its load reads the signed-in user and the market version with it.
type SessionUser = driver.SessionUser

// WithSessionUser is ctx carrying su from a session's load to its commit.
func WithSessionUser(ctx context.Context, su *SessionUser) context.Context {
	return driver.WithSessionUser(ctx, su)
}

// SessionUserOf is the SessionUser ctx carries, or nil.
func SessionUserOf(ctx context.Context) *SessionUser { return driver.SessionUserOf(ctx) }

// Sessions returns the session store; expired sessions are deleted by Sweep.
func (s *Store) Sessions() *SessionStore { return s.d.Sessions() }
