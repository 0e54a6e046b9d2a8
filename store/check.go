package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// checks are the money queries of Check, the same on both engines: each row is one problem,
// said in words. The engine adds its own integrity checks (dialect.integrity).
var checks = []string{
	`SELECT format('user %s: budget %s but ledger sums to %s', u.username, u.budget, coalesce(sum(t.amount), 0))
	 FROM users u LEFT JOIN trades t ON t.user_id = u.id
	 GROUP BY u.id HAVING u.budget <> coalesce(sum(t.amount), 0)`,
	`SELECT format('user %s: negative budget %s', username, budget) FROM users WHERE budget < 0`,
	`WITH owners AS (
	   SELECT i.name, i.owner_id, (SELECT CASE t.kind WHEN 'buy' THEN t.user_id END FROM trades t
	                               WHERE t.item_id = i.id ORDER BY t.id DESC LIMIT 1) AS traded
	   FROM items i)
	 SELECT format('item %s: owner %s but its last trade says %s', name,
	               coalesce(CAST(owner_id AS text), 'market'), coalesce(CAST(traded AS text), 'market'))
	 FROM owners WHERE owner_id IS DISTINCT FROM traded`,
}

// queryStrings runs a query whose rows are one string each.
func queryStrings(ctx context.Context, q querier, query string) ([]string, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Check verifies the database and the money invariants: the engine's integrity checks (SQLite's
// integrity_check; PostgreSQL keeps its own), every budget equal to the sum of its user's
// ledger, no budget below zero, every item's owner matching its last trade, all budgets
// plus the prices of all owned items equal to all grants, and an outbox whose states, times and
// claims agree (mail.go). It reads
// one snapshot, so it can run beside a live server. It returns one line per problem found; none
// means all is well.
func (s *Store) Check(ctx context.Context) ([]string, error) {
	tx, err := s.snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	defer tx.Rollback()

	var problems []string
	for _, query := range slices.Concat(s.d.Dialect().Integrity, checks) {
		lines, err := queryStrings(ctx, tx, query)
		if err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		problems = append(problems, lines...)
	}
	mail, err := mailProblems(ctx, tx, time.Now())
	if err != nil {
		return nil, err
	}
	problems = append(problems, mail...)
	t, err := totals(ctx, tx)
	if err != nil {
		return nil, err
	}
	if t.Budgets+t.Owned != t.Granted {
		problems = append(problems, fmt.Sprintf("money: budgets %d + owned items %d = %d, but %d was granted (%+d)",
			t.Budgets, t.Owned, t.Budgets+t.Owned, t.Granted, t.Budgets+t.Owned-t.Granted))
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
	return totals(ctx, s.d.Read())
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
