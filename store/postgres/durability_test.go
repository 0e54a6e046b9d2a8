package postgres_test

import (
	"context"
	"testing"

	"market/store/driver/drivertest"
	"market/store/postgres"
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
	if v, err := st.SchemaVersion(context.Background()); err != nil || v != drivertest.LatestVersion(t, &postgres.Engine{}) {
		t.Errorf("schema version %d (%v), want %d (the last of migrations)", v, err, drivertest.LatestVersion(t, &postgres.Engine{}))
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
