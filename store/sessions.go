package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// StreamSession is what a live stream checks at each ping, in one read: the data of the
// unexpired session token, and the session generation of the account userID. ok is false when
// the session or the account is gone.
func (s *Store) StreamSession(ctx context.Context, token string, userID int64) (data []byte, gen int64, ok bool, err error) {
	err = s.read.QueryRowContext(ctx, `SELECT s.data, u.session_gen FROM sessions s JOIN users u ON u.id = ?
		WHERE s.token = ? AND `+s.eng.dialect().sessionAlive, userID, token).Scan(&data, &gen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("stream session: %w", err)
	}
	return data, gen, true, nil
}

// SessionStore keeps scs sessions in the sessions table. On SQLite commits, deletes and cleanup
// go through the writer connection, finds (one per request) through the readers, so that
// loading a session never waits for a trade.
type SessionStore struct {
	sessionBackend
	finder sessionBackend
}

// sessionBackend is what scs's SQLite and PostgreSQL stores both do.
type sessionBackend interface {
	Find(token string) ([]byte, bool, error)
	Commit(token string, b []byte, expiry time.Time) error
	Delete(token string) error
	StopCleanup()
}

// Sessions returns the session store; cleanup is how often expired sessions are deleted
// (0: never). Call StopCleanup when done.
func (s *Store) Sessions(cleanup time.Duration) *SessionStore { return s.eng.sessions(cleanup) }

// Find returns the data of an unexpired session.
func (ss *SessionStore) Find(token string) ([]byte, bool, error) {
	return ss.finder.Find(token)
}
