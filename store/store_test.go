package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"market/store"
	"market/store/storetest"
)

// newStore opens a fresh database (SQLite in t.TempDir(), or PostgreSQL: see storetest) with
// cheap password hashes.
func newStore(t testing.TB) *store.Store {
	t.Helper()
	return storetest.Open(t)
}

// exactVersion is the store's version once it is exact, as caches and event ids take it: on
// PostgreSQL a read while an older transaction of the store's database still runs (a trade in
// flight) stays at that transaction's horizon for a moment.
func exactVersion(t testing.TB, st *store.Store) int64 {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) { // polling
		v, err := st.Version(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Exact(v) {
			return v
		}
		if time.Now().After(end) {
			t.Fatalf("version %d: not exact for 10 s", v)
		}
	}
}

// rawDB is a second, ordinary connection to the store's database (see storetest.RawDB).
func rawDB(t testing.TB, st *store.Store) *sql.DB {
	t.Helper()
	return storetest.RawDB(t, st)
}

// breakLedger makes the ledger refuse rows for which cond (SQL on NEW) holds, with message,
// until dropLedgerBreak; on either engine.
func breakLedger(t testing.TB, st *store.Store, cond, message string) {
	t.Helper()
	mends[st] = storetest.BreakLedger(t, st, cond, message)
}

var mends = map[*store.Store]func(){}

func dropLedgerBreak(t testing.TB, st *store.Store) {
	t.Helper()
	mends[st]()
}

// A trade whose ledger row cannot be written must leave the money where it was: the budget,
// the item and the ledger change in one transaction or not at all.
func TestTradeIsOneTransaction(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		for _, kind := range []string{"buy", "sell"} {
			t.Run(kind, func(t *testing.T) {
				st := newStore(t)
				alice := storetest.CreateUser(t, st, "alice")
				lamp := storetest.AddItem(t, st, "Lamp", 250)
				if kind == "sell" {
					if _, err := st.Buy(ctx, alice.ID, lamp.ID); err != nil {
						t.Fatal(err)
					}
				}
				before, _ := st.Totals(ctx)
				wantBudget, wantOwner := storetest.Budget(t, st, alice.ID), storetest.Owner(t, st, lamp.ID)
				breakLedger(t, st, fmt.Sprintf(`NEW.kind = '%s'`, kind), "ledger unavailable")

				var err error
				if kind == "buy" {
					_, err = st.Buy(ctx, alice.ID, lamp.ID)
				} else {
					_, err = st.Sell(ctx, alice.ID, lamp.ID)
				}
				if err == nil || !strings.Contains(err.Error(), "ledger unavailable") {
					t.Fatalf("err = %v, want the ledger failure", err)
				}
				if got := storetest.Budget(t, st, alice.ID); got != wantBudget {
					t.Errorf("budget %d after a failed %s, want %d", got, kind, wantBudget)
				}
				if got := storetest.Owner(t, st, lamp.ID); got != wantOwner {
					t.Errorf("owner %d after a failed %s, want %d", got, kind, wantOwner)
				}
				if after, _ := st.Totals(ctx); after != before {
					t.Errorf("totals %+v → %+v", before, after)
				}
				dropLedgerBreak(t, st)
				storetest.AssertHealthy(t, st)
			})
		}
	})
}

func TestBuyUnknownBuyerChangesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := newStore(t)
		storetest.CreateUser(t, st, "alice")
		lamp := storetest.AddItem(t, st, "Lamp", 250)
		if _, err := st.Buy(ctx, 424242, lamp.ID); err == nil {
			t.Fatal("an unknown user bought an item")
		}
		if got := storetest.Owner(t, st, lamp.ID); got != 0 {
			t.Errorf("owner %d, want the market", got)
		}
		storetest.AssertHealthy(t, st)
	})
}

// Many buyers, one item: exactly one wins, everyone else keeps their money.
func TestConcurrentBuyersOneWinner(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := newStore(t)
		lamp := storetest.AddItem(t, st, "Lamp", 250)
		const n = 20
		users := make([]store.User, n)
		for i := range users {
			users[i] = storetest.CreateUser(t, st, fmt.Sprintf("buyer%02d", i))
		}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []int64
		)
		for _, u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := st.Buy(ctx, u.ID, lamp.ID)
				switch {
				case err == nil:
					mu.Lock()
					winners = append(winners, u.ID)
					mu.Unlock()
				case !errors.Is(err, store.ErrUnavailable):
					t.Errorf("buyer %s: %v", u.Username, err)
				}
			}()
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("%d buyers won, want 1", len(winners))
		}
		if got := storetest.Owner(t, st, lamp.ID); got != winners[0] {
			t.Errorf("owner %d, winner %d", got, winners[0])
		}
		for _, u := range users {
			want := int64(1000)
			if u.ID == winners[0] {
				want = 750
			}
			if got := storetest.Budget(t, st, u.ID); got != want {
				t.Errorf("%s: budget %d, want %d", u.Username, got, want)
			}
		}
		storetest.AssertHealthy(t, st)
	})
}

// Users buying and selling the same few items at once: whatever interleaving happens, each
// success is reflected exactly once, and money balances.
func TestConcurrentTradesKeepMoney(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := newStore(t)
		var items []store.Item
		for i, price := range []int64{120, 340, 560, 780} {
			items = append(items, storetest.AddItem(t, st, fmt.Sprintf("Thing %d", i), price))
		}
		const workers = 8
		var wg sync.WaitGroup
		net := make([]int64, workers) // what each worker's successes moved
		ids := make([]int64, workers)
		for w := range workers {
			ids[w] = storetest.CreateUser(t, st, fmt.Sprintf("trader%d", w)).ID
		}
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 60 {
					it := items[(w+i)%len(items)]
					var (
						tr  store.Trade
						err error
					)
					if (w+i)%3 == 0 {
						tr, err = st.Sell(ctx, ids[w], it.ID)
						if err == nil {
							net[w] += it.Price
						}
					} else {
						tr, err = st.Buy(ctx, ids[w], it.ID)
						if err == nil {
							net[w] -= it.Price
						}
					}
					if err != nil && !errors.Is(err, store.ErrUnavailable) && !errors.Is(err, store.ErrNotOwner) &&
						!errors.Is(err, store.ErrInsufficientFunds) {
						t.Errorf("trade: %v", err)
						return
					}
					if err == nil && tr.Budget != 1000+net[w] {
						t.Errorf("trader%d: trade says budget %d, successes say %d", w, tr.Budget, 1000+net[w])
					}
				}
			}()
		}
		wg.Wait()
		for w := range workers {
			if got := storetest.Budget(t, st, ids[w]); got != 1000+net[w] {
				t.Errorf("trader%d: budget %d, successes say %d", w, got, 1000+net[w])
			}
		}
		storetest.AssertHealthy(t, st)
	})
}
