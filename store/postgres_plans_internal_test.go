package store

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// openInternalPostgres opens a store on a new database of the test cluster, dropped after the
// test (storetest, which does this for the other tests, imports this package).
func openInternalPostgres(t *testing.T, name string) *Store {
	t.Helper()
	admin := os.Getenv("MARKET_TEST_POSTGRES")
	if admin == "" {
		if os.Getenv("MARKET_REQUIRE_POSTGRES") == "1" {
			t.Fatal("MARKET_REQUIRE_POSTGRES=1 but MARKET_TEST_POSTGRES is not set")
		}
		t.Skip("needs PostgreSQL: set MARKET_TEST_POSTGRES (see .ci/postgres)")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	name = "t_" + name + "_" + time.Now().Format("150405000000")
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Exec(ctx, `DROP DATABASE `+name+` WITH (FORCE)`) })
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	st, err := Open(ctx, u.String(), Options{BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// The feed's reads look at the newest rows of its indexes, however long the ledger: a trade's
// ledger row is its entry in the feed, and the ledger is never pruned. With 200,000 trades in
// the ledger, no read of the feed scans the ledger.
func TestFeedPlans(t *testing.T) {
	st := openInternalPostgres(t, "plans")
	ctx := context.Background()
	u, err := st.CreateUser(ctx, "alice", "alice@example.com", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.db.ExecContext(ctx, `WITH lamp AS (
			INSERT INTO items (name, price, barcode, description) VALUES ('Lamp', 1, '000000000001', '') RETURNING id)
		INSERT INTO trades (user_id, item_id, kind, amount)
			SELECT ?, lamp.id, CASE WHEN i % 2 = 0 THEN 'buy' ELSE 'sell' END, 0
			FROM lamp, generate_series(1, 200000) i`, u.ID); err != nil {
		t.Fatal(err)
	}
	// The cursor of a stream: after that old bulk, before the trades that follow it, each in a
	// transaction of its own, as trades are.
	var cursor int64
	if err := st.db.QueryRowContext(ctx, `SELECT max(xid)::text::bigint FROM trades`).Scan(&cursor); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if _, err := st.db.ExecContext(ctx, `INSERT INTO trades (user_id, item_id, kind, amount)
			SELECT user_id, item_id, 'buy', 0 FROM trades WHERE kind = 'sell' LIMIT 1`); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{`INSERT INTO market_feed (kind) SELECT 'change' FROM generate_series(1, 20000)`, `ANALYZE`} {
		if _, err := st.db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for name, q := range map[string]struct {
		query string
		args  []any
	}{
		"position": {pgPosition + ` FROM catalogue c`, nil},
		"events":   {pgEvents, []any{0, cursor, EventsKept}},
		"prune":    {pgFeedCut, []any{EventsKept}},
	} {
		rows, err := st.db.QueryContext(ctx, `EXPLAIN `+q.query, q.args...)
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
