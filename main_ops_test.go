package main

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"market/store"
	"market/store/storetest"
)

// role makes an admin on either engine, users shows it, and backup copies a SQLite market (on
// PostgreSQL it points to pg_dump).
func TestAdminRoleAndBackup(t *testing.T) {
	db := storetest.URL(t)
	if _, err := adminRun(t, db, "seed", "-users", "1", "-password", "secret123"); err != nil {
		t.Fatal(err)
	}
	if out, err := adminRun(t, db, "role", "USER00001", "admin"); err != nil || out != "user00001 is now an admin\n" {
		t.Errorf("role: %q %v", out, err)
	}
	if out, err := adminRun(t, db, "users"); err != nil || !strings.Contains(out, "ROLE") || !strings.Contains(out, "admin") {
		t.Errorf("users does not show the role: %q %v", out, err)
	}
	if _, err := adminRun(t, db, "role", "nobody", "admin"); err == nil || !strings.Contains(err.Error(), "no user") {
		t.Errorf("role of nobody: %v", err)
	}
	if _, err := adminRun(t, db, "role", "user00001", "root"); err == nil || !strings.Contains(err.Error(), "not a role") {
		t.Errorf("unknown role: %v", err)
	}
	out := t.TempDir() + "/copy.db"
	res, err := adminRun(t, db, "backup", out)
	if storetest.Postgres() {
		if err == nil || !strings.Contains(err.Error(), "pg_dump") {
			t.Errorf("backup on PostgreSQL: %q %v, want a pointer to pg_dump", res, err)
		}
		return
	}
	if err != nil || !strings.Contains(res, "checked: ok") {
		t.Fatalf("backup: %q %v", res, err)
	}
	if res, err := adminRun(t, out, "users"); err != nil || !strings.Contains(res, "user00001") {
		t.Errorf("the copy: %q %v", res, err)
	}
}

// `market backup` while the market trades: the copy passes check and holds every trade
// confirmed before the backup began.
func TestBackupWhileTrading(t *testing.T) {
	storetest.SQLiteOnly(t)
	ctx := context.Background()
	db := storetest.URL(t)
	st := storetest.OpenAt(t, db) // the running market
	if _, err := st.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := st.CreateUser(ctx, "trader", "trader@example.com", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.Market(ctx, store.MarketQuery{Q: "Mouse"})
	if err != nil || len(p.Items) != 1 {
		t.Fatalf("mouse: %v", err)
	}
	var (
		confirmed atomic.Int64
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := st.Buy(ctx, u.ID, p.Items[0].ID); err == nil {
				confirmed.Add(1)
			}
			if _, err := st.Sell(ctx, u.ID, p.Items[0].ID); err == nil {
				confirmed.Add(1)
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); confirmed.Load() < 100; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the trader did not get going")
		}
	}
	before := confirmed.Load()
	out := filepath.Join(t.TempDir(), "backup.db")
	if res, err := adminRun(t, db, "backup", out); err != nil || !strings.Contains(res, "checked: ok") {
		t.Fatalf("backup: %q %v", res, err)
	}
	t.Logf("%d trades confirmed before the backup, %d by its end", before, confirmed.Load())
	cp := storetest.OpenAt(t, out)
	var n int64
	if err := cp.DB().QueryRow(`SELECT count(*) FROM trades WHERE user_id = ? AND kind <> 'grant'`, u.ID).Scan(&n); err != nil || n < before {
		t.Errorf("the copy holds %d trades (%v), want at least the %d confirmed before the backup", n, err, before)
	}
	if _, err := adminRun(t, db, "backup", out); err == nil {
		t.Error("a backup over an existing file was not refused")
	}
}
