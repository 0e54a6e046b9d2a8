package store_test

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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
// PostgreSQL a read while an older transaction of the cluster still runs (another test's
// database, in CI) stays at that transaction's horizon for a moment.
func exactVersion(t testing.TB, st *store.Store) int64 {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) { // polling
		v, err := st.Version(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if store.Exact(v) {
			return v
		}
		if time.Now().After(end) {
			t.Fatalf("version %d: not exact for 10 s", v)
		}
	}
}

func openStore(t testing.TB, path string) *store.Store {
	t.Helper()
	return storetest.OpenAt(t, path)
}

// rawDB is a second, ordinary connection to the store's file: fixtures and corruption go
// through it, behind the store's back, as another program would. On PostgreSQL it is the
// store's own pool, which takes the same ? placeholders.
func rawDB(t testing.TB, st *store.Store) *sql.DB {
	t.Helper()
	if storetest.Postgres() {
		return st.DB()
	}
	db, err := sql.Open("sqlite3", "file:"+st.Path()+"?_foreign_keys=on&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// breakLedger makes the ledger refuse rows for which cond (SQL on NEW) holds, with message,
// until dropLedgerBreak; on either engine.
func breakLedger(t testing.TB, st *store.Store, cond, message string) {
	t.Helper()
	if !storetest.Postgres() {
		exec(t, rawDB(t, st), fmt.Sprintf(`CREATE TRIGGER ledger_down BEFORE INSERT ON trades
			WHEN %s BEGIN SELECT RAISE(ABORT, '%s'); END`, cond, message))
		return
	}
	exec(t, rawDB(t, st), fmt.Sprintf(`CREATE FUNCTION ledger_down() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION '%s'; END $$`, message))
	exec(t, rawDB(t, st), fmt.Sprintf(`CREATE TRIGGER ledger_down BEFORE INSERT ON trades
		FOR EACH ROW WHEN (%s) EXECUTE FUNCTION ledger_down()`, cond))
}

func dropLedgerBreak(t testing.TB, st *store.Store) {
	t.Helper()
	if storetest.Postgres() {
		exec(t, rawDB(t, st), `DROP TRIGGER ledger_down ON trades`)
		return
	}
	exec(t, rawDB(t, st), `DROP TRIGGER ledger_down`)
}

func exec(t testing.TB, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func createUser(t testing.TB, st *store.Store, name string) store.User {
	t.Helper()
	u, err := st.CreateUser(context.Background(), name, name+"@example.com", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// addItem puts an item on the market directly, with the price a test needs. An item on the
// market holds no one's money, so this changes no money invariant.
func addItem(t testing.TB, st *store.Store, name string, price int64) store.Item {
	t.Helper()
	db := rawDB(t, st)
	var n int64
	db.QueryRow(`SELECT count(*) FROM items`).Scan(&n)
	var id int64
	err := db.QueryRow(`INSERT INTO items (name, price, barcode) VALUES (?, ?, ?) RETURNING id`,
		name, price, store.Barcode(7_000_000_000+n)).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return store.Item{ID: id, Name: name, Price: price, Barcode: store.Barcode(7_000_000_000 + n)}
}

func budget(t testing.TB, st *store.Store, id int64) int64 {
	t.Helper()
	u, err := st.User(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u.Budget
}

func owner(t testing.TB, st *store.Store, id int64) int64 {
	t.Helper()
	it, err := st.Item(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return it.OwnerID
}

// ledger is every row of a user's ledger, oldest first.
func ledger(t testing.TB, st *store.Store, userID int64) []store.LedgerEntry {
	t.Helper()
	var all []store.LedgerEntry
	for page := 1; ; page++ {
		p, err := st.Ledger(context.Background(), userID, page)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Entries...)
		if page >= p.Pages {
			break
		}
	}
	slices.SortFunc(all, func(a, b store.LedgerEntry) int { return cmp.Compare(a.ID, b.ID) })
	return all
}

func ledgerSum(entries []store.LedgerEntry) int64 {
	var sum int64
	for _, e := range entries {
		sum += e.Amount
	}
	return sum
}

// assertHealthy fails unless Check finds nothing and money balances.
func assertHealthy(t testing.TB, st *store.Store) {
	t.Helper()
	problems, err := st.Check(context.Background())
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if len(problems) > 0 {
		t.Errorf("check found problems:\n%s", strings.Join(problems, "\n"))
	}
	tot, err := st.Totals(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tot.Budgets+tot.Owned != tot.Granted {
		t.Errorf("money created or lost: budgets %d + owned %d != granted %d", tot.Budgets, tot.Owned, tot.Granted)
	}
}

// A trade whose ledger row cannot be written must leave the money where it was: the budget,
// the item and the ledger change in one transaction or not at all.
func TestTradeIsOneTransaction(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"buy", "sell"} {
		t.Run(kind, func(t *testing.T) {
			st := newStore(t)
			alice := createUser(t, st, "alice")
			lamp := addItem(t, st, "Lamp", 250)
			if kind == "sell" {
				if _, err := st.Buy(ctx, alice.ID, lamp.ID); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := st.Totals(ctx)
			wantBudget, wantOwner := budget(t, st, alice.ID), owner(t, st, lamp.ID)
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
			if got := budget(t, st, alice.ID); got != wantBudget {
				t.Errorf("budget %d after a failed %s, want %d", got, kind, wantBudget)
			}
			if got := owner(t, st, lamp.ID); got != wantOwner {
				t.Errorf("owner %d after a failed %s, want %d", got, kind, wantOwner)
			}
			if after, _ := st.Totals(ctx); after != before {
				t.Errorf("totals %+v → %+v", before, after)
			}
			dropLedgerBreak(t, st)
			assertHealthy(t, st)
		})
	}
}

func TestBuyUnknownBuyerChangesNothing(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	createUser(t, st, "alice")
	lamp := addItem(t, st, "Lamp", 250)
	if _, err := st.Buy(ctx, 424242, lamp.ID); err == nil {
		t.Fatal("an unknown user bought an item")
	}
	if got := owner(t, st, lamp.ID); got != 0 {
		t.Errorf("owner %d, want the market", got)
	}
	assertHealthy(t, st)
}

// Many buyers, one item: exactly one wins, everyone else keeps their money.
func TestConcurrentBuyersOneWinner(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	lamp := addItem(t, st, "Lamp", 250)
	const n = 20
	users := make([]store.User, n)
	for i := range users {
		users[i] = createUser(t, st, fmt.Sprintf("buyer%02d", i))
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
	if got := owner(t, st, lamp.ID); got != winners[0] {
		t.Errorf("owner %d, winner %d", got, winners[0])
	}
	for _, u := range users {
		want := int64(1000)
		if u.ID == winners[0] {
			want = 750
		}
		if got := budget(t, st, u.ID); got != want {
			t.Errorf("%s: budget %d, want %d", u.Username, got, want)
		}
	}
	assertHealthy(t, st)
}

// Users buying and selling the same few items at once: whatever interleaving happens, each
// success is reflected exactly once, and money balances.
func TestConcurrentTradesKeepMoney(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	var items []store.Item
	for i, price := range []int64{120, 340, 560, 780} {
		items = append(items, addItem(t, st, fmt.Sprintf("Thing %d", i), price))
	}
	const workers = 8
	var wg sync.WaitGroup
	net := make([]int64, workers) // what each worker's successes moved
	ids := make([]int64, workers)
	for w := range workers {
		ids[w] = createUser(t, st, fmt.Sprintf("trader%d", w)).ID
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
		if got := budget(t, st, ids[w]); got != 1000+net[w] {
			t.Errorf("trader%d: budget %d, successes say %d", w, got, 1000+net[w])
		}
	}
	assertHealthy(t, st)
}
