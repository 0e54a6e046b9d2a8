package postgres_test

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"testing"

	"market/store/driver"
	"market/store/driver/drivertest"
	"market/store/postgres"
)

// Two writes that lock the same two rows in opposite orders deadlock for real; PostgreSQL
// aborts one, and the store runs it again: both callers hear success, none hears "deadlock".
func TestPostgresDeadlockIsRetried(t *testing.T) {
	ctx := context.Background()
	d, err := postgres.Open(ctx, drivertest.PostgresURL(t), driver.Options{})
	e := drivertest.Migrated(t, d, err)
	var a, b int64
	for name, id := range map[string]*int64{"alice": &a, "bob": &b} {
		if err := e.DB().QueryRowContext(ctx, `INSERT INTO users (username, email, password_hash, budget)
			VALUES (?, ?, '', 0) RETURNING id`, name, name+"@example.com").Scan(id); err != nil {
			t.Fatal(err)
		}
	}

	var attempts atomic.Int32
	both := make(chan struct{}) // each holds its first row before either takes its second
	var once sync.Once
	var ready atomic.Int32
	lockBoth := func(first, second int64) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			n := attempts.Add(1)
			if _, err := tx.ExecContext(ctx, `UPDATE users SET budget = budget WHERE id = ?`, first); err != nil {
				return err
			}
			if n <= 2 { // the first round: wait until both hold a row, then cross
				if ready.Add(1) == 2 {
					once.Do(func() { close(both) })
				}
				<-both
			}
			_, err := tx.ExecContext(ctx, `UPDATE users SET budget = budget WHERE id = ?`, second)
			return err
		}
	}
	errs := make(chan error, 2)
	go func() { errs <- e.Run(ctx, lockBoth(a, b)) }()
	go func() { errs <- e.Run(ctx, lockBoth(b, a)) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("a write heard of the deadlock: %v", err)
		}
	}
	if n := attempts.Load(); n < 3 {
		t.Errorf("%d attempts: the deadlock did not happen, so nothing was retried", n)
	}
}
