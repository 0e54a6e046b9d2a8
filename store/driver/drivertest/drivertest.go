// Package drivertest makes empty databases for the tests of the engines (store/sqlite,
// store/postgres) and of the store (through storetest): a file in a temporary directory, or a
// fresh PostgreSQL database on the cluster MARKET_TEST_POSTGRES names (an admin URL,
// postgres://user@host:port/postgres), dropped when the test ends. With
// MARKET_REQUIRE_POSTGRES=1 (CI), a test that needs PostgreSQL fails instead of skipping.
package drivertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"market/store/driver"
)

// HavePostgres reports whether a PostgreSQL cluster is given for tests.
func HavePostgres() bool { return os.Getenv("MARKET_TEST_POSTGRES") != "" }

// Required reports whether MARKET_REQUIRE_POSTGRES=1: a test that needs PostgreSQL fails
// without it.
func Required() bool { return os.Getenv("MARKET_REQUIRE_POSTGRES") == "1" }

// RequirePostgres skips a test that needs PostgreSQL when none is given, or fails it when
// MARKET_REQUIRE_POSTGRES=1.
func RequirePostgres(t testing.TB) {
	t.Helper()
	if HavePostgres() {
		return
	}
	if Required() {
		t.Fatal("MARKET_REQUIRE_POSTGRES=1 but MARKET_TEST_POSTGRES is not set")
	}
	t.Skip("needs PostgreSQL: set MARKET_TEST_POSTGRES to an admin URL (see .ci/postgres)")
}

// SQLitePath is a new database file in t.TempDir().
func SQLitePath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "market.db")
}

// PostgresURL creates an empty PostgreSQL database for the test and returns its URL; it is
// dropped when the test ends (after the stores opened on it are closed).
func PostgresURL(t testing.TB) string {
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

// Migrated migrates an engine just opened and starts it, and closes it when the test ends.
func Migrated[D driver.Driver](t testing.TB, d D, err error) D {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx := context.Background()
	if err := driver.Migrate(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

// HoldTransactionElsewhere begins a transaction in a database of its own on the cluster, gives
// it a transaction id (as any write does), and keeps it open until the test ends: another
// application (or another test) of the same cluster with a long transaction. It returns the id.
func HoldTransactionElsewhere(t testing.TB) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		conn.Close(ctx)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tx.Rollback(ctx)
		conn.Close(ctx)
	})
	var xid int64
	if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	return xid
}
