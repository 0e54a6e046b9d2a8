package store

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"testing"
)

// Two writes that lock the same two rows in opposite orders deadlock for real; PostgreSQL
// aborts one, and the store runs it again: both callers hear success, none hears "deadlock".
func TestPostgresDeadlockIsRetried(t *testing.T) {
	st := openInternalPostgres(t, "deadlock")
	ctx := context.Background()
	a, _ := st.CreateUser(ctx, "alice", "alice@example.com", "correct horse")
	b, _ := st.CreateUser(ctx, "bob", "bob@example.com", "correct horse")

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
	go func() { errs <- st.writer.run(ctx, lockBoth(a.ID, b.ID)) }()
	go func() { errs <- st.writer.run(ctx, lockBoth(b.ID, a.ID)) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("a write heard of the deadlock: %v", err)
		}
	}
	if n := attempts.Load(); n < 3 {
		t.Errorf("%d attempts: the deadlock did not happen, so nothing was retried", n)
	}
}
