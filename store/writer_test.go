package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"market/store"
	"market/store/storetest"
)

// Many traders at once share group commits: every answer must still be exactly what happened,
// refusals undo only themselves, and money is conserved.
func TestGroupCommitKeepsEachAnswer(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		st := newStore(t)
		ctx := context.Background()
		const n = 40
		users := make([]store.User, n)
		for i := range users {
			users[i] = storetest.CreateUser(t, st, fmt.Sprintf("grouper%d", i))
		}
		cheap := storetest.AddItem(t, st, "Contested Lamp", 100)
		dear := storetest.AddItem(t, st, "Yacht", 5000)
		var wg sync.WaitGroup
		results := make([]error, n)
		for i := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				item := cheap.ID
				if i%2 == 1 {
					item = dear.ID // always refused: more than any budget
				}
				_, results[i] = st.Buy(ctx, users[i].ID, item)
			}()
		}
		wg.Wait()
		won := 0
		for i, err := range results {
			switch {
			case i%2 == 1 && !errors.Is(err, store.ErrInsufficientFunds):
				t.Errorf("buyer %d of the yacht: %v, want ErrInsufficientFunds", i, err)
			case i%2 == 0 && err == nil:
				won++
				if storetest.Owner(t, st, cheap.ID) != users[i].ID {
					t.Errorf("buyer %d was told yes but does not own the lamp", i)
				}
				if storetest.Budget(t, st, users[i].ID) != 900 {
					t.Errorf("winner's budget %d, want 900", storetest.Budget(t, st, users[i].ID))
				}
			case i%2 == 0 && !errors.Is(err, store.ErrUnavailable):
				t.Errorf("buyer %d of the lamp: %v, want nil or ErrUnavailable", i, err)
			case i%2 == 0:
				if storetest.Budget(t, st, users[i].ID) != 1000 {
					t.Errorf("refused buyer %d was charged", i)
				}
			}
		}
		if won != 1 {
			t.Errorf("%d buyers won the lamp, want 1", won)
		}
		storetest.AssertHealthy(t, st)
	})
}

func TestWriteAfterCloseFails(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		st := newStore(t)
		u := storetest.CreateUser(t, st, "late")
		it := storetest.AddItem(t, st, "Clock", 10)
		st.Close()
		if _, err := st.Buy(context.Background(), u.ID, it.ID); !errors.Is(err, store.ErrClosed) {
			t.Errorf("buy after close: %v, want ErrClosed", err)
		}
	})
}

func TestCancelledTradeDoesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		st := newStore(t)
		u := storetest.CreateUser(t, st, "quitter")
		it := storetest.AddItem(t, st, "Kite", 10)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := st.Buy(ctx, u.ID, it.ID); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled buy: %v, want context.Canceled", err)
		}
		if storetest.Owner(t, st, it.ID) != 0 || storetest.Budget(t, st, u.ID) != 1000 {
			t.Error("a cancelled buy changed something")
		}
	})
}

// A refusal inside a group undoes its own partial writes (here the buyer was already debited
// when the ledger refused the row) while the purchases grouped with it commit.
func TestGroupCommitRollsBackOnlyTheFailedOperation(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		st := newStore(t)
		ctx := context.Background()
		unlucky := storetest.CreateUser(t, st, "unlucky")
		breakLedger(t, st, fmt.Sprintf(`NEW.user_id = %d`, unlucky.ID), "ledger down")
		const n = 16
		buyers := make([]store.User, n)
		items := make([]store.Item, n)
		for i := range n {
			buyers[i] = storetest.CreateUser(t, st, fmt.Sprintf("lucky%d", i))
			items[i] = storetest.AddItem(t, st, fmt.Sprintf("Lucky Lamp %d", i), 100)
		}
		doomed := storetest.AddItem(t, st, "Doomed Vase", 100)
		var wg sync.WaitGroup
		errs := make([]error, n)
		var unluckyErr error
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = st.Buy(ctx, buyers[i].ID, items[i].ID)
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, unluckyErr = st.Buy(ctx, unlucky.ID, doomed.ID)
		}()
		wg.Wait()
		if unluckyErr == nil {
			t.Fatal("the buy whose ledger row failed was answered as done")
		}
		for i, err := range errs {
			if err != nil || storetest.Owner(t, st, items[i].ID) != buyers[i].ID || storetest.Budget(t, st, buyers[i].ID) != 900 {
				t.Errorf("buyer %d grouped with a failure: %v, owner %d, budget %d", i, err, storetest.Owner(t, st, items[i].ID), storetest.Budget(t, st, buyers[i].ID))
			}
		}
		if storetest.Budget(t, st, unlucky.ID) != 1000 || storetest.Owner(t, st, doomed.ID) != 0 {
			t.Errorf("the failed buy left budget %d and owner %d; want 1000 and none", storetest.Budget(t, st, unlucky.ID), storetest.Owner(t, st, doomed.ID))
		}
		dropLedgerBreak(t, st)
		storetest.AssertHealthy(t, st)
	})
}

// A refusal reports the budget that stands, not an older one: the answer may reach a page that
// has already shown a newer purchase.
func TestRefusalReportsCurrentBudget(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		st := newStore(t)
		ctx := context.Background()
		u := storetest.CreateUser(t, st, "current")
		cheap, dear := storetest.AddItem(t, st, "Cheap Cup", 300), storetest.AddItem(t, st, "Dear Desk", 900)
		if _, err := st.Buy(ctx, u.ID, cheap.ID); err != nil {
			t.Fatal(err)
		}
		tr, err := st.Buy(ctx, u.ID, dear.ID)
		if !errors.Is(err, store.ErrInsufficientFunds) || tr.Budget != 700 || tr.Item.Name != "Dear Desk" {
			t.Errorf("refused buy: %v, budget %d, item %q; want ErrInsufficientFunds, 700, Dear Desk", err, tr.Budget, tr.Item.Name)
		}
		tr, err = st.Sell(ctx, u.ID, dear.ID)
		if !errors.Is(err, store.ErrNotOwner) || tr.Budget != 700 {
			t.Errorf("refused sale: %v, budget %d; want ErrNotOwner, 700", err, tr.Budget)
		}
		if _, err := st.Buy(ctx, 424242, cheap.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("buy by a user who does not exist: %v, want ErrNotFound", err)
		}
	})
}
