package store

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// CopyStats says what CopyTo moved.
type CopyStats struct {
	Users, Items, Trades, Sessions int
}

// CopyTo moves this (SQLite) market into dst, an empty PostgreSQL market, in one transaction:
// users with their password hashes, items, the ledger with its ids and times, and the sessions
// when asked (users stay signed in). Ids are kept, and dst's id sequences and market version
// go on from beyond them. Run Check on dst afterwards.
func (s *Store) CopyTo(ctx context.Context, dst *Store, sessions bool) (CopyStats, error) {
	var st CopyStats
	if s.pg != nil || dst.pg == nil {
		return st, fmt.Errorf("copy: from SQLite to PostgreSQL only")
	}
	var n int
	if err := dst.read.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM items) +
		(SELECT count(*) FROM trades)`).Scan(&n); err != nil {
		return st, fmt.Errorf("copy: target: %w", err)
	}
	if n > 0 {
		return st, fmt.Errorf("copy: the target database is not empty (%d rows in users, items and trades)", n)
	}
	src, err := s.snapshot(ctx) // one state of the source, its version included
	if err != nil {
		return st, err
	}
	defer src.Rollback()
	version, err := readVersion(ctx, src)
	if err != nil {
		return st, err
	}

	// rows reads a whole query of the source as CopyFrom rows; conv adjusts one row.
	rows := func(query string, conv func([]any) error) ([][]any, error) {
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
	type table struct {
		name  string
		cols  []string
		query string
		conv  func([]any) error
		count *int
	}
	tables := []table{
		{"users", []string{"id", "username", "email", "password_hash", "budget", "role", "session_gen"},
			`SELECT id, username, email, password_hash, budget, role, session_gen FROM users ORDER BY id`, nil, &st.Users},
		{"items", []string{"id", "name", "price", "barcode", "description", "owner_id", "retired_at"},
			`SELECT id, name, price, barcode, description, owner_id, retired_at FROM items ORDER BY id`, nil, &st.Items},
		{"trades", []string{"id", "user_id", "item_id", "kind", "amount", "created_at"},
			`SELECT id, user_id, item_id, kind, amount, created_at FROM trades ORDER BY id`, nil, &st.Trades},
	}
	if sessions {
		tables = append(tables, table{"sessions", []string{"token", "data", "expiry"},
			`SELECT token, data, expiry FROM sessions WHERE expiry > julianday('now')`,
			func(v []any) error { // SQLite keeps a Julian day; PostgreSQL a timestamp
				jd, ok := v[2].(float64)
				if !ok {
					return fmt.Errorf("session expiry %v is not a Julian day", v[2])
				}
				sec, frac := math.Modf((jd - 2440587.5) * 86400)
				v[2] = time.Unix(int64(sec), int64(frac*1e9)).UTC()
				return nil
			}, &st.Sessions})
	}
	err = pgx.BeginFunc(ctx, dst.pg.pool, func(tx pgx.Tx) error {
		for _, t := range tables {
			data, err := rows(t.query, t.conv)
			if err != nil {
				return fmt.Errorf("read %s: %w", t.name, err)
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.cols, pgx.CopyFromRows(data)); err != nil {
				return fmt.Errorf("write %s: %w", t.name, err)
			}
			*t.count = len(data)
		}
		for _, t := range []string{"users", "items", "trades"} {
			if _, err := tx.Exec(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%s', 'id'),
				(SELECT coalesce(max(id), 0) + 1 FROM %[1]s), false)`, t)); err != nil {
				return fmt.Errorf("sequence of %s: %w", t, err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE catalogue SET version = greatest(version, $1) + 1`, version); err != nil {
			return err
		}
		// The market events are not copied: a live stream from before the copy gets a refresh.
		_, err := tx.Exec(ctx, `UPDATE market_events_horizon SET pruned_through = greatest(pruned_through, $1)`, version)
		return err
	})
	if err != nil {
		return CopyStats{}, fmt.Errorf("copy: %w", err)
	}
	return st, nil
}
