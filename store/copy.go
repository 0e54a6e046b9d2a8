package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// CopyStats says what CopyTo moved.
type CopyStats struct {
	Users, Items, Trades, AdminLog, Sessions int
}

// CopyTo moves this (SQLite) market into dst, an empty PostgreSQL market, in one transaction:
// users with their password hashes and roles, items, the ledger with its ids and times, the admin
// log, and the sessions when asked (users stay signed in). Ids are kept, and dst's id sequences
// and market version go on from beyond them. Run Check on dst afterwards.
func (s *Store) CopyTo(ctx context.Context, dst *Store, sessions bool) (CopyStats, error) {
	var st CopyStats
	to := dst.Pool() // CopyFrom is pgx's
	if s.Pool() != nil || to == nil {
		return st, fmt.Errorf("copy: from SQLite to PostgreSQL only")
	}
	if err := dst.mustBeEmpty(ctx); err != nil {
		return st, err
	}
	src, err := s.snapshot(ctx) // one state of the source
	if err != nil {
		return st, err
	}
	defer src.Rollback()
	err = pgx.BeginFunc(ctx, to, func(tx pgx.Tx) error {
		for _, t := range copyTables(&st, sessions) {
			if err := t.copy(ctx, src, tx); err != nil {
				return err
			}
		}
		return goOnFrom(ctx, tx)
	})
	if err != nil {
		return CopyStats{}, fmt.Errorf("copy: %w", err)
	}
	return st, nil
}

// mustBeEmpty refuses a target that holds users, items or trades.
func (s *Store) mustBeEmpty(ctx context.Context) error {
	var n int
	if err := s.read.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM items) +
		(SELECT count(*) FROM trades)`).Scan(&n); err != nil {
		return fmt.Errorf("copy: target: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("copy: the target database is not empty (%d rows in users, items and trades)", n)
	}
	return nil
}

// copyTable is one table to copy: the source query gives its columns in order, conv (if any)
// adjusts each row, and count receives how many rows were copied.
type copyTable struct {
	name  string
	cols  []string
	query string
	conv  func([]any) error
	count *int
}

func copyTables(st *CopyStats, sessions bool) []copyTable {
	tables := []copyTable{
		{"users", []string{"id", "username", "email", "password_hash", "budget", "role", "session_gen", "email_confirmed"},
			`SELECT id, username, email, password_hash, budget, role, session_gen, email_confirmed FROM users ORDER BY id`,
			sqliteBool(7), &st.Users},
		{"items", []string{"id", "name", "price", "barcode", "description", "owner_id", "retired_at"},
			`SELECT id, name, price, barcode, description, owner_id, retired_at FROM items ORDER BY id`, nil, &st.Items},
		// No transaction id: the copied trades are not in the target's change feed.
		{"trades", []string{"id", "user_id", "item_id", "kind", "amount", "created_at", "xid"},
			`SELECT id, user_id, item_id, kind, amount, created_at, NULL FROM trades ORDER BY id`, nil, &st.Trades},
		{"admin_log", []string{"id", "admin_id", "action", "subject", "old_value", "new_value", "created_at"},
			`SELECT id, admin_id, action, subject, old_value, new_value, created_at FROM admin_log ORDER BY id`, nil, &st.AdminLog},
	}
	if sessions {
		tables = append(tables, copyTable{"sessions", []string{"token", "data", "expiry"},
			`SELECT token, data, expiry FROM sessions WHERE expiry > julianday('now')`, julianExpiry, &st.Sessions})
	}
	return tables
}

// sqliteBool turns column i from SQLite's 0 or 1 into PostgreSQL's boolean.
func sqliteBool(i int) func([]any) error {
	return func(v []any) error {
		n, ok := v[i].(int64)
		if !ok {
			return fmt.Errorf("column %d: %v is not 0 or 1", i, v[i])
		}
		v[i] = n != 0
		return nil
	}
}

// julianExpiry turns a session's expiry from SQLite's Julian day into PostgreSQL's timestamp.
func julianExpiry(v []any) error {
	jd, ok := v[2].(float64)
	if !ok {
		return fmt.Errorf("session expiry %v is not a Julian day", v[2])
	}
	sec, frac := math.Modf((jd - 2440587.5) * 86400)
	v[2] = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}

// copy reads the whole table from src and writes it into tx.
func (t copyTable) copy(ctx context.Context, src *sql.Tx, tx pgx.Tx) error {
	data, err := readRows(ctx, src, t.query, t.conv)
	if err != nil {
		return fmt.Errorf("read %s: %w", t.name, err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.cols, pgx.CopyFromRows(data)); err != nil {
		return fmt.Errorf("write %s: %w", t.name, err)
	}
	*t.count = len(data)
	return nil
}

// readRows reads a whole query as CopyFrom rows; conv adjusts one row.
func readRows(ctx context.Context, src *sql.Tx, query string, conv func([]any) error) ([][]any, error) {
	r, err := src.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cols, _ := r.Columns()
	var out [][]any
	for r.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			return nil, err
		}
		if conv != nil {
			if err := conv(vals); err != nil {
				return nil, err
			}
		}
		out = append(out, vals)
	}
	return out, r.Err()
}

// goOnFrom moves the target's id sequences beyond the copied ids. Its market versions are past
// the source's already: a PostgreSQL version carries the database's epoch, rolled when it was
// created, above every SQLite version; and the events are not copied, so a live stream from
// before the copy gets a refresh.
func goOnFrom(ctx context.Context, tx pgx.Tx) error {
	for _, t := range []string{"users", "items", "trades", "admin_log"} {
		if _, err := tx.Exec(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%s', 'id'),
			(SELECT coalesce(max(id), 0) + 1 FROM %[1]s), false)`, t)); err != nil {
			return fmt.Errorf("sequence of %s: %w", t, err)
		}
	}
	return nil
}
