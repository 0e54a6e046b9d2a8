package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"market/store/driver/drivertest"
	"market/store/postgres"
	"market/store/storetest"
)

// An instance that finds another sweeping (it holds the lock) skips its turn.
func TestSweepSkipsWhileAnotherSweeps(t *testing.T) {
	ctx := context.Background()
	st := storetest.OpenAt(t, drivertest.PostgresURL(t))
	conn, err := pgx.Connect(ctx, st.Path())
	if err != nil {
		t.Skipf("connect as another instance: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, postgres.SweepLockKey); err != nil {
		t.Fatal(err)
	}
	if sw, err := st.Sweep(ctx, time.Now()); err != nil || !sw.Skipped {
		t.Errorf("sweep while another instance sweeps: %+v %v, want skipped", sw, err)
	}
}
