package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"market/store/driver"
)

// StreamSessions is what the live streams check at their pings, for many streams in two reads
// whatever their number: the data of each unexpired session among tokens, by token, and the
// session generation of each account among users, by id (a token or an account that is gone is
// not in its map). Keep each list to a few hundred: each entry is a placeholder.
func (s *Store) StreamSessions(ctx context.Context, tokens []string, users []int64) (map[string][]byte, map[int64]int64, error) {
	sessions := make(map[string][]byte, len(tokens))
	gens := make(map[int64]int64, len(users))
	if len(tokens) == 0 {
		return sessions, gens, nil
	}
	in := func(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }
	args := make([]any, 0, max(len(tokens), len(users)))
	for _, t := range tokens {
		args = append(args, t)
	}
	err := s.scanRows(ctx, `SELECT s.token, s.data FROM sessions s WHERE s.token IN (`+in(len(tokens))+`) AND `+
		s.d.Dialect().SessionAlive, args, func(rows *sql.Rows) error {
		var token string
		var data []byte
		err := rows.Scan(&token, &data)
		sessions[token] = data
		return err
	})
	if err != nil || len(users) == 0 {
		return sessions, gens, err
	}
	args = args[:0]
	for _, u := range users {
		args = append(args, u)
	}
	err = s.scanRows(ctx, `SELECT id, session_gen FROM users WHERE id IN (`+in(len(users))+`)`, args, func(rows *sql.Rows) error {
		var id, gen int64
		err := rows.Scan(&id, &gen)
		gens[id] = gen
		return err
	})
	return sessions, gens, err
}

// scanRows runs a read and calls each for each of its rows.
func (s *Store) scanRows(ctx context.Context, query string, args []any, each func(*sql.Rows) error) error {
	rows, err := s.d.Read().QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("stream sessions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return fmt.Errorf("stream sessions: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("stream sessions: %w", err)
	}
	return nil
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
