// Package storetest opens stores for tests, on every engine the machine has: SQLite always, in
// a temporary directory, and PostgreSQL when MARKET_TEST_POSTGRES is an admin URL
// (postgres://user@host:port/postgres), a fresh database per test. With
// MARKET_REQUIRE_POSTGRES=1 (CI), a missing cluster fails the tests instead of skipping them.
//
// A test written once runs on each engine with Each, as the subtests "sqlite" and "postgres";
// inside them (and their own subtests), URL and Open give a database of that subtest's engine.
// Outside Each (the HTTP tests), they give the engine the environment names: PostgreSQL when a
// cluster is given, else SQLite. This package and store.Open are the only places beside the
// engines' packages that name them.
package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3" // RawDB's second connection to a SQLite file
	"golang.org/x/crypto/bcrypt"

	"market/store"
	"market/store/driver/drivertest"
)

// Engine names: the subtests of Each.
const (
	SQLite     = "sqlite"
	PostgreSQL = "postgres"
)

// Engines are the engines this machine tests: SQLite, and PostgreSQL when a cluster is given
// (or required, so that its absence fails).
func Engines() []string {
	if drivertest.HavePostgres() || drivertest.Required() {
		return []string{SQLite, PostgreSQL}
	}
	return []string{SQLite}
}

// Each runs fn as a subtest on every engine of Engines.
func Each(t *testing.T, fn func(t *testing.T)) {
	t.Helper()
	for _, engine := range Engines() {
		t.Run(engine, func(t *testing.T) {
			if engine == PostgreSQL {
				drivertest.RequirePostgres(t)
			}
			fn(t)
		})
	}
}

// EngineOf is the engine t runs on: the engine subtest of Each it is in, else the one the
// environment names.
func EngineOf(t testing.TB) string {
	if parts := strings.Split(t.Name(), "/"); len(parts) > 1 && (parts[1] == SQLite || parts[1] == PostgreSQL) {
		return parts[1]
	}
	if drivertest.HavePostgres() {
		return PostgreSQL
	}
	return SQLite
}

// OnPostgres reports whether t runs on PostgreSQL.
func OnPostgres(t testing.TB) bool { return EngineOf(t) == PostgreSQL }

// Postgres reports whether the environment names PostgreSQL for the tests outside Each (see
// OnPostgres for a test's own engine).
func Postgres() bool { return drivertest.HavePostgres() }

// RequirePostgres skips a test that needs PostgreSQL when none is configured, or fails it when
// MARKET_REQUIRE_POSTGRES=1.
func RequirePostgres(t testing.TB) {
	t.Helper()
	drivertest.RequirePostgres(t)
}

// SQLiteOnly skips a test of something only SQLite has (its files, pragmas, group commits)
// when t runs on PostgreSQL.
func SQLiteOnly(t testing.TB) {
	t.Helper()
	if OnPostgres(t) {
		t.Skip("SQLite only")
	}
}

// URL is a new, empty database of t's engine: a file in t.TempDir(), or a PostgreSQL database
// created for the test and dropped when it ends (after the stores opened on it are closed).
func URL(t testing.TB) string {
	t.Helper()
	if OnPostgres(t) {
		return drivertest.PostgresURL(t)
	}
	return drivertest.SQLitePath(t)
}

// NewPostgres creates an empty PostgreSQL database for the test and returns its URL.
func NewPostgres(t testing.TB) string {
	t.Helper()
	return drivertest.PostgresURL(t)
}

// HoldTransactionElsewhere keeps a transaction with an id open in another database of the
// PostgreSQL cluster until the test ends, as another application sharing the cluster may; it
// returns the transaction's id.
func HoldTransactionElsewhere(t testing.TB) int64 {
	t.Helper()
	return drivertest.HoldTransactionElsewhere(t)
}

// Open opens a store on a new database with cheap password hashes, closed when the test ends.
func Open(t testing.TB) *store.Store {
	t.Helper()
	return OpenAt(t, URL(t))
}

// OpenAt opens a store on an existing database, closed when the test ends.
func OpenAt(t testing.TB, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, store.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// RawDB is a second, ordinary connection to the store's database: fixtures and corruption go
// through it, behind the store's back, as another program would. On PostgreSQL it is the
// store's own pool, which takes the same ? placeholders.
func RawDB(t testing.TB, st *store.Store) *sql.DB {
	t.Helper()
	if store.IsPostgres(st.Path()) {
		return st.DB()
	}
	db, err := sql.Open("sqlite3", "file:"+st.Path()+"?_foreign_keys=on&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// BreakLedger makes the ledger refuse rows for which cond (SQL on NEW) holds, with message,
// until the returned function mends it.
func BreakLedger(t testing.TB, st *store.Store, cond, message string) (mend func()) {
	t.Helper()
	db := RawDB(t, st)
	stmts := []string{fmt.Sprintf(`CREATE TRIGGER ledger_down BEFORE INSERT ON trades
		WHEN %s BEGIN SELECT RAISE(ABORT, '%s'); END`, cond, message)}
	undo := `DROP TRIGGER ledger_down`
	if store.IsPostgres(st.Path()) {
		stmts = []string{fmt.Sprintf(`CREATE FUNCTION ledger_down() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION '%s'; END $$`, message), fmt.Sprintf(`CREATE TRIGGER ledger_down BEFORE INSERT ON trades
			FOR EACH ROW WHEN (%s) EXECUTE FUNCTION ledger_down()`, cond)}
		undo = `DROP TRIGGER ledger_down ON trades`
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return func() {
		t.Helper()
		if _, err := db.Exec(undo); err != nil {
			t.Fatalf("%s: %v", undo, err)
		}
	}
}

// OpenOn opens a store on a new database of engine (SQLite or PostgreSQL), closed when the
// test ends; PostgreSQL without a cluster skips (or fails, see RequirePostgres).
func OpenOn(t testing.TB, engine string) *store.Store {
	t.Helper()
	if engine == PostgreSQL {
		return OpenAt(t, drivertest.PostgresURL(t))
	}
	return OpenAt(t, drivertest.SQLitePath(t))
}
