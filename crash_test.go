// Crash safety: the server killed at random moments under a trading load loses no answered trade.

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"market/handlers/webtest"
	"market/store"
	"market/store/storetest"
)

// trader buys and sells only its own items, so that every answer it gets says exactly what
// the database must now hold for them.
type trader struct {
	*webtest.Client
	id    int64
	items []store.Item
	owned map[int64]bool // what the answers so far say this trader owns
	// pending is the trade in flight when the server died: it may or may not have happened.
	pending *store.Item
	acked   int
	total   *atomic.Int64 // the answered trades of every trader in this round
}

// trade runs until stop is closed or the server stops answering. Every answer must be the
// success message: the trader only buys what is on sale and sells what it owns.
func (tr *trader) trade(rng *rand.Rand, stop <-chan struct{}) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		it := tr.items[rng.IntN(len(tr.items))]
		sell, want := tr.owned[it.ID], "Purchased "+it.Name+"!"
		if sell {
			want = "Sold " + it.Name + " back to the market!"
		}
		tr.pending = &it
		res, err := tr.Trade(it.ID, sell)
		if err != nil {
			return nil // the server is gone; the trade in flight is pending
		}
		tr.pending = nil
		if res.StatusCode != http.StatusOK || !strings.Contains(res.Body, "<p>"+want+"</p>") {
			return fmt.Errorf("%s sell=%v %s: %d %.300s", tr.Name, sell, it.Name, res.StatusCode, res.Body)
		}
		tr.owned[it.ID] = !tr.owned[it.ID]
		tr.acked++
		tr.total.Add(1)
	}
}

// Kill the server at random moments under a trading load and start it again on the same
// database: every trade that was answered as done is still done, and check passes each time.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the server")
	}
	const rounds = 8
	c := newCrashTest(t)
	totalAcked := 0
	for round := 1; round <= rounds; round++ {
		if round > 1 {
			c.srv = startServer(t, c.bin, c.db)
		}
		c.killUnderLoad(round)
		out, err := runAdmin(t, c.bin, c.db, "check")
		if err != nil || !strings.HasPrefix(out, "ok:") {
			t.Fatalf("round %d: check after SIGKILL: %v\n%s", round, err, out)
		}
		acked, pending := c.verify(round)
		totalAcked += acked
		t.Logf("round %d: killed after %d answered trades (%d in flight); check: %s", round, acked, pending, strings.TrimSpace(out))
	}
	if totalAcked < rounds {
		t.Errorf("only %d trades were answered in %d rounds: the load did not run", totalAcked, rounds)
	}
}

// crashTest is the state TestCrashSafety carries from round to round: one database, the
// server running on it now, and the traders with what their answers told them.
type crashTest struct {
	t       *testing.T
	bin, db string
	srv     *process
	traders []*trader
	rng     *rand.Rand
	acked   atomic.Int64 // the answered trades of the round under way
}

// newCrashTest starts the server on a fresh database and signs up four traders, three cheap
// items each: together they can always afford all of them.
func newCrashTest(t *testing.T) *crashTest {
	c := &crashTest{t: t, bin: buildBinary(t)}
	c.db = storetest.URL(t) // SQLite, or PostgreSQL when the environment names a cluster
	c.srv = startServer(t, c.bin, c.db)

	st := c.openStore()
	page, err := st.Market(context.Background(), store.MarketQuery{Sort: store.SortPrice})
	st.Close()
	if err != nil || len(page.Items) < 12 {
		t.Fatalf("market: %d items, %v", len(page.Items), err)
	}
	c.traders = make([]*trader, 4)
	for i := range c.traders {
		tr := &trader{Client: signUp(t, c.srv.url, fmt.Sprintf("trader%d", i)), owned: map[int64]bool{}, total: &c.acked}
		if err := tr.LoadToken("/market"); err != nil {
			t.Fatal(err)
		}
		for j := i; j < 12; j += 4 {
			tr.items = append(tr.items, page.Items[j])
		}
		c.traders[i] = tr
	}
	c.rng = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	return c
}

// openStore opens the test's database directly, beside the server.
func (c *crashTest) openStore() *store.Store {
	st, err := store.Open(context.Background(), c.db, store.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}

// killUnderLoad sets every trader trading, kills the server with SIGKILL at a random moment
// (once the traders have been answered a random number of trades, 1 to 300), and reports
// what the traders saw.
func (c *crashTest) killUnderLoad(round int) {
	c.acked.Store(0)
	stop := make(chan struct{})
	errs := make(chan error, len(c.traders))
	var wg sync.WaitGroup
	var ended atomic.Int32
	for _, tr := range c.traders {
		tr.acked = 0
		tr.Base = c.srv.url // a new port each round; the cookies (per host) still hold
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- tr.trade(rand.New(rand.NewPCG(c.rng.Uint64(), 1)), stop)
			ended.Add(1)
		}()
	}
	target := int64(1 + c.rng.IntN(300))
	waitFor(c.t, fmt.Sprintf("%d answered trades", target), 60*time.Second, func() bool {
		return c.acked.Load() >= target || ended.Load() == int32(len(c.traders)) // or a trader failed
	})
	if err := c.srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	<-c.srv.done
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			c.t.Errorf("round %d: %v", round, err)
		}
	}
}

// verify checks that every answered trade is in the database (the one in flight went one way
// or the other), and returns how many trades were answered and how many were in flight.
func (c *crashTest) verify(round int) (acked, pending int) {
	st := c.openStore()
	defer st.Close()
	for _, tr := range c.traders {
		acked += tr.acked
		if c.verifyTrader(st, round, tr) {
			pending++
		}
	}
	return acked, pending
}

// verifyTrader checks one trader's items and budget against what its answers said, taking
// the trade in flight as it went; it reports whether there was one.
func (c *crashTest) verifyTrader(st *store.Store, round int, tr *trader) bool {
	t := c.t
	ctx := context.Background()
	if tr.id == 0 {
		u, err := st.Authenticate(ctx, tr.Name, webtest.Password)
		if err != nil {
			t.Fatal(err)
		}
		tr.id = u.ID
	}
	var spent int64
	for _, it := range tr.items {
		got, err := st.Item(ctx, it.ID)
		if err != nil {
			t.Fatal(err)
		}
		owns := got.OwnerID == tr.id
		if owns != tr.owned[it.ID] {
			if tr.pending == nil || tr.pending.ID != it.ID {
				t.Errorf("round %d: %s was told it owns %s: %v, but the database says owner %d",
					round, tr.Name, it.Name, tr.owned[it.ID], got.OwnerID)
			}
			tr.owned[it.ID] = owns // the trade in flight did happen
		}
		if got.OwnerID != 0 && got.OwnerID != tr.id {
			t.Errorf("round %d: %s belongs to user %d, who never traded it", round, it.Name, got.OwnerID)
		}
		if owns {
			spent += it.Price
		}
	}
	inFlight := tr.pending != nil
	tr.pending = nil
	u, err := st.User(ctx, tr.id)
	if err != nil {
		t.Fatal(err)
	}
	if u.Budget != store.StartingBudget-spent {
		t.Errorf("round %d: %s has %d, but owns items worth %d of its %d", round, tr.Name, u.Budget, spent, store.StartingBudget)
	}
	return inFlight
}
