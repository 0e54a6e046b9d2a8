package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"market/store"
	"market/store/storetest"
)

func TestAdminItems(t *testing.T) { storetest.Each(t, testAdminItems) }

func testAdminItems(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	admin := storetest.CreateUser(t, st, "boss")
	buyer := storetest.CreateUser(t, st, "buyer")

	lamp, err := st.AddItem(ctx, admin.ID, store.ItemInput{Name: "Lamp", Price: 40, Barcode: "123456789012", Description: "Bright"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.AddItem(ctx, admin.ID, store.ItemInput{Name: "Lamp", Price: 1, Barcode: "123456789012"})
	if !errors.Is(err, store.ErrDuplicateName) || !errors.Is(err, store.ErrDuplicateBarcode) {
		t.Errorf("add a taken name and barcode: %v, want both refusals", err)
	}
	if p, _ := st.Market(ctx, store.MarketQuery{Q: "bright"}); len(p.Items) != 1 || p.Items[0].ID != lamp.ID {
		t.Errorf("search for the new item: %+v", p.Items)
	}

	// A price change applies to the next purchase.
	if _, err := st.EditItem(ctx, admin.ID, lamp.ID, store.ItemInput{Name: "Lamp", Price: 55, Barcode: "123456789012", Description: "Brighter"}); err != nil {
		t.Fatal(err)
	}
	if tr, err := st.Buy(ctx, buyer.ID, lamp.ID); err != nil || tr.Budget != store.StartingBudget-55 {
		t.Fatalf("buy after the price change: %+v %v", tr, err)
	}
	// Owned: its price cannot change, nor can it be retired; its name can change.
	it, err := st.EditItem(ctx, admin.ID, lamp.ID, store.ItemInput{Name: "Lamp", Price: 99, Barcode: "123456789012"})
	if !errors.Is(err, store.ErrOwned) || it.Owner != "buyer" {
		t.Errorf("re-price an owned item: %+v %v, want ErrOwned naming the owner", it, err)
	}
	if _, err := st.EditItem(ctx, admin.ID, lamp.ID, store.ItemInput{Name: "Desk lamp", Price: 55, Barcode: "123456789012"}); err != nil {
		t.Errorf("rename an owned item: %v", err)
	}
	if it, err := st.RetireItem(ctx, admin.ID, lamp.ID); !errors.Is(err, store.ErrOwned) || it.Owner != "buyer" {
		t.Errorf("retire an owned item: %+v %v", it, err)
	}
	if _, err := st.Sell(ctx, buyer.ID, lamp.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RetireItem(ctx, admin.ID, lamp.ID); err != nil {
		t.Fatalf("retire an item on sale: %v", err)
	}
	// Retired: gone from the market, its page and purchases; a second retirement finds nothing.
	if p, _ := st.Market(ctx, store.MarketQuery{Q: "lamp"}); p.Total != 0 {
		t.Errorf("a retired item is still on the market: %+v", p)
	}
	if _, err := st.Item(ctx, lamp.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("item page of a retired item: %v", err)
	}
	if _, err := st.Buy(ctx, buyer.ID, lamp.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("buy a retired item: %v", err)
	}
	if _, err := st.RetireItem(ctx, admin.ID, lamp.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("retire twice: %v", err)
	}
	log, err := st.AdminLog(ctx, 1)
	if err != nil || len(log.Entries) != 4 || log.Entries[0].Action != "retire item" || log.Entries[0].Admin != "boss" {
		t.Errorf("admin log: %+v %v, want 4 rows, newest first", log, err)
	}
	if e := log.Entries[2]; e.Before != "price 40, description \"Bright\"" || e.After != "price 55, description \"Brighter\"" {
		t.Errorf("edit's before and after: %q -> %q", e.Before, e.After)
	}
	storetest.AssertHealthy(t, st)
}

func TestGrantAndRoles(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := newStore(t)
		admin := storetest.CreateUser(t, st, "boss")
		u := storetest.CreateUser(t, st, "alice")
		if got, err := st.Grant(ctx, admin.ID, u.ID, 250); err != nil || got.Budget != 1250 {
			t.Fatalf("grant: %+v %v", got, err)
		}
		if got, err := st.Grant(ctx, admin.ID, u.ID, -1251); !errors.Is(err, store.ErrInsufficientFunds) || got.Budget != 1250 {
			t.Errorf("grant below zero: %+v %v", got, err)
		}
		if got, err := st.Grant(ctx, admin.ID, u.ID, -1250); err != nil || got.Budget != 0 {
			t.Errorf("grant down to zero: %+v %v", got, err)
		}
		if _, err := st.Grant(ctx, admin.ID, 9999, 5); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("grant to nobody: %v", err)
		}
		if l := storetest.Ledger(t, st, u.ID); len(l) != 3 || storetest.LedgerSum(l) != 0 {
			t.Errorf("ledger after grants: %+v", l)
		}
		if got, err := st.SetRole(ctx, "ALICE", store.RoleAdmin); err != nil || got.Role != store.RoleAdmin {
			t.Errorf("set role: %+v %v", got, err)
		}
		if _, err := st.SetRole(ctx, "nobody", store.RoleAdmin); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("set the role of nobody: %v", err)
		}
		if _, err := st.SetRole(ctx, "alice", "root"); !errors.Is(err, store.ErrBadRole) {
			t.Errorf("unknown role: %v", err)
		}
		if got, _ := st.User(ctx, u.ID); got.Role != store.RoleAdmin {
			t.Errorf("role read back: %q", got.Role)
		}
		storetest.AssertHealthy(t, st)
	})
}

func TestPasswordChangeMovesTheGeneration(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := newStore(t)
		u := storetest.CreateUser(t, st, "alice")
		if _, err := st.ChangePassword(ctx, u.ID, "wrong one", "new password"); !errors.Is(err, store.ErrInvalidCredentials) {
			t.Errorf("wrong current password: %v", err)
		}
		gen, err := st.ChangePassword(ctx, u.ID, "correct horse", "new password")
		if err != nil || gen != 1 {
			t.Fatalf("change: %d %v", gen, err)
		}
		if _, err := st.Authenticate(ctx, "alice", "correct horse"); !errors.Is(err, store.ErrInvalidCredentials) {
			t.Errorf("old password still works: %v", err)
		}
		if got, err := st.Authenticate(ctx, "alice", "new password"); err != nil || got.SessionGen != 1 {
			t.Errorf("new password: %+v %v", got, err)
		}
		if gen, err := st.EndSessions(ctx, u.ID); err != nil || gen != 2 {
			t.Errorf("end sessions: %d %v", gen, err)
		}
	})
}

// A retirement racing purchases of the same item: exactly one wins, and money is kept.
func TestRetireRacesPurchase(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := newStore(t)
		admin := storetest.CreateUser(t, st, "boss")
		buyers := []store.User{storetest.CreateUser(t, st, "b1"), storetest.CreateUser(t, st, "b2"), storetest.CreateUser(t, st, "b3")}
		for round := range 10 {
			it, err := st.AddItem(ctx, admin.ID, store.ItemInput{Name: "Race " + string(rune('a'+round)), Price: 10, Barcode: store.Barcode(int64(900_000 + round))})
			if err != nil {
				t.Fatal(err)
			}
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				retired bool
				bought  int
			)
			for _, b := range buyers {
				wg.Go(func() {
					if _, err := st.Buy(ctx, b.ID, it.ID); err == nil {
						mu.Lock()
						bought++
						mu.Unlock()
					}
				})
			}
			wg.Go(func() {
				_, err := st.RetireItem(ctx, admin.ID, it.ID)
				mu.Lock()
				retired = err == nil
				mu.Unlock()
			})
			wg.Wait()
			if n := bought + map[bool]int{true: 1}[retired]; n != 1 {
				t.Errorf("round %d: %d bought, retired %v: want exactly one winner", round, bought, retired)
			}
		}
		storetest.AssertHealthy(t, st)
	})
}

// Grants beside trades: every grant and trade lands, and money balances.
func TestGrantsBesideTrades(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := newStore(t)
		admin := storetest.CreateUser(t, st, "boss")
		u := storetest.CreateUser(t, st, "trader")
		items := []store.Item{storetest.AddItem(t, st, "A", 7), storetest.AddItem(t, st, "B", 11)}
		// Every call either does what it says or is refused for a reason the rules allow:
		// a purchase for want of money, a sale of an item not bought, a negative grant beyond
		// the budget. Anything else (an error of the database) fails the test.
		errs := make(chan error, 2*40*len(items)+40)
		allowed := func(op string, err error, refusals ...error) {
			for _, r := range append(refusals, nil) {
				if errors.Is(err, r) {
					return
				}
			}
			errs <- fmt.Errorf("%s: %w", op, err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for range 40 {
				for _, it := range items {
					_, err := st.Buy(ctx, u.ID, it.ID)
					allowed("buy", err, store.ErrInsufficientFunds)
					_, err = st.Sell(ctx, u.ID, it.ID)
					allowed("sell", err, store.ErrNotOwner)
				}
			}
		})
		wg.Go(func() {
			for i := range 40 {
				_, err := st.Grant(ctx, admin.ID, u.ID, int64(i%3-1)*5)
				allowed("grant", err, store.ErrInsufficientFunds)
			}
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		wg.Wait()
		storetest.AssertHealthy(t, st)
	})
}

// Backup writes a copy that passes check, refuses to overwrite a file, and on PostgreSQL
// points to pg_dump. (main's TestBackupWhileTrading takes one under a trading load.)
func TestBackup(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := newStore(t)
		u := storetest.CreateUser(t, st, "trader")
		it := storetest.AddItem(t, st, "A", 7)
		if _, err := st.Buy(ctx, u.ID, it.ID); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "copy.db")
		problems, err := st.Backup(ctx, out)
		if storetest.OnPostgres(t) {
			if !errors.Is(err, store.ErrBackupUnsupported) {
				t.Errorf("backup on PostgreSQL: %v", err)
			}
			return
		}
		if err != nil || len(problems) > 0 {
			t.Fatalf("backup: %v %v", problems, err)
		}
		if got := storetest.Owner(t, storetest.OpenAt(t, out), it.ID); got != u.ID {
			t.Errorf("the copy's item owner: %d, want %d", got, u.ID)
		}
		if _, err := st.Backup(ctx, out); err == nil {
			t.Error("a backup over an existing file was not refused")
		}
	})
}

func TestAdminListsAndGlance(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := newStore(t)
		if _, err := st.Seed(ctx); err != nil {
			t.Fatal(err)
		}
		u := storetest.CreateUser(t, st, "alice")
		p, err := st.AdminItems(ctx, store.MarketQuery{})
		if err != nil || p.Total != 26 {
			t.Fatalf("admin items: %d %v", p.Total, err)
		}
		if _, err := st.Buy(ctx, u.ID, p.Items[0].ID); err != nil {
			t.Fatal(err)
		}
		p, _ = st.AdminItems(ctx, store.MarketQuery{})
		if p.Total != 26 || p.Items[0].Owner != "alice" {
			t.Errorf("an owned item is listed with its owner: %+v", p.Items[0])
		}
		g, err := st.MarketGlance(ctx, time.Now())
		if err != nil || g.Hourly[23] != 1 || g.Owned != p.Items[0].Price || g.Budgets != store.StartingBudget-g.Owned {
			t.Errorf("glance: %+v %v", g, err)
		}
		if up, err := st.UsersPaged(ctx, 9); err != nil || up.Page != 1 || len(up.Users) != 1 {
			t.Errorf("users page: %+v %v", up, err)
		}
	})
}
