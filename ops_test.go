// The operator's commands: seed, users, check, reset, role, backup (also while the market
// trades) and copy to PostgreSQL.

package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"market/store"
	"market/store/storetest"
)

// The admin commands, on the engine the environment names (see storetest).
func TestAdminCommands(t *testing.T) {
	db := storetest.URL(t)
	if out, err := adminRun(t, db, "seed"); err != nil || !strings.Contains(out, "26 items added") {
		t.Fatalf("seed: %q %v", out, err)
	}
	if out, err := adminRun(t, db, "seed"); err != nil || !strings.Contains(out, "0 items added") {
		t.Errorf("seed again: %q %v, want it idempotent", out, err)
	}
	if _, err := adminRun(t, db, "seed", "-users", "3"); err == nil || !strings.Contains(err.Error(), "-password") {
		t.Errorf("seed -users without -password: %v, want a refusal", err)
	}
	if out, err := adminRun(t, db, "seed", "-users", "3", "-password", "secret123"); err != nil || !strings.Contains(out, "3 users") {
		t.Fatalf("seed -users: %q %v", out, err)
	}
	out, err := adminRun(t, db, "users")
	if err != nil || !strings.Contains(out, "user00003") || !strings.Contains(out, "1000") {
		t.Errorf("users: %q %v", out, err)
	}
	if out, err := adminRun(t, db, "check"); err != nil || !strings.HasPrefix(out, "ok:") {
		t.Errorf("check on a healthy market: %q %v", out, err)
	}

	// Money made out of nothing, behind the store's back: check must say so and fail.
	driver, dsn := "sqlite3", "file:"+db
	if storetest.Postgres() {
		driver, dsn = "pgx", db
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE users SET budget = budget + 5 WHERE username = 'user00001'`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	out, err = adminRun(t, db, "check")
	if err == nil || !strings.Contains(out, "user user00001: budget 1005 but ledger sums to 1000") {
		t.Errorf("check after corruption: %q %v, want the problem and an error", out, err)
	}

	if _, err := adminRun(t, db, "reset"); err == nil {
		t.Error("reset without --yes went ahead")
	}
	if out, err := adminRun(t, db, "reset", "--yes"); err != nil || !strings.Contains(out, "26 demo items") {
		t.Errorf("reset --yes: %q %v", out, err)
	}
	if out, _ := adminRun(t, db, "users"); strings.Contains(out, "user00001") {
		t.Error("users survived reset")
	}
	if _, err := adminRun(t, db, "frobnicate"); err == nil {
		t.Error("an unknown command succeeded")
	}
}

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
	// The trader alone buys and sells back one item: every trade must succeed, backup or not.
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := st.Buy(ctx, u.ID, p.Items[0].ID); err != nil {
				t.Errorf("a purchase beside the backup: %v", err)
				return
			}
			confirmed.Add(1)
			if _, err := st.Sell(ctx, u.ID, p.Items[0].ID); err != nil {
				t.Errorf("a sale beside the backup: %v", err)
				return
			}
			confirmed.Add(1)
		}
	})
	defer func() { close(stop); wg.Wait() }()
	waitFor(t, "the trader's first 100 trades", 10*time.Second, func() bool { return confirmed.Load() >= 100 })
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

// A SQLite market moves to PostgreSQL whole: accounts (passwords and confirmed addresses
// included), owners, the ledger and sessions, and check passes on the target; a second copy into it is refused.
func TestCopyToPostgres(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	to := storetest.NewPostgres(t)
	src := storetest.OpenAt(t, path)
	if _, err := src.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	alice, err := src.CreateUser(ctx, "Alice", "alice@example.com", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := src.Market(ctx, store.MarketQuery{Q: "Headphones"}) // 280
	if _, err := src.Buy(ctx, alice.ID, p.Items[0].ID); err != nil {
		t.Fatal(err)
	}
	pic := store.Picture{Hash: "0123456789abcdef0123", List: []byte("list"), Page: []byte("page")}
	if _, err := src.SetPicture(ctx, 0, p.Items[0].ID, pic); err != nil { // a picture, and a line of the admin log
		t.Fatal(err)
	}
	if _, err := src.SetRole(ctx, "alice", store.RoleAdmin); err != nil { // a line of the admin log
		t.Fatal(err)
	}
	confirm := store.Token{Hash: store.TokenHash("alice's link"), Purpose: store.TokenConfirm, Email: alice.Email, Expires: time.Now().Add(time.Hour)}
	if err := src.IssueToken(ctx, alice.ID, confirm); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.ConfirmEmail(ctx, confirm.Hash, time.Now()); err != nil {
		t.Fatal(err)
	}
	ss := src.Sessions()
	if err := ss.Commit("tok123", []byte("data"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	src.Close()

	out, err := adminRun(t, path, "copy", "-to", to, "-sessions")
	if err != nil || !strings.Contains(out, "1 users, 26 items, 2 trades, 2 admin log entries, 1 sessions, 1 pictures") || !strings.Contains(out, "\nok: ") {
		t.Fatalf("copy: %q %v", out, err)
	}
	dst := storetest.OpenAt(t, to)
	u, err := dst.Authenticate(ctx, "alice", "correct horse")
	if err != nil || u.ID != alice.ID || u.Budget != 720 || u.Role != store.RoleAdmin {
		t.Errorf("alice on PostgreSQL: %+v %v, want id %d, budget 720, an admin", u, err, alice.ID)
	}
	// The admin log came along, and goes on after it.
	if _, err := dst.SetRole(ctx, "alice", store.RoleUser); err != nil {
		t.Fatal(err)
	}
	if l, err := dst.AdminLog(ctx, 1); err != nil || len(l.Entries) != 3 || l.Entries[1].Action != "set role" ||
		l.Entries[1].After != store.RoleAdmin || l.Entries[0].ID <= l.Entries[1].ID {
		t.Errorf("admin log on PostgreSQL: %+v %v, want the copied line and a new one after it", l, err)
	}
	if u, err := dst.User(ctx, alice.ID); err != nil || !u.EmailConfirmed {
		t.Errorf("alice's confirmed address on PostgreSQL: %+v %v", u, err)
	}
	if it, _ := dst.Item(ctx, p.Items[0].ID); it.OwnerID != alice.ID || it.Picture != pic.Hash {
		t.Errorf("the headphones' owner is %d and picture %q, want alice and %s", it.OwnerID, it.Picture, pic.Hash)
	}
	if b, err := dst.PictureFile(ctx, pic.Hash, true); err != nil || string(b) != "page" {
		t.Errorf("the picture on PostgreSQL: %q %v", b, err)
	}
	if b, ok, err := dst.Sessions().Find("tok123"); err != nil || !ok || string(b) != "data" {
		t.Errorf("session: %q %v %v", b, ok, err)
	}
	bob, err := dst.CreateUser(ctx, "bob", "bob@example.com", "correct horse")
	if err != nil || bob.ID <= alice.ID || bob.EmailConfirmed {
		t.Errorf("a new user after the copy: %+v %v", bob, err)
	}
	if out, err := adminRun(t, path, "copy", "-to", to); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a second copy into a market with data: %q %v, want a refusal", out, err)
	}
}
