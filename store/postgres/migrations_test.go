package postgres_test

import (
	"slices"
	"testing"

	"market/store/driver/drivertest"
	"market/store/postgres"
)

// Reset drops what the migrations create: every table and the trigger function, each once.
func TestMigrationObjects(t *testing.T) {
	drivertest.CheckObjects(t, &postgres.Engine{}, append(slices.Clone(drivertest.Tables), "limit_events"), []string{"market_changed"})
}
