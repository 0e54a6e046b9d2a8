package store

import (
	"context"
	"database/sql"
	"fmt"

	"market/store/driver"
)

// CopyStats says what CopyTo moved.
type CopyStats struct {
	Users, Items, Trades, AdminLog, Sessions, Pictures int
}

// CopyTo moves this (SQLite) market into dst, an empty PostgreSQL market, in one transaction:
// users with their password hashes and roles, items with their pictures, the ledger with its ids
// and times, the admin log, and the sessions when asked (users stay signed in). Ids are kept, and
// dst's id sequences and market version go on from beyond them. Run Check on dst afterwards.
func (s *Store) CopyTo(ctx context.Context, dst *Store, sessions bool) (CopyStats, error) {
	var st CopyStats
	if !s.d.Copy().Source || !dst.d.Copy().Target {
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
	err = dst.d.Load(ctx, func(load driver.LoadFunc) error {
		for _, t := range copyTables(&st, sessions, s.d.Dialect()) {
			if err := t.copy(ctx, src, load); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return CopyStats{}, fmt.Errorf("copy: %w", err)
	}
	return st, nil
}

// mustBeEmpty refuses a target that holds users, items or trades.
func (s *Store) mustBeEmpty(ctx context.Context) error {
	var n int
	if err := s.d.Read().QueryRowContext(ctx, `SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM items) +
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

func copyTables(st *CopyStats, sessions bool, source driver.Dialect) []copyTable {
	tables := []copyTable{
		{"users", []string{"id", "username", "email", "password_hash", "budget", "role", "session_gen", "email_confirmed"},
			`SELECT id, username, email, password_hash, budget, role, session_gen, email_confirmed FROM users ORDER BY id`,
			boolColumn(7), &st.Users},
		{"items", []string{"id", "name", "price", "barcode", "description", "owner_id", "retired_at"},
			`SELECT id, name, price, barcode, description, owner_id, retired_at FROM items ORDER BY id`, nil, &st.Items},
		{"pictures", []string{"item_id", "hash", "list", "page"},
			`SELECT item_id, hash, list, page FROM pictures ORDER BY item_id`, nil, &st.Pictures},
		// No transaction id: the copied trades are not in the target's change feed.
		{"trades", []string{"id", "user_id", "item_id", "kind", "amount", "created_at", "xid"},
			`SELECT id, user_id, item_id, kind, amount, created_at, NULL FROM trades ORDER BY id`, nil, &st.Trades},
		{"admin_log", []string{"id", "admin_id", "action", "subject", "old_value", "new_value", "created_at"},
			`SELECT id, admin_id, action, subject, old_value, new_value, created_at FROM admin_log ORDER BY id`, nil, &st.AdminLog},
	}
	if sessions {
		tables = append(tables, copyTable{"sessions", []string{"token", "data", "expiry"},
			source.Sessions, func(v []any) (err error) {
				v[2], err = source.SessionExpiry(v[2])
				return err
			}, &st.Sessions})
	}
	return tables
}

// boolColumn turns column i into a boolean: a source that keeps it as 0 or 1 gives an integer.
func boolColumn(i int) func([]any) error {
	return func(v []any) error {
		switch b := v[i].(type) {
		case bool:
		case int64:
			v[i] = b != 0
		default:
			return fmt.Errorf("column %d: %v is not a boolean", i, v[i])
		}
		return nil
	}
}

// copy reads the whole table from src and loads it into the target.
func (t copyTable) copy(ctx context.Context, src *sql.Tx, load driver.LoadFunc) error {
	data, err := readRows(ctx, src, t.query, t.conv)
	if err != nil {
		return fmt.Errorf("read %s: %w", t.name, err)
	}
	if err := load(t.name, t.cols, data); err != nil {
		return fmt.Errorf("write %s: %w", t.name, err)
	}
	*t.count = len(data)
	return nil
}

// readRows reads a whole query as rows to load; conv adjusts one row.
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
