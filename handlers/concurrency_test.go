package handlers_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"market/store"
)

// outcome is what one user was told about one request.
type outcome struct {
	user   int
	item   store.Item
	buying bool
	status int
	body   string
	err    error
}

// Fifty browsers over ten accounts buy and sell the same few items as fast as they can, through
// real HTTP. Every answer is a 200 with one of the contract's messages; afterwards every success
// a user was shown is in the database exactly once, and no money was made or lost.
func TestConcurrentTradingOverHTTP(t *testing.T) {
	const (
		users    = 10
		browsers = 50
		duration = 3 * time.Second // at least; longer until enough trades succeeded
		enough   = 100             // successful trades for the load to mean something
		limit    = 60 * time.Second
	)
	app := newTestApp(t)
	var items []store.Item
	for _, name := range []string{"Mouse", "Kettle", "Desk Lamp", "Phone", "Laptop"} {
		items = append(items, app.item(name))
	}
	// One transport for all, with enough idle connections that the load does not churn ports.
	transport := &http.Transport{MaxIdleConns: browsers, MaxIdleConnsPerHost: browsers}
	t.Cleanup(transport.CloseIdleConnections)
	type account struct {
		id    int64
		hc    *http.Client
		token string
	}
	accounts := make([]account, users)
	for i := range accounts {
		name := fmt.Sprintf("trader%02d", i)
		c := app.signUp(name)
		u, err := app.store.Authenticate(context.Background(), name, "correct horse")
		if err != nil {
			t.Fatal(err)
		}
		accounts[i] = account{id: u.ID, token: c.token(), hc: &http.Client{Jar: c.hc.Jar, Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	}

	post := func(a account, form url.Values) (int, string, error) {
		req, err := http.NewRequest(http.MethodPost, app.server.URL+"/market", strings.NewReader(form.Encode()))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", app.server.URL)
		req.Header.Set("HX-Request", "true")
		req.Header.Set("X-CSRF-Token", a.token)
		res, err := a.hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, string(b), err
	}

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		outcomes  []outcome
		searches  int
		succeeded atomic.Int64
	)
	// The browsers trade for duration, and on until enough trades succeeded: a slow machine
	// (the race detector, other load) gets the same amount of work done, not the same seconds.
	start := time.Now()
	going := func() bool {
		elapsed := time.Since(start)
		return elapsed < duration || succeeded.Load() < enough && elapsed < limit
	}
	for b := range browsers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(b), 42))
			u := b % users
			var (
				mine []outcome
				held []store.Item
			)
			for going() {
				if rng.IntN(10) == 0 { // now and then a search, as people type
					res, err := accounts[u].hc.Get(app.server.URL + "/market?q=e&sort=-price")
					if err == nil {
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
						if res.StatusCode != http.StatusOK {
							err = fmt.Errorf("search: status %d", res.StatusCode)
						}
					}
					if err != nil {
						mine = append(mine, outcome{user: u, err: err})
					}
					mu.Lock()
					searches++
					mu.Unlock()
					continue
				}
				// Mostly sell back what this browser bought (another browser of the same account
				// may have sold it first), else try to buy any of the items.
				o := outcome{user: u, item: items[rng.IntN(len(items))], buying: true}
				if len(held) > 0 && rng.IntN(3) > 0 {
					k := rng.IntN(len(held))
					o.item, o.buying = held[k], false
					held = slices.Delete(held, k, k+1)
				}
				field := "sold_item"
				if o.buying {
					field = "purchase_item"
				}
				o.status, o.body, o.err = post(accounts[u], url.Values{field: {id(o.item)}})
				if o.buying && strings.Contains(o.body, "Purchased ") {
					held = append(held, o.item)
				}
				if strings.Contains(o.body, "Purchased ") || strings.Contains(o.body, " back to the market!") {
					succeeded.Add(1)
				}
				mine = append(mine, o)
			}
			mu.Lock()
			outcomes = append(outcomes, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	// What the users were told.
	net := make([]int64, users)           // money moved by the successes each user saw
	holds := make([]map[int64]int, users) // purchases minus sales each user saw, per item
	for i := range holds {
		holds[i] = map[int64]int{}
	}
	successes, refusals := 0, 0
	for _, o := range outcomes {
		if o.err != nil {
			t.Errorf("user %d: %v", o.user, o.err)
			continue
		}
		if o.item.ID == 0 { // a search that went well
			continue
		}
		if o.status != http.StatusOK {
			t.Errorf("user %d: status %d: %.200s", o.user, o.status, o.body)
			continue
		}
		doc := response{body: o.body}.doc(t)
		msg := messages(doc)
		name := o.item.Name
		switch {
		case o.buying && msg == "Purchased "+name+"!":
			net[o.user] -= o.item.Price
			holds[o.user][o.item.ID]++
			successes++
		case !o.buying && msg == "Sold "+name+" back to the market!":
			net[o.user] += o.item.Price
			holds[o.user][o.item.ID]--
			successes++
		case o.buying && (msg == name+" is no longer available." || msg == "You don't have enough budget to purchase "+name+"."),
			!o.buying && msg == "You don't own "+name+".":
			refusals++
		default:
			t.Errorf("user %d %s %s: unexpected message %q", o.user, map[bool]string{true: "buying", false: "selling"}[o.buying], name, msg)
			continue
		}
		if strings.Contains(o.body, "<body") || len(o.body) >= 2048 {
			t.Errorf("trade answer is not a small fragment: %d bytes", len(o.body))
		}
		if doc.Find(`#budget[hx-swap-oob="true"]`).Length() != 1 {
			t.Errorf("trade answer lacks the budget: %.200s", o.body)
		}
	}
	t.Logf("%d trade answers (%d succeeded, %d refused) and %d searches in %s: %.0f trades/s, %.0f requests/s",
		successes+refusals, successes, refusals, searches, elapsed.Round(time.Millisecond),
		float64(successes+refusals)/elapsed.Seconds(), float64(successes+refusals+searches)/elapsed.Seconds())
	if successes < 20 {
		t.Errorf("only %d trades succeeded: the load did not exercise much", successes)
	}

	// What the database says.
	ctx := context.Background()
	if problems, err := app.store.Check(ctx); err != nil || len(problems) > 0 {
		t.Errorf("check: %v %q", err, problems)
	}
	tot, err := app.store.Totals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tot.Budgets+tot.Owned != tot.Granted || tot.Granted != users*store.StartingBudget {
		t.Errorf("money created or lost: budgets %d + owned %d, granted %d (want %d)",
			tot.Budgets, tot.Owned, tot.Granted, users*store.StartingBudget)
	}
	owners := map[int64]int64{}
	for _, it := range items {
		got, err := app.store.Item(ctx, it.ID)
		if err != nil {
			t.Fatal(err)
		}
		owners[it.ID] = got.OwnerID
	}
	for u, a := range accounts {
		got, err := app.store.User(ctx, a.id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Budget != store.StartingBudget+net[u] {
			t.Errorf("trader%02d: budget %d, but the answers they saw add up to %d", u, got.Budget, store.StartingBudget+net[u])
		}
		for _, it := range items {
			want := 0
			if owners[it.ID] == a.id {
				want = 1
			}
			if holds[u][it.ID] != want {
				t.Errorf("trader%02d was told of %d more purchases than sales of %s; owner is user %d",
					u, holds[u][it.ID], it.Name, owners[it.ID])
			}
		}
		p, err := app.store.Ledger(ctx, a.id, 1)
		if err != nil {
			t.Fatal(err)
		}
		told := 0
		for _, o := range outcomes {
			if o.user == u && o.err == nil && o.status == 200 && o.item.ID != 0 &&
				(strings.Contains(o.body, "Purchased ") || strings.Contains(o.body, " back to the market!")) {
				told++
			}
		}
		if p.Total != told+1 { // the opening grant, then one row per trade
			t.Errorf("trader%02d: %d ledger rows, want %d trades and the grant", u, p.Total, told)
		}
	}
}
