package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"market/store/driver"
)

// User is an account (see driver.User).
type User = driver.User

// CreateUser adds an account with the starting budget and its opening grant in the ledger.
// A username or email already taken (in any letter case) gives ErrDuplicateUsername or
// ErrDuplicateEmail (errors.Is holds for each when both are), found by a cheap read before the
// password is hashed: a sign-up that cannot succeed costs no hash. The database's unique
// indexes still decide when two sign-ups race. Hashing waits for a slot (ErrBusy).
func (s *Store) CreateUser(ctx context.Context, username, email, password string) (User, error) {
	if err := s.taken(ctx, username, email); err != nil {
		return User{}, err
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	var id int64
	err = s.d.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// A savepoint of its own: on PostgreSQL a failed statement spoils the transaction.
		if _, err := tx.ExecContext(ctx, `SAVEPOINT insert_user`); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx,
			`INSERT INTO users (username, email, password_hash, budget) VALUES (?, ?, ?, ?) RETURNING id`,
			username, email, string(hash), StartingBudget).Scan(&id)
		if err != nil {
			if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO insert_user`); rerr != nil {
				return rerr
			}
		}
		switch {
		case s.d.IsUnique(err, "users.username"), s.d.IsUnique(err, "users.email"):
			// The constraint said no; now, in the same transaction, name every clash.
			name, mail, terr := takenNames(ctx, tx, username, email)
			if terr != nil {
				return terr
			}
			var errs []error
			if name || !mail && s.d.IsUnique(err, "users.username") {
				errs = append(errs, ErrDuplicateUsername)
			}
			if mail || !name && s.d.IsUnique(err, "users.email") {
				errs = append(errs, ErrDuplicateEmail)
			}
			return errors.Join(errs...)
		case err != nil:
			return fmt.Errorf("insert user: %w", err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO trades (user_id, kind, amount) VALUES (?, 'grant', ?)`, id, StartingBudget); err != nil {
			return fmt.Errorf("opening grant: %w", err)
		}
		return nil
	})
	if err != nil {
		return User{}, err
	}
	return User{ID: id, Username: username, Email: email, Budget: StartingBudget, Role: RoleUser}, nil
}

// Authenticate returns the user whose username (in any letter case) and password match.
// An unknown username and a wrong password both give ErrInvalidCredentials, after the same
// bcrypt work, which waits for a hashing slot (ErrBusy).
func (s *Store) Authenticate(ctx context.Context, username, password string) (User, error) {
	var (
		u    User
		hash string
	)
	err := s.d.Read().QueryRowContext(ctx,
		`SELECT `+userColumns+`, password_hash FROM users WHERE username = ?`, username,
	).Scan(append(userDest(&u), &hash)...)
	known := err == nil
	if errors.Is(err, sql.ErrNoRows) {
		hash = string(s.dummyHash)
	} else if err != nil {
		return User{}, fmt.Errorf("find user: %w", err)
	}
	ok, err := s.passwordMatches(ctx, []byte(hash), password)
	if err != nil {
		return User{}, fmt.Errorf("check password: %w", err)
	}
	if !ok || !known {
		return User{}, ErrInvalidCredentials
	}
	return u, nil
}

// taken reports a username or email already in use, as CreateUser does, or nil.
func (s *Store) taken(ctx context.Context, username, email string) error {
	name, mail, err := takenNames(ctx, s.d.Read(), username, email)
	if err != nil {
		return err
	}
	var errs []error
	if name {
		errs = append(errs, ErrDuplicateUsername)
	}
	if mail {
		errs = append(errs, ErrDuplicateEmail)
	}
	return errors.Join(errs...)
}

// userColumns are the columns of a User, in the order userDest scans them: every read of an
// account reads them all.
const userColumns = "id, username, email, budget, role, session_gen, email_confirmed"

// userDest is where a row's userColumns go.
func userDest(u *User) []any {
	return []any{&u.ID, &u.Username, &u.Email, &u.Budget, &u.Role, &u.SessionGen, &u.EmailConfirmed}
}

// User returns the account with the given id, or ErrNotFound.
func (s *Store) User(ctx context.Context, id int64) (User, error) {
	var u User
	err := s.d.Read().QueryRowContext(ctx,
		`SELECT `+userColumns+` FROM users WHERE id = ?`, id,
	).Scan(userDest(&u)...)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("find user %d: %w", id, err)
	}
	return u, nil
}

// VersionedUser is Version and User in one read: the market version, and the account with the
// given id as of it (ErrNotFound, with the version, when there is none). A request's first read.
func (s *Store) VersionedUser(ctx context.Context, id int64) (int64, User, error) {
	return s.d.VersionedUser(ctx, s.d.Read(), id)
}

// Users lists every account by id.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.d.Read().QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var users []User
	for rows.Next() {
		var u User
		if err := rows.Scan(userDest(&u)...); err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	return users, rows.Err()
}

// takenNames reports whether the username and the email are in use, compared as the unique
// indexes compare them.
func takenNames(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, username, email string) (name, mail bool, err error) {
	err = q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE username = ?),
	       EXISTS (SELECT 1 FROM users WHERE email = ?)`, username, email).Scan(&name, &mail)
	if err != nil {
		return false, false, fmt.Errorf("find the taken names: %w", err)
	}
	return name, mail, nil
}
