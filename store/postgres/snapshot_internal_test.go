package postgres

import (
	"context"
	"testing"

	"market/store/driver"
	"market/store/driver/drivertest"
)

// A snapshot whose statement fails, in a send that ends it or not, hands its connection back
// to the pool out of any transaction: the pool's next read runs on the same connection (not a
// new one, as the pool makes when it finds one left in a transaction), on its own.
func TestSnapshotAfterAFailure(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, drivertest.PostgresURL(t), driver.Options{})
	e := drivertest.Migrated(t, d, err)
	e.db.SetMaxOpenConns(1)
	backend := func() (pid int64) {
		t.Helper()
		if err := e.db.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return pid
	}
	for _, end := range []bool{false, true} {
		pid := backend()
		s, err := e.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var one, version int64
		s.Position(&version)
		s.Query(`SELECT ?`, []any{int64(1)}, func(scan func(dest ...any) error) error { return scan(&one) })
		if err := s.Send(false); err != nil || one != 1 || version == 0 {
			t.Fatalf("first send: %v (read %d, version %d)", err, one, version)
		}
		s.Query(`SELECT 1 / (? - 1)`, []any{int64(1)}, func(func(dest ...any) error) error { return nil })
		if err := s.Send(end); err == nil {
			t.Fatalf("end %v: a division by zero was answered", end)
		}
		s.Close()
		// Still in the snapshot's transaction, the read would fail (it was aborted) or run at
		// its isolation level.
		var isolation string
		if err := e.db.QueryRowContext(ctx, `SELECT current_setting('transaction_isolation')`).Scan(&isolation); err != nil || isolation != "read committed" {
			t.Errorf("end %v: the next read after a failed snapshot: %v, isolation %q", end, err, isolation)
		}
		if after := backend(); after != pid {
			t.Errorf("end %v: the connection was replaced after a failed snapshot (backend %d, then %d)", end, pid, after)
		}
	}
}
