package store

import (
	"time"
)

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
