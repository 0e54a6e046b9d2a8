package sqlite_test

import (
	"strings"
	"testing"

	"market/store/driver/drivertest"
	"market/store/storetest"
)

// TestQueryPlans shows that the market's reads (as the store writes them: on sale and not retired)
// use indexes rather than scanning whole tables.
// A search by substring (LIKE '%q%') cannot use a b-tree index; it walks the partial index of
// the items on sale in the order asked for, and the answers are cached per catalogue version.
func TestQueryPlans(t *testing.T) {
	st := storetest.OpenAt(t, drivertest.SQLitePath(t))
	db := storetest.RawDB(t, st)
	tests := []struct {
		name, query string
		want        string // a step the plan must contain
	}{
		{"market by name", `SELECT id FROM items WHERE owner_id IS NULL AND retired_at IS NULL ORDER BY name COLLATE NOCASE, id LIMIT 50 OFFSET 50`, "USING INDEX items_market_name"},
		{"market by price", `SELECT id FROM items WHERE owner_id IS NULL AND retired_at IS NULL ORDER BY price, name COLLATE NOCASE, id LIMIT 50`, "USING INDEX items_market_price"},
		{"market by price, descending", `SELECT id FROM items WHERE owner_id IS NULL AND retired_at IS NULL ORDER BY price DESC, name COLLATE NOCASE DESC, id DESC LIMIT 50`, "USING INDEX items_market_price"},
		{"market count", `SELECT count(*) FROM items WHERE owner_id IS NULL AND retired_at IS NULL`, "items_market_"},
		{"search walks the market index", `SELECT id FROM items WHERE owner_id IS NULL AND retired_at IS NULL AND (name LIKE '%a%' ESCAPE '\' OR description LIKE '%a%' ESCAPE '\') ORDER BY name COLLATE NOCASE, id LIMIT 50`, "USING INDEX items_market_name"},
		{"owned items", `SELECT id FROM items WHERE owner_id = 1 ORDER BY name COLLATE NOCASE`, "INDEX items_owner"},
		{"user by id", `SELECT budget FROM users WHERE id = 1`, "USING INTEGER PRIMARY KEY"},
		{"user by name", `SELECT id FROM users WHERE username = 'a'`, "INDEX sqlite_autoindex_users_1"},
		{"ledger page", `SELECT id FROM trades WHERE user_id = 1 ORDER BY id DESC LIMIT 25`, "INDEX trades_user"},
		{"session", `SELECT data FROM sessions WHERE token = 'x' AND julianday('now') < expiry`, "USING INDEX sqlite_autoindex_sessions_1"},
		{"session with its user and the version", `SELECT c.version, s.data, u.id FROM (SELECT 'x' AS token) p JOIN sessions s ON s.token = p.token
			CROSS JOIN catalogue c LEFT JOIN users u ON u.id = s.user_id WHERE julianday('now') < s.expiry`, "USING INDEX sqlite_autoindex_sessions_1"},
		{"version with a user", `SELECT c.version, u.username FROM (SELECT 1 AS id) p CROSS JOIN catalogue c LEFT JOIN users u ON u.id = p.id`, "USING INTEGER PRIMARY KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := db.Query(`EXPLAIN QUERY PLAN ` + tt.query)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var steps []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				steps = append(steps, detail)
			}
			plan := strings.Join(steps, "; ")
			t.Logf("%s: %s", tt.name, plan)
			if !strings.Contains(plan, tt.want) {
				t.Errorf("plan %q lacks %q", plan, tt.want)
			}
			for _, s := range steps {
				if strings.HasPrefix(s, "SCAN items") && !strings.Contains(s, "INDEX") ||
					strings.HasPrefix(s, "SCAN users") || strings.Contains(s, "USE TEMP B-TREE") {
					t.Errorf("plan scans a table or sorts: %q", s)
				}
			}
		})
	}
}
