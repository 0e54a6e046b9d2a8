package sqlite_test

import (
	"context"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"market/store"
	"market/store/driver"
	"market/store/driver/drivertest"
	"market/store/sqlite"
	"market/store/storetest"
)

// latestVersion is the number of the newest migration file.
func latestVersion(t *testing.T) int { return drivertest.LatestVersion(t, &sqlite.Engine{}) }

func TestOpenFreshDatabase(t *testing.T) {
	ctx := context.Background()
	st := storetest.OpenAt(t, drivertest.SQLitePath(t))
	if v, err := st.SchemaVersion(ctx); err != nil || v != latestVersion(t) {
		t.Fatalf("schema version %d (%v), want %d", v, err, latestVersion(t))
	}
	n, err := st.Seed(ctx)
	if err != nil || n < 20 {
		t.Fatalf("seed added %d (%v)", n, err)
	}
	if again, err := st.Seed(ctx); err != nil || again != 0 {
		t.Errorf("seeding again added %d (%v), want 0", again, err)
	}
	if added, err := st.SeedIfEmpty(ctx); err != nil || added != 0 {
		t.Errorf("SeedIfEmpty on a seeded store added %d (%v)", added, err)
	}
	storetest.AssertHealthy(t, st)
}

// A database made by the first release (migration 0001 only, no ledger) holds users with
// budgets and owned items. Open upgrades it: budgets and owners are kept, and the new ledger
// explains them, so Check passes and trading goes on.
func TestOpenUpgradesVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	buildVersion1(t, path)

	st := storetest.OpenAt(t, path)
	if v, err := st.SchemaVersion(ctx); err != nil || v != latestVersion(t) {
		t.Fatalf("schema version %d (%v), want %d", v, err, latestVersion(t))
	}
	wantBudget := map[int64]int64{1: 1000, 2: 455, 3: 1200, 4: 0}
	for id, want := range wantBudget {
		if got := storetest.Budget(t, st, id); got != want {
			t.Errorf("user %d: budget %d after upgrade, want %d", id, got, want)
		}
		if sum := storetest.LedgerSum(storetest.Ledger(t, st, id)); sum != want {
			t.Errorf("user %d: ledger sums to %d, budget %d", id, sum, want)
		}
	}
	wantOwner := map[int64]int64{1: 2, 2: 2, 3: 3, 4: 0}
	for id, want := range wantOwner {
		if got := storetest.Owner(t, st, id); got != want {
			t.Errorf("item %d: owner %d after upgrade, want %d", id, got, want)
		}
	}
	// bob's ledger: his grant and the two purchases that explain his budget.
	var kinds []string
	for _, e := range storetest.Ledger(t, st, 2) {
		kinds = append(kinds, e.Kind+":"+strconv.FormatInt(e.Amount, 10))
	}
	slices.Sort(kinds)
	if got := strings.Join(kinds, " "); got != "buy:-45 buy:-500 grant:1000" {
		t.Errorf("bob's ledger %q", got)
	}
	storetest.AssertHealthy(t, st)
	if tot, _ := st.Totals(ctx); tot != (store.Totals{Budgets: 2655, Owned: 1445, Granted: 4100}) {
		t.Errorf("totals %+v", tot)
	}

	// Trading works on the upgraded data, and the upgrade is not applied twice.
	if tr, err := st.Sell(ctx, 2, 1); err != nil || tr.Budget != 955 {
		t.Fatalf("bob sells the phone: %+v %v", tr, err)
	}
	if tr, err := st.Buy(ctx, 1, 1); err != nil || tr.Budget != 500 {
		t.Fatalf("alice buys the phone: %+v %v", tr, err)
	}
	rows := len(storetest.Ledger(t, st, 2))
	st.Close()
	st = storetest.OpenAt(t, path)
	if got := len(storetest.Ledger(t, st, 2)); got != rows {
		t.Errorf("reopening changed bob's ledger: %d rows → %d", rows, got)
	}
	storetest.AssertHealthy(t, st)
}

// buildVersion1 makes, at path, a database of the first release with users and owned items.
func buildVersion1(t *testing.T, path string) {
	t.Helper()
	schema, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	old, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		string(schema),
		`PRAGMA user_version = 1`,
		// alice never traded; bob bought the phone and the mouse; carol somehow holds more
		// than she was granted (the old app had no ledger to say why); dave spent it all on
		// things since deleted.
		`INSERT INTO users (id, username, email, password_hash, budget) VALUES
			(1, 'alice', 'alice@example.com', 'x', 1000),
			(2, 'bob',   'bob@example.com',   'x', 455),
			(3, 'carol', 'carol@example.com', 'x', 1200),
			(4, 'dave',  'dave@example.com',  'x', 0)`,
		`INSERT INTO items (id, name, price, barcode, owner_id) VALUES
			(1, 'Phone',  500, '000000000011', 2),
			(2, 'Mouse',   45, '000000000022', 2),
			(3, 'Laptop', 900, '000000000033', 3),
			(4, 'Kettle',  55, '000000000044', NULL)`,
		`INSERT INTO sessions (token, data, expiry) VALUES ('tok', x'00', 2460000.5)`,
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatalf("build version 1: %v", err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
}

// Two processes that open an old database at once (a server, and a command started beside it)
// both read its version before either migrates: the second to apply a migration finds it
// applied, in the same transaction, and leaves it be instead of failing on tables that exist
// (or running a migration that changes data twice).
func TestMigrationAppliedMeanwhileIsSkipped(t *testing.T) {
	ctx := context.Background()
	path := drivertest.SQLitePath(t)
	late, err := sqlite.Open(ctx, path, driver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	lock, err := late.LockSchema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	if v, err := lock.Version(ctx); err != nil || v != 0 {
		t.Fatalf("a new file's version: %d (%v), want 0", v, err)
	}

	first, err := sqlite.Open(ctx, path, driver.Options{})
	drivertest.Migrated(t, first, err) // the other process migrates it all

	body, err := fs.ReadFile(late.Migrations(), "0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	if err := lock.Apply(ctx, string(body), 1); err != nil {
		t.Fatalf("applying the first migration again, after another process did: %v", err)
	}
	if v, err := lock.Version(ctx); err != nil || v != latestVersion(t) {
		t.Errorf("version after: %d (%v), want %d", v, err, latestVersion(t))
	}
}
