package postgres_test

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"market/store/driver"
	"market/store/postgres"
)

// PostgreSQL's SQLSTATE codes, wrapped as the store wraps them, are each the trouble they say;
// a commit with no answer is CommitUnknown.
func TestClassify(t *testing.T) {
	for code, want := range map[string]driver.Trouble{
		"08006": driver.Unavailable, "57P01": driver.Unavailable, "53300": driver.Unavailable,
		"53100": driver.DiskFull, "25006": driver.ReadOnly, "58030": driver.IOError, "55P03": driver.Busy,
		"23505": driver.NoTrouble, "40001": driver.NoTrouble,
	} {
		err := fmt.Errorf("trade: %w", &pgconn.PgError{Code: code})
		if got := postgres.Classify(err); got != want {
			t.Errorf("SQLSTATE %s: %s, want %s", code, got, want)
		}
	}
	if got := postgres.Classify(fmt.Errorf("commit: %w: %w", driver.ErrCommitUnknown, fmt.Errorf("conn closed"))); got != driver.CommitUnknown {
		t.Errorf("a commit with no answer: %s, want %s", got, driver.CommitUnknown)
	}
}
