package sqlite_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"market/store/driver"
	"market/store/driver/drivertest"
	"market/store/sqlite"
)

// An operation that panics fails alone: its caller gets an error, the writer goes on.
func TestWriterSurvivesPanic(t *testing.T) {
	ctx := context.Background()
	d, err := sqlite.Open(ctx, drivertest.SQLitePath(t), driver.Options{})
	e := drivertest.Migrated(t, d, err)
	err = e.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE catalogue SET version = version + 1000`); err != nil {
			return err
		}
		panic("boom")
	})
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("panicking operation: %v, want an error", err)
	}
	if v, _, _ := e.Position(ctx, e.Read()); v >= 1000 {
		t.Errorf("the panicking operation's write was kept: version %d", v)
	}
	err = e.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users (username, email, password_hash, budget) VALUES ('after', 'after@example.com', '', 0)`)
		return err
	})
	if err != nil {
		t.Errorf("the writer stopped after a panic: %v", err)
	}
}
