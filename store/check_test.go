package store_test

import (
	"context"
	"strings"
	"testing"

	"market/store"
	"market/store/storetest"
)

func TestCheckHealthy(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := newStore(t)
		if _, err := st.Seed(ctx); err != nil {
			t.Fatal(err)
		}
		if problems, err := st.Check(ctx); err != nil || problems != nil {
			t.Fatalf("empty market: problems %q, err %v", problems, err)
		}
		alice, bob := storetest.CreateUser(t, st, "alice"), storetest.CreateUser(t, st, "bob")
		lamp, mug := storetest.AddItem(t, st, "Lamp", 250), storetest.AddItem(t, st, "Mug", 15)
		for _, step := range []func() error{
			func() error { _, err := st.Buy(ctx, alice.ID, lamp.ID); return err },
			func() error { _, err := st.Buy(ctx, bob.ID, mug.ID); return err },
			func() error { _, err := st.Sell(ctx, alice.ID, lamp.ID); return err },
			func() error { _, err := st.Buy(ctx, bob.ID, lamp.ID); return err },
		} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		if problems, err := st.Check(ctx); err != nil || problems != nil {
			t.Fatalf("after trades: problems %q, err %v", problems, err)
		}
	})
}

// Check reports data that was changed behind the store's back, in words that name the problem.
func TestCheckFindsCorruption(t *testing.T) { storetest.Each(t, testCheckFindsCorruption) }

func testCheckFindsCorruption(t *testing.T) {
	tests := []struct {
		name    string
		corrupt string   // SQL run behind the store's back; alice owns the Lamp, the Mug is on sale
		want    []string // each must appear in one problem line
	}{
		{"budget raised without a ledger row", `UPDATE users SET budget = budget + 5 WHERE username = 'alice'`,
			[]string{"user alice: budget 755 but ledger sums to 750", "money: budgets 1755 + owned items 250 = 2005, but 2000 was granted (+5)"}},
		{"budget lowered without a ledger row", `UPDATE users SET budget = budget - 100 WHERE username = 'bob'`,
			[]string{"user bob: budget 900 but ledger sums to 1000", "but 2000 was granted (-100)"}},
		{"item given away without a trade", `UPDATE items SET owner_id = (SELECT id FROM users WHERE username = 'bob') WHERE name = 'Mug'`,
			[]string{"item Mug: owner 2 but its last trade says market", "money: budgets 1750 + owned items 265 = 2015, but 2000 was granted (+15)"}},
		{"item taken back without a sale", `UPDATE items SET owner_id = NULL WHERE name = 'Lamp'`,
			[]string{"item Lamp: owner market but its last trade says 1", "(-250)"}},
		{"owner disagrees with the last trade", `UPDATE items SET owner_id = (SELECT id FROM users WHERE username = 'bob') WHERE name = 'Lamp'`,
			[]string{"item Lamp: owner 2 but its last trade says 1"}},
		{"ledger row deleted", `DELETE FROM trades WHERE kind = 'buy'`,
			[]string{"user alice: budget 750 but ledger sums to 1000", "item Lamp: owner 1 but its last trade says market"}},
		{"negative budget", `PRAGMA ignore_check_constraints = ON; UPDATE users SET budget = -5 WHERE username = 'bob'`,
			[]string{"user bob: negative budget -5", "user bob: budget -5 but ledger sums to 1000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st := newStore(t)
			alice := storetest.CreateUser(t, st, "alice")
			storetest.CreateUser(t, st, "bob")
			lamp := storetest.AddItem(t, st, "Lamp", 250)
			storetest.AddItem(t, st, "Mug", 15)
			if _, err := st.Buy(ctx, alice.ID, lamp.ID); err != nil {
				t.Fatal(err)
			}
			storetest.AssertHealthy(t, st)

			db := rawDB(t, st)
			conn, err := db.Conn(ctx) // one connection, so a PRAGMA holds for the UPDATE
			if err != nil {
				t.Fatal(err)
			}
			corrupt := tt.corrupt
			if storetest.OnPostgres(t) { // no pragma there: drop the constraint instead
				corrupt = strings.Replace(corrupt, "PRAGMA ignore_check_constraints = ON",
					"ALTER TABLE users DROP CONSTRAINT users_budget_check", 1)
			}
			for _, q := range strings.Split(corrupt, ";") {
				if _, err := conn.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			conn.Close()

			problems, err := st.Check(ctx)
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(problems, "\n")
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("problems lack %q; got:\n%s", w, all)
				}
			}
		})
	}
}

func TestTotals(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := newStore(t)
		if got, _ := st.Totals(ctx); got != (store.Totals{}) {
			t.Errorf("empty store totals %+v", got)
		}
		alice := storetest.CreateUser(t, st, "alice")
		storetest.CreateUser(t, st, "bob")
		lamp := storetest.AddItem(t, st, "Lamp", 250)
		storetest.AddItem(t, st, "Mug", 15) // on the market: nobody's money
		if _, err := st.Buy(ctx, alice.ID, lamp.ID); err != nil {
			t.Fatal(err)
		}
		want := store.Totals{Budgets: 1750, Owned: 250, Granted: 2000}
		if got, _ := st.Totals(ctx); got != want {
			t.Errorf("totals %+v, want %+v", got, want)
		}
	})
}
