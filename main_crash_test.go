// Crash safety: the server killed at random moments under a trading load loses no answered trade.

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"market/store"
	"market/store/storetest"
)

// trader buys and sells only its own items, so that every answer it gets says exactly what
// the database must now hold for them.
type trader struct {
	*browser
	id    int64
	items []store.Item
	owned map[int64]bool // what the answers so far say this trader owns
	// pending is the trade in flight when the server died: it may or may not have happened.
	pending *store.Item
	acked   int
}

// trade runs until stop is closed or the server stops answering. Every answer must be the
// success message: the trader only buys what is on sale and sells what it owns.
func (tr *trader) trade(base string, rng *rand.Rand, stop <-chan struct{}) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		it := tr.items[rng.IntN(len(tr.items))]
		field, want := "purchase_item", "Purchased "+it.Name+"!"
		if tr.owned[it.ID] {
			field, want = "sold_item", "Sold "+it.Name+" back to the market!"
		}
		tr.pending = &it
		res, body, err := tr.post(base, "/market", url.Values{field: {strconv.FormatInt(it.ID, 10)}},
			map[string]string{"HX-Request": "true", "X-CSRF-Token": tr.token})
		if err != nil {
			return nil // the server is gone; the trade in flight is pending
		}
		tr.pending = nil
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "<p>"+want+"</p>") {
			return fmt.Errorf("%s %s %s: %d %.300s", tr.name, field, it.Name, res.StatusCode, body)
		}
		tr.owned[it.ID] = !tr.owned[it.ID]
		tr.acked++
	}
}

// Kill the server at random moments under a trading load and start it again on the same
// database: every trade that was answered as done is still done, and check passes each time.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the server")
	}
	const rounds = 8
	bin := buildBinary(t)
	db := storetest.URL(t) // SQLite, or PostgreSQL when MARKET_TEST_POSTGRES says so
	srv := startServer(t, bin, db)

	// Four traders, three cheap items each: together they can always afford all of them.
	st, err := store.Open(context.Background(), db, store.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	page, err := st.Market(context.Background(), store.MarketQuery{Sort: store.SortPrice})
	st.Close()
	if err != nil || len(page.Items) < 12 {
		t.Fatalf("market: %d items, %v", len(page.Items), err)
	}
	traders := make([]*trader, 4)
	for i := range traders {
		traders[i] = &trader{browser: newBrowser(fmt.Sprintf("trader%d", i)), owned: map[int64]bool{}}
		traders[i].register(t, srv.url)
		if err := traders[i].loadToken(srv.url, "/market"); err != nil {
			t.Fatal(err)
		}
		for j := i; j < 12; j += 4 {
			traders[i].items = append(traders[i].items, page.Items[j])
		}
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	totalAcked := 0
	for round := 1; round <= rounds; round++ {
		if round > 1 {
			srv = startServer(t, bin, db)
		}
		stop := make(chan struct{})
		errs := make(chan error, len(traders))
		var wg sync.WaitGroup
		for _, tr := range traders {
			tr.acked = 0
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- tr.trade(srv.url, rand.New(rand.NewPCG(rng.Uint64(), 1)), stop)
			}()
		}
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-srv.done
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("round %d: %v", round, err)
			}
		}

		out, err := runAdmin(t, bin, db, "check")
		if err != nil || !strings.HasPrefix(out, "ok:") {
			t.Fatalf("round %d: check after SIGKILL: %v\n%s", round, err, out)
		}

		// Every answered trade is in the database; the one in flight went one way or the other.
		st, err := store.Open(context.Background(), db, store.Options{BcryptCost: bcrypt.MinCost})
		if err != nil {
			t.Fatal(err)
		}
		acked, pending := 0, 0
		for _, tr := range traders {
			acked += tr.acked
			if tr.id == 0 {
				u, err := st.Authenticate(context.Background(), tr.name, "correct horse")
				if err != nil {
					t.Fatal(err)
				}
				tr.id = u.ID
			}
			var spent int64
			for _, it := range tr.items {
				got, err := st.Item(context.Background(), it.ID)
				if err != nil {
					t.Fatal(err)
				}
				owns := got.OwnerID == tr.id
				if owns != tr.owned[it.ID] {
					if tr.pending == nil || tr.pending.ID != it.ID {
						t.Errorf("round %d: %s was told it owns %s: %v, but the database says owner %d",
							round, tr.name, it.Name, tr.owned[it.ID], got.OwnerID)
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
			if tr.pending != nil {
				pending++
			}
			tr.pending = nil
			u, err := st.User(context.Background(), tr.id)
			if err != nil {
				t.Fatal(err)
			}
			if u.Budget != store.StartingBudget-spent {
				t.Errorf("round %d: %s has %d, but owns items worth %d of its %d", round, tr.name, u.Budget, spent, store.StartingBudget)
			}
		}
		st.Close()
		totalAcked += acked
		t.Logf("round %d: killed after %d answered trades (%d in flight); check: %s", round, acked, pending, strings.TrimSpace(out))
	}
	if totalAcked < rounds {
		t.Errorf("only %d trades were answered in %d rounds: the load did not run", totalAcked, rounds)
	}
}
