package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"market/store/driver"
	"market/store/driver/drivertest"
	"market/store/postgres"
)

// A write waiting for a row lock that another transaction holds ends at its caller's deadline,
// rolled back, not whenever the lock is let go: a hung or blocked database answers within the
// request's budget.
func TestWriteKeepsItsCallersDeadline(t *testing.T) {
	ctx := context.Background()
	url := drivertest.PostgresURL(t)
	d, err := postgres.Open(ctx, url, driver.Options{})
	e := drivertest.Migrated(t, d, err)
	var id int64
	if err := e.DB().QueryRowContext(ctx, `INSERT INTO users (username, email, password_hash, budget)
		VALUES ('ann', 'ann@example.com', '', 100) RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}

	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	lock, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, id); err != nil {
		t.Fatal(err)
	}

	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = e.Run(wctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE users SET budget = budget + 1 WHERE id = ?`, id)
		return err
	})
	took := time.Since(start)
	if err == nil {
		t.Fatal("the write went through a row lock held by another transaction")
	}
	if took > 3*time.Second {
		t.Errorf("the write gave up after %v: its caller's deadline was 300ms", took)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	var budget int64
	if err := e.DB().QueryRowContext(ctx, `SELECT budget FROM users WHERE id = ?`, id).Scan(&budget); err != nil {
		t.Fatal(err)
	}
	if budget != 100 {
		t.Errorf("budget %d after a write that failed (%v), want 100: it was not rolled back", budget, err)
	}
}

// A trade that never got a connection (every one busy until its deadline) sent nothing: its
// failure is a definite "not done", never an unknown outcome to look into.
func TestTradeWithoutAConnectionIsNotUnknown(t *testing.T) {
	ctx := context.Background()
	d, err := postgres.Open(ctx, drivertest.PostgresURL(t), driver.Options{})
	e := drivertest.Migrated(t, d, err)
	for range e.DB().Stats().MaxOpenConnections {
		c, err := e.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = e.Trade(tctx, 1, 1, true, nil)
	if err == nil {
		t.Fatal("a trade with no connection to be had went through")
	}
	if got := postgres.Classify(err); got == driver.CommitUnknown || errors.Is(err, driver.ErrCommitUnknown) {
		t.Errorf("a trade that sent nothing: %v (%s), want a definite failure", err, got)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a trade that waited out its deadline for a connection: %v, want the deadline", err)
	}
}
