package storetest

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"market/store"
)

// Exec runs query on db, failing the test on an error.
func Exec(t testing.TB, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// CreateUser signs name up (name@example.com, password "correct horse").
func CreateUser(t testing.TB, st *store.Store, name string) store.User {
	t.Helper()
	u, err := st.CreateUser(context.Background(), name, name+"@example.com", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// AddItem puts an item on the market directly, with the price a test needs. An item on the
// market holds no one's money, so this changes no money invariant.
func AddItem(t testing.TB, st *store.Store, name string, price int64) store.Item {
	t.Helper()
	db := RawDB(t, st)
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

// Budget is the user's budget.
func Budget(t testing.TB, st *store.Store, id int64) int64 {
	t.Helper()
	u, err := st.User(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u.Budget
}

// Owner is the item's owner (0: the market).
func Owner(t testing.TB, st *store.Store, id int64) int64 {
	t.Helper()
	it, err := st.Item(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return it.OwnerID
}

// AssertHealthy fails unless Check finds nothing and money balances.
func AssertHealthy(t testing.TB, st *store.Store) {
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

// WaitFor waits up to 30 s for cond, looking every 5 ms.
func WaitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond) // polling, bounded by the deadline
	}
}

// Ledger is every row of a user's ledger, oldest first.
func Ledger(t testing.TB, st *store.Store, userID int64) []store.LedgerEntry {
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

// LedgerSum is what the entries add up to.
func LedgerSum(entries []store.LedgerEntry) int64 {
	var sum int64
	for _, e := range entries {
		sum += e.Amount
	}
	return sum
}

// SessionExpiry is how long the database will keep the session token, from now (0: none).
func SessionExpiry(t testing.TB, st *store.Store, token string) time.Duration {
	t.Helper()
	query := `SELECT (expiry - julianday('now')) * 86400 FROM sessions WHERE token = ?`
	if store.IsPostgres(st.Path()) {
		query = `SELECT extract(epoch FROM expiry - now())::float8 FROM sessions WHERE token = ?`
	}
	var seconds float64
	err := RawDB(t, st).QueryRow(query, token).Scan(&seconds)
	if err == sql.ErrNoRows {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(seconds * float64(time.Second))
}

// ExpireSession moves the session token's expiry a second into the past, behind the store's back.
func ExpireSession(t testing.TB, st *store.Store, token string) {
	t.Helper()
	expire := `UPDATE sessions SET expiry = julianday('now') - 1.0/86400 WHERE token = ?`
	if store.IsPostgres(st.Path()) {
		expire = `UPDATE sessions SET expiry = now() - interval '1 second' WHERE token = ?`
	}
	Exec(t, RawDB(t, st), expire, token)
}

// HoldWriter takes the database's write lock on a connection of its own until the returned
// function (also run when the test ends) lets it go: SQLite's, or, on PostgreSQL, an exclusive
// lock of table (reads go on, writes wait).
func HoldWriter(t testing.TB, st *store.Store, table string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := RawDB(t, st).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lock := []string{"BEGIN IMMEDIATE"}
	if store.IsPostgres(st.Path()) {
		lock = []string{"BEGIN", "LOCK TABLE " + table + " IN EXCLUSIVE MODE"}
	}
	for _, q := range lock {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			conn.ExecContext(ctx, "ROLLBACK")
			conn.Close()
		})
	}
	t.Cleanup(release)
	return release
}
