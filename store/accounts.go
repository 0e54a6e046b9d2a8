package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// nowText is the time as the database's created_at columns write it.
func nowText() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") }

// SetRole makes the user named (in any letter case) an admin or a plain user; the command line
// does it, and the admin log says so. Refusals: ErrNotFound, ErrBadRole.
func (s *Store) SetRole(ctx context.Context, username, role string) (User, error) {
	if role != RoleUser && role != RoleAdmin {
		return User{}, ErrBadRole
	}
	var u User
	err := s.adminWrite(ctx, func(ctx context.Context, tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`,
			username).Scan(userDest(&u)...)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("find user: %w", err)
		}
		if u.Role == role {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET role = ? WHERE id = ?`, role, u.ID); err != nil {
			return fmt.Errorf("set role: %w", err)
		}
		before := u.Role
		u.Role = role
		return logAdmin(ctx, tx, 0, "set role", "user "+u.Username, before, role)
	})
	return u, err
}

// Grant changes a user's budget by amount (negative takes money away), with a ledger row of
// kind grant and a line in the admin log, in one transaction. Refusals: ErrNotFound, and
// ErrInsufficientFunds when the budget would go below zero. The user is returned as the
// grant left it, or as the refusal found it.
func (s *Store) Grant(ctx context.Context, adminID, userID, amount int64) (User, error) {
	var u User
	err := s.adminWrite(ctx, func(ctx context.Context, tx *sql.Tx) error {
		read := func() error {
			err := tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`,
				userID).Scan(userDest(&u)...)
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE users SET budget = budget + ? WHERE id = ? AND budget + ? >= 0`,
			amount, userID, amount)
		if err != nil {
			return fmt.Errorf("grant: %w", err)
		}
		if err := read(); err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrInsufficientFunds
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO trades (user_id, kind, amount) VALUES (?, 'grant', ?)`, userID, amount); err != nil {
			return fmt.Errorf("record grant: %w", err)
		}
		// An event of no item, so that the user's open pages show the new budget.
		if err := s.recordEvent(ctx, tx, 0, "grant", userID); err != nil {
			return err
		}
		return logAdmin(ctx, tx, adminID, "grant", "user "+u.Username,
			fmt.Sprintf("budget %d", u.Budget-amount), fmt.Sprintf("budget %d", u.Budget))
	})
	return u, err
}

// ChangePassword sets a new password for the user when current is right, and moves the
// session generation on, ending every session of the user (the caller keeps its own by taking
// the new generation, which it returns), and every reset token of the user dies. A wrong
// current password is ErrInvalidCredentials.
func (s *Store) ChangePassword(ctx context.Context, userID int64, current, password string) (int64, error) {
	var hash string
	err := s.d.Read().QueryRowContext(ctx, `SELECT password_hash FROM users WHERE id = ?`, userID).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("find user: %w", err)
	}
	ok, err := s.passwordMatches(ctx, []byte(hash), current) // hashing runs in slots (hashing.go)
	if err != nil {
		return 0, fmt.Errorf("check password: %w", err)
	}
	if !ok {
		return 0, ErrInvalidCredentials
	}
	next, err := s.hashPassword(ctx, password)
	if err != nil {
		return 0, fmt.Errorf("hash password: %w", err)
	}
	var gen int64
	err = s.d.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// Only over the hash that was checked: a change that raced this one wins, and this one
		// is told its current password is no longer right.
		err := tx.QueryRowContext(ctx, `UPDATE users SET password_hash = ?, session_gen = session_gen + 1
			WHERE id = ? AND password_hash = ? RETURNING session_gen`, string(next), userID, hash).Scan(&gen)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrInvalidCredentials
		}
		if err != nil {
			return err
		}
		return killTokens(ctx, tx, userID, time.Now(), TokenReset) // a new password: no reset link works
	})
	return gen, err
}

// EndSessions moves the user's session generation on, ending every session that started
// under an older one, and returns the new generation.
func (s *Store) EndSessions(ctx context.Context, userID int64) (int64, error) {
	var gen int64
	err := s.d.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE users SET session_gen = session_gen + 1 WHERE id = ? RETURNING session_gen`,
			userID).Scan(&gen)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		return err
	})
	return gen, err
}
