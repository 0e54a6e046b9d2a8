package sqlite_test

import (
	"testing"

	"market/store/driver/drivertest"
	"market/store/sqlite"
)

// Reset drops what the migrations create: every table, each once.
func TestMigrationObjects(t *testing.T) {
	drivertest.CheckObjects(t, &sqlite.Engine{}, drivertest.Tables, nil)
}
