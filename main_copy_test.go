package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"market/store"
	"market/store/storetest"
)

// A SQLite market moves to PostgreSQL whole: accounts (passwords included), owners, the ledger
// and sessions, and check passes on the target; a second copy into it is refused.
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
	ss := src.Sessions(0)
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
	if it, _ := dst.Item(ctx, p.Items[0].ID); it.OwnerID != alice.ID || it.Picture != pic.Hash {
		t.Errorf("the headphones' owner is %d and picture %q, want alice and %s", it.OwnerID, it.Picture, pic.Hash)
	}
	if b, err := dst.PictureFile(ctx, pic.Hash, true); err != nil || string(b) != "page" {
		t.Errorf("the picture on PostgreSQL: %q %v", b, err)
	}
	if b, ok, err := dst.Sessions(0).Find("tok123"); err != nil || !ok || string(b) != "data" {
		t.Errorf("session: %q %v %v", b, ok, err)
	}
	bob, err := dst.CreateUser(ctx, "bob", "bob@example.com", "correct horse")
	if err != nil || bob.ID <= alice.ID {
		t.Errorf("a new user after the copy: %+v %v", bob, err)
	}
	if out, err := adminRun(t, path, "copy", "-to", to); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a second copy into a market with data: %q %v, want a refusal", out, err)
	}
}
