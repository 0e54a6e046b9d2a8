package store_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"market/store"
	"market/store/driver/drivertest"
	"market/store/storetest"
)

// scaleStore is one database with 100,000 items and 10,000 users, shared by the scale tests
// and benchmarks of a run (seeding it is the slow part).
var scaleStore = sync.OnceValues(func() (*store.Store, error) {
	dir, err := os.MkdirTemp("", "market-scale-")
	if err != nil {
		return nil, err
	}
	st, err := store.Open(context.Background(), filepath.Join(dir, "scale.db"), store.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		return nil, err
	}
	if _, err := st.Seed(context.Background()); err != nil {
		return nil, err
	}
	return st, st.SeedScale(context.Background(), 100_000, 10_000, "password")
})

func TestSeedScaleIsQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 100,000 items")
	}
	start := time.Now()
	st, err := scaleStore()
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("seeded 100,000 items and 10,000 users in %s", took.Round(time.Millisecond))
	// A bound on time holds only on a quiet machine: it is checked with the load tests.
	if os.Getenv("MARKET_LOAD") == "1" && took > 10*time.Second {
		t.Errorf("seeding took %s, want under 10 s", took)
	}
	users, err := st.Users(context.Background())
	if err != nil || len(users) != 10_000 {
		t.Fatalf("%d users, %v", len(users), err)
	}
	if problems, err := st.Check(context.Background()); err != nil || len(problems) > 0 {
		t.Errorf("check after seeding: %v %v", problems, err)
	}
}

// TestQueryPlans shows that the market's reads (as the store writes them: on sale and not retired)
// use indexes rather than scanning whole tables.
// A search by substring (LIKE '%q%') cannot use a b-tree index; it walks the partial index of
// the items on sale in the order asked for, and the answers are cached per catalogue version.
func TestQueryPlans(t *testing.T) {
	st := storetest.OpenAt(t, drivertest.SQLitePath(t)) // SQLite's plans; PostgreSQL's: store/postgres
	db := rawDB(t, st)
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

// TestMarketAtScale reads the first page, a search and the last page of a 100,000-item market
// straight from the database (no cache: the worst case, right after a trade), and reports p99.
func TestMarketAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 100,000 items")
	}
	st, err := scaleStore()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, q := range []store.MarketQuery{
		{Sort: store.SortName},
		{Q: "vintage clock", Sort: store.SortName},
		{Sort: store.SortPrice, Page: 1 << 30},
	} {
		var took []time.Duration
		for range 50 {
			start := time.Now()
			p, err := st.Market(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			took = append(took, time.Since(start))
			if len(p.Items) == 0 {
				t.Fatalf("%+v: no items", q)
			}
		}
		slices.Sort(took)
		p99 := took[len(took)*99/100]
		t.Logf("%+v: p50 %s, p99 %s", q, took[len(took)/2], p99)
	}
}
