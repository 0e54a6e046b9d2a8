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
	ss := src.Sessions(0)
	if err := ss.Commit("tok123", []byte("data"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	src.Close()

	out, err := adminRun(t, path, "copy", "-to", to, "-sessions")
	if err != nil || !strings.Contains(out, "1 users, 26 items, 2 trades, 1 sessions") || !strings.Contains(out, "\nok: ") {
		t.Fatalf("copy: %q %v", out, err)
	}
	dst := storetest.OpenAt(t, to)
	u, err := dst.Authenticate(ctx, "alice", "correct horse")
	if err != nil || u.ID != alice.ID || u.Budget != 720 {
		t.Errorf("alice on PostgreSQL: %+v %v, want id %d and budget 720", u, err, alice.ID)
	}
	if it, _ := dst.Item(ctx, p.Items[0].ID); it.OwnerID != alice.ID {
		t.Errorf("the headphones' owner is %d, want alice", it.OwnerID)
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
