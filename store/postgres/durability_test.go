package postgres_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"market/store/driver/drivertest"
	"market/store/storetest"
)

// On PostgreSQL a confirmed trade is committed: the store's connections wait for the WAL flush
// whatever the server's default, and the schema is at the last migration.
func TestPostgresDurability(t *testing.T) {
	st := storetest.OpenAt(t, drivertest.PostgresURL(t))
	var mode string
	if err := st.DB().QueryRow(`SHOW synchronous_commit`).Scan(&mode); err != nil || mode != "on" {
		t.Errorf("synchronous_commit = %q (%v), want on", mode, err)
	}
	migrations, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(migrations) == 0 {
		t.Fatal("no migrations", err)
	}
	last, err := strconv.Atoi(strings.SplitN(filepath.Base(migrations[len(migrations)-1]), "_", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	if v, err := st.SchemaVersion(context.Background()); err != nil || v != last {
		t.Errorf("schema version %d (%v), want %d (the last of migrations)", v, err, last)
	}
	// A second instance opening the same database migrates nothing and sees the same market.
	other := storetest.OpenAt(t, st.Path())
	if _, err := st.CreateUser(context.Background(), "alice", "alice@example.com", "correct horse"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Authenticate(context.Background(), "ALICE", "correct horse"); err != nil {
		t.Errorf("the other instance does not know ALICE: %v", err)
	}
}
