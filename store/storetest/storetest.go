// Package storetest opens stores for tests on the engine the environment names: SQLite in a
// temporary directory by default, or a fresh PostgreSQL database when MARKET_TEST_POSTGRES is an
// admin URL (postgres://user@host:port/postgres). The same tests then run on both engines.
// With MARKET_REQUIRE_POSTGRES=1 (CI), tests that need PostgreSQL fail instead of skipping.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"market/store"
)

// Postgres reports whether the tests run on PostgreSQL.
func Postgres() bool { return os.Getenv("MARKET_TEST_POSTGRES") != "" }

// RequirePostgres skips a test that needs PostgreSQL when none is configured, or fails it when
// MARKET_REQUIRE_POSTGRES=1.
func RequirePostgres(t testing.TB) {
	t.Helper()
	if Postgres() {
		return
	}
	if os.Getenv("MARKET_REQUIRE_POSTGRES") == "1" {
		t.Fatal("MARKET_REQUIRE_POSTGRES=1 but MARKET_TEST_POSTGRES is not set")
	}
	t.Skip("needs PostgreSQL: set MARKET_TEST_POSTGRES to an admin URL (see .ci/postgres)")
}

// SQLiteOnly skips a test of something only SQLite has (its files, pragmas, group commits).
func SQLiteOnly(t testing.TB) {
	t.Helper()
	if Postgres() {
		t.Skip("SQLite only")
	}
}

// URL is a new, empty database: a file in t.TempDir(), or a PostgreSQL database created for
// the test and dropped when it ends (after the stores opened on it are closed).
func URL(t testing.TB) string {
	t.Helper()
	if !Postgres() {
		return filepath.Join(t.TempDir(), "market.db")
	}
	return NewPostgres(t)
}

// NewPostgres creates an empty PostgreSQL database for the test and returns its URL.
func NewPostgres(t testing.TB) string {
	t.Helper()
	RequirePostgres(t)
	admin := os.Getenv("MARKET_TEST_POSTGRES")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to %s: %v", admin, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
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
