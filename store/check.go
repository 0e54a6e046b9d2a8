package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Check verifies the database and the money invariants: SQLite's integrity check, every budget
// equal to the sum of its user's ledger, no budget below zero, every item's owner matching its
// last trade, and all budgets plus the prices of all owned items equal to all grants. It reads
// one snapshot, so it can run beside a live server. It returns one line per problem found; none
// means all is well.
func (s *Store) Check(ctx context.Context) ([]string, error) {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("check: begin: %w", err)
	}
	defer tx.Rollback()

	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	rows, err := tx.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return nil, fmt.Errorf("integrity check: %w", err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return nil, err
		}
		if line != "ok" {
			add("integrity: %s", line)
		}
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, fmt.Errorf("integrity check: %w", err)
	}
	rows.Close()

	type check struct {
		query  string
		report func(a, b, c any)
	}
	checks := []check{
		{`SELECT u.username, u.budget, coalesce(sum(t.amount), 0) FROM users u
		  LEFT JOIN trades t ON t.user_id = u.id GROUP BY u.id HAVING u.budget <> coalesce(sum(t.amount), 0)`,
			func(name, budget, ledger any) {
				add("user %v: budget %v but ledger sums to %v", name, budget, ledger)
			}},
		{`SELECT username, budget, '' FROM users WHERE budget < 0`,
			func(name, budget, _ any) { add("user %v: negative budget %v", name, budget) }},
		{`SELECT i.name, coalesce(i.owner_id, 'market'), coalesce(
		    (SELECT CASE t.kind WHEN 'buy' THEN t.user_id END FROM trades t
		     WHERE t.item_id = i.id ORDER BY t.id DESC LIMIT 1), 'market')
		  FROM items i
		  WHERE coalesce(i.owner_id, 'market') IS NOT coalesce(
		    (SELECT CASE t.kind WHEN 'buy' THEN t.user_id END FROM trades t
		     WHERE t.item_id = i.id ORDER BY t.id DESC LIMIT 1), 'market')`,
			func(name, owner, last any) {
				add("item %v: owner %v but its last trade says %v", name, owner, last)
			}},
	}
	for _, c := range checks {
		rows, err := tx.QueryContext(ctx, c.query)
		if err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		for rows.Next() {
			var a, b, c2 any
			if err := rows.Scan(&a, &b, &c2); err != nil {
				rows.Close()
				return nil, err
			}
			c.report(a, b, c2)
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return nil, err
		}
		rows.Close()
	}

	t, err := totals(ctx, tx)
	if err != nil {
		return nil, err
	}
	if t.Budgets+t.Owned != t.Granted {
		add("money: budgets %d + owned items %d = %d, but %d was granted (%+d)",
			t.Budgets, t.Owned, t.Budgets+t.Owned, t.Granted, t.Budgets+t.Owned-t.Granted)
	}
	return problems, nil
}

// Totals sums what the market holds: all budgets, the prices of all owned items, and all
// grants. Money is neither created nor lost when budgets plus owned equals granted.
type Totals struct {
	Budgets, Owned, Granted int64
}

// Totals reads the market's money totals in one snapshot.
func (s *Store) Totals(ctx context.Context) (Totals, error) {
	return totals(ctx, s.read)
}

func totals(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (Totals, error) {
	var t Totals
	err := q.QueryRowContext(ctx, `SELECT
		(SELECT coalesce(sum(budget), 0) FROM users),
		(SELECT coalesce(sum(price), 0) FROM items WHERE owner_id IS NOT NULL),
		(SELECT coalesce(sum(amount), 0) FROM trades WHERE kind = 'grant')`).Scan(&t.Budgets, &t.Owned, &t.Granted)
	if err != nil {
		return Totals{}, fmt.Errorf("totals: %w", err)
	}
	return t, nil
}
