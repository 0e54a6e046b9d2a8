package store

import (
	"database/sql"
	"errors"
	"time"

	"github.com/alexedwards/scs/sqlite3store"
)

// SessionStore keeps scs sessions in the sessions table, through scs/sqlite3store on the writer
// connection for commits, deletes and cleanup. Finds, one per request, use a prepared statement
// on the readers, so loading a session never waits for a trade.
type SessionStore struct {
	*sqlite3store.SQLite3Store
	find *sql.Stmt
}

// Sessions returns the session store; cleanup is how often expired sessions are deleted
// (0: never). Call StopCleanup when done.
func (s *Store) Sessions(cleanup time.Duration) *SessionStore {
	return &SessionStore{
		SQLite3Store: sqlite3store.NewWithCleanupInterval(s.db, cleanup),
		find:         s.hot.session,
	}
}

// Find returns the data of an unexpired session.
func (ss *SessionStore) Find(token string) ([]byte, bool, error) {
	var b []byte
	err := ss.find.QueryRow(token).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}
