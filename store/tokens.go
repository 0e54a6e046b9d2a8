package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// The links a mail carries hold a token: 32 random bytes the handlers make and put in the
// link. The store keeps only the token's SHA-256 (TokenHash), with its purpose, its user, the
// address it is for and its expiry; a token is used once.

// The purposes of a token.
const (
	TokenConfirm = "confirm" // confirms the user's address, while it is still the one sent to
	TokenChange  = "change"  // makes the address sent to the user's address
	TokenReset   = "reset"   // lets its holder choose a new password
)

// ErrTokenInvalid is a token unknown, used, expired, or for an address the user no longer has.
var ErrTokenInvalid = errors.New("store: token expired, used or unknown")

// TokenHash is how the store keeps a token: the hex SHA-256 of its text.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Token is what a token stands for.
type Token struct {
	Hash    string
	Purpose string
	Email   string // the address the token was sent to
	Expires time.Time
}

// issueToken stores t for userID inside tx.
func issueToken(ctx context.Context, tx *sql.Tx, userID int64, t Token) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO mail_tokens (hash, user_id, purpose, email, expires_at) VALUES (?, ?, ?, ?, ?)`,
		t.Hash, userID, t.Purpose, t.Email, millis(t.Expires))
	if err != nil {
		return fmt.Errorf("issue token: %w", err)
	}
	return nil
}

// IssueToken stores t for the user and writes the mails (the one that carries it, and any
// notice that goes with it), in one transaction.
func (s *Store) IssueToken(ctx context.Context, userID int64, t Token, mails ...Mail) error {
	return s.d.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := issueToken(ctx, tx, userID, t); err != nil {
			return err
		}
		for _, m := range mails {
			if err := enqueueMail(ctx, tx, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// RequestReset issues the reset token t to the account that uses t.Email (in any letter case)
// and writes m, which carries it, in one transaction; found is false when no account uses the
// address, and then nothing is written.
func (s *Store) RequestReset(ctx context.Context, t Token, m Mail) (found bool, err error) {
	err = s.d.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE email = ?`, t.Email).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			found = false
			return nil
		}
		if err != nil {
			return fmt.Errorf("find user: %w", err)
		}
		found = true
		if err := issueToken(ctx, tx, id, t); err != nil {
			return err
		}
		return enqueueMail(ctx, tx, m)
	})
	return found, err
}

// TokenUser is the user of a token of purpose that can still be used at now, and the address
// it was sent to; ErrTokenInvalid when there is none.
func (s *Store) TokenUser(ctx context.Context, purpose, hash string, now time.Time) (User, string, error) {
	var (
		id    int64
		email string
	)
	err := s.d.Read().QueryRowContext(ctx, `SELECT user_id, email FROM mail_tokens
		WHERE hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?`, hash, purpose, millis(now)).Scan(&id, &email)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, "", ErrTokenInvalid
	}
	if err != nil {
		return User{}, "", fmt.Errorf("find token: %w", err)
	}
	u, err := s.User(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return User{}, "", ErrTokenInvalid
	}
	return u, email, err
}

// useToken marks a token of one of the purposes used inside tx and returns its user and
// address; ErrTokenInvalid when it cannot be used at now.
func useToken(ctx context.Context, tx *sql.Tx, hash string, now time.Time, purposes ...string) (int64, Token, error) {
	var (
		id int64
		t  Token
	)
	err := tx.QueryRowContext(ctx, `UPDATE mail_tokens SET used_at = ?
		WHERE hash = ? AND used_at IS NULL AND expires_at > ? RETURNING user_id, purpose, email`,
		millis(now), hash, millis(now)).Scan(&id, &t.Purpose, &t.Email)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, t, ErrTokenInvalid
	}
	if err != nil {
		return 0, t, fmt.Errorf("use token: %w", err)
	}
	for _, p := range purposes {
		if p == t.Purpose {
			return id, t, nil
		}
	}
	return 0, t, ErrTokenInvalid // the wrong kind of link: the whole transaction is undone
}

// killTokens ends every unused token of the user for one of the purposes, in one statement.
func killTokens(ctx context.Context, tx *sql.Tx, userID int64, now time.Time, purposes ...string) error {
	args := []any{millis(now), userID}
	for _, p := range purposes {
		args = append(args, p)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE mail_tokens SET used_at = ? WHERE user_id = ? AND used_at IS NULL AND purpose IN (`+placeholders(len(purposes))+`)`,
		args...); err != nil {
		return fmt.Errorf("end tokens: %w", err)
	}
	return nil
}

// ResetPassword uses the reset token whose hash is given: the user's password becomes password,
// every session of the user ends (the session generation moves on), every reset token of the
// user dies, the address the token was sent to counts as confirmed, and notice goes into the
// outbox, all in one transaction. The caller has found the token usable (TokenUser), so that
// the password is hashed only for a token that can be used; the transaction uses it, and a
// token that cannot be used by then (used, expired, unknown) is ErrTokenInvalid.
func (s *Store) ResetPassword(ctx context.Context, hash, password string, notice Mail, now time.Time) (User, error) {
	next, err := s.hashPassword(ctx, password)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	var u User
	err = s.d.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		id, t, err := useToken(ctx, tx, hash, now, TokenReset)
		if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `UPDATE users SET password_hash = ?, session_gen = session_gen + 1,
			email_confirmed = CASE WHEN email = ? THEN TRUE ELSE email_confirmed END
			WHERE id = ? RETURNING id, username, email, budget, role, session_gen, email_confirmed`, string(next), t.Email, id,
		).Scan(&u.ID, &u.Username, &u.Email, &u.Budget, &u.Role, &u.SessionGen, &u.EmailConfirmed)
		if err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		if err := killTokens(ctx, tx, id, now, TokenReset); err != nil {
			return err
		}
		notice.To = u.Email
		return enqueueMail(ctx, tx, notice)
	})
	return u, err
}

// ConfirmEmail uses a confirm or change token. A confirm token marks the user's address
// confirmed, if it is still the one the link was sent to; a change token makes that address the
// user's, confirmed, if no other account has taken it meanwhile (ErrDuplicateEmail), and ends
// the user's other confirm and change tokens. The user is returned as it is afterwards, with
// the token's purpose. A token that cannot be used is found by a read, so that links anyone
// can make up (unknown, used, expired) never take the writer.
func (s *Store) ConfirmEmail(ctx context.Context, hash string, now time.Time) (User, string, error) {
	var (
		u       User
		purpose string
	)
	err := s.d.Read().QueryRowContext(ctx, `SELECT purpose FROM mail_tokens
		WHERE hash = ? AND purpose IN (?, ?) AND used_at IS NULL AND expires_at > ?`,
		hash, TokenConfirm, TokenChange, millis(now)).Scan(&purpose)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, "", ErrTokenInvalid
	}
	if err != nil {
		return User{}, "", fmt.Errorf("find token: %w", err)
	}
	err = s.d.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		id, t, err := useToken(ctx, tx, hash, now, TokenConfirm, TokenChange)
		if err != nil {
			return err
		}
		purpose = t.Purpose
		query := `UPDATE users SET email_confirmed = TRUE WHERE id = ? AND email = ?`
		if t.Purpose == TokenChange {
			query = `UPDATE users SET email = ?, email_confirmed = TRUE WHERE id = ?`
		}
		args := []any{id, t.Email}
		if t.Purpose == TokenChange {
			args = []any{t.Email, id}
		}
		res, err := tx.ExecContext(ctx, query, args...)
		switch {
		case s.d.IsUnique(err, "users.email"):
			return ErrDuplicateEmail
		case err != nil:
			return fmt.Errorf("confirm email: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrTokenInvalid // the address changed since the link was sent
		}
		if t.Purpose == TokenChange {
			if err := killTokens(ctx, tx, id, now, TokenConfirm, TokenChange); err != nil {
				return err
			}
		}
		return tx.QueryRowContext(ctx, `SELECT id, username, email, budget, role, session_gen, email_confirmed FROM users WHERE id = ?`,
			id).Scan(&u.ID, &u.Username, &u.Email, &u.Budget, &u.Role, &u.SessionGen, &u.EmailConfirmed)
	})
	return u, purpose, err
}

// CheckEmailChange checks a change of the user's address to email: the right current password
// (else ErrInvalidCredentials), then an address no account uses (else ErrDuplicateEmail). IssueToken then stores the change token with its mails.
func (s *Store) CheckEmailChange(ctx context.Context, userID int64, current, email string) error {
	var hash string
	err := s.d.Read().QueryRowContext(ctx, `SELECT password_hash FROM users WHERE id = ?`, userID).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("find user: %w", err)
	}
	ok, err := s.passwordMatches(ctx, []byte(hash), current)
	if err != nil {
		return fmt.Errorf("check password: %w", err)
	}
	if !ok {
		return ErrInvalidCredentials
	}
	// Only after the password: a taken address tells the signed-in user nothing a guess of the
	// password (counted like a failed login) has not earned.
	if _, taken, err := takenNames(ctx, s.d.Read(), "", email); err != nil {
		return err
	} else if taken {
		return ErrDuplicateEmail
	}
	return nil
}
