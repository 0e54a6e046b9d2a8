package postgres

import (
	"context"
	"strings"
	"testing"

	"market/store/driver"
	"market/store/driver/drivertest"
)

// The feed's reads look at the newest rows of its indexes, however long the ledger: a trade's
// ledger row is its entry in the feed, and the ledger is never pruned. With 200,000 trades in
// the ledger, no read of the feed scans the ledger.
func TestFeedPlans(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, drivertest.PostgresURL(t), driver.Options{})
	e := drivertest.Migrated(t, d, err)
	var uid int64
	if err := e.db.QueryRowContext(ctx, `INSERT INTO users (username, email, password_hash, budget)
		VALUES ('alice', 'alice@example.com', '', 0) RETURNING id`).Scan(&uid); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.ExecContext(ctx, `WITH lamp AS (
			INSERT INTO items (name, price, barcode, description) VALUES ('Lamp', 1, '000000000001', '') RETURNING id)
		INSERT INTO trades (user_id, item_id, kind, amount)
			SELECT ?, lamp.id, CASE WHEN i % 2 = 0 THEN 'buy' ELSE 'sell' END, 0
			FROM lamp, generate_series(1, 200000) i`, uid); err != nil {
		t.Fatal(err)
	}
	// The cursor of a stream: after that old bulk, before the trades that follow it, each in a
	// transaction of its own, as trades are.
	var cursor int64
	if err := e.db.QueryRowContext(ctx, `SELECT max(xid)::text::bigint FROM trades`).Scan(&cursor); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if _, err := e.db.ExecContext(ctx, `INSERT INTO trades (user_id, item_id, kind, amount)
			SELECT user_id, item_id, 'buy', 0 FROM trades WHERE kind = 'sell' LIMIT 1`); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{`INSERT INTO market_feed (kind) SELECT 'change' FROM generate_series(1, 20000)`, `ANALYZE`} {
		if _, err := e.db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for name, q := range map[string]struct {
		query string
		args  []any
	}{
		"position": {pgPosition + ` FROM catalogue c`, nil},
		"events":   {pgEvents, []any{0, cursor, cursor + 100, driver.EventsKept}},
		"prune":    {pgFeedCut, []any{driver.EventsKept}},
	} {
		rows, err := e.db.QueryContext(ctx, `EXPLAIN `+q.query, q.args...)
		if err != nil {
			t.Fatal(name, err)
		}
		var plan []string
		for rows.Next() {
			var line string
			rows.Scan(&line)
			plan = append(plan, line)
		}
		rows.Close()
		if p := strings.Join(plan, "\n"); strings.Contains(p, "Seq Scan on trades") || !strings.Contains(p, "trades_feed") {
			t.Errorf("%s reads the ledger without its feed index:\n%s", name, p)
		}
	}
}
