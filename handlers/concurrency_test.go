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

	"github.com/PuerkitoBio/goquery"

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
	l := newTradingLoad(t)
	elapsed := l.run()
	net, holds := l.tally(elapsed)
	l.checkDatabase(net, holds)
}

// The load TestConcurrentTradingOverHTTP puts on the market.
const (
	tradingUsers    = 10
	tradingBrowsers = 50
	tradingDuration = 3 * time.Second // at least; longer until enough trades succeeded
	tradingEnough   = 100             // successful trades for the load to mean something
	tradingLimit    = 60 * time.Second
)

// tradingAccount is one of the accounts the browsers share.
type tradingAccount struct {
	id    int64
	hc    *http.Client
	token string
}

// tradingLoad is the state of TestConcurrentTradingOverHTTP: the app, the items traded, the
// accounts, and what the browsers were told.
type tradingLoad struct {
	t         *testing.T
	app       *testApp
	items     []store.Item
	accounts  []tradingAccount
	start     time.Time
	mu        sync.Mutex
	outcomes  []outcome
	searches  int
	succeeded atomic.Int64
}

// newTradingLoad signs the accounts up, each with a client over one shared transport.
func newTradingLoad(t *testing.T) *tradingLoad {
	l := &tradingLoad{t: t, app: newTestApp(t)}
	for _, name := range []string{"Mouse", "Kettle", "Desk Lamp", "Phone", "Laptop"} {
		l.items = append(l.items, l.app.item(name))
	}
	// One transport for all, with enough idle connections that the load does not churn ports.
	transport := &http.Transport{MaxIdleConns: tradingBrowsers, MaxIdleConnsPerHost: tradingBrowsers}
	t.Cleanup(transport.CloseIdleConnections)
	l.accounts = make([]tradingAccount, tradingUsers)
	for i := range l.accounts {
		name := fmt.Sprintf("trader%02d", i)
		c := l.app.signUp(name)
		u, err := l.app.store.Authenticate(context.Background(), name, "correct horse")
		if err != nil {
			t.Fatal(err)
		}
		l.accounts[i] = tradingAccount{id: u.ID, token: c.token(), hc: &http.Client{Jar: c.hc.Jar, Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	}
	return l
}

// post sends a trade as htmx does and returns the status and body.
func (l *tradingLoad) post(a tradingAccount, form url.Values) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, l.app.server.URL+"/market", strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", l.app.server.URL)
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

// run lets every browser trade for tradingDuration, and on until enough trades succeeded: a
// slow machine (the race detector, other load) gets the same amount of work done, not the same
// seconds. It returns how long that took.
func (l *tradingLoad) run() time.Duration {
	var wg sync.WaitGroup
	l.start = time.Now()
	for b := range tradingBrowsers {
		wg.Go(func() {
			mine := l.browse(b)
			l.mu.Lock()
			l.outcomes = append(l.outcomes, mine...)
			l.mu.Unlock()
		})
	}
	wg.Wait()
	return time.Since(l.start)
}

// going reports whether the browsers should go on trading.
func (l *tradingLoad) going() bool {
	elapsed := time.Since(l.start)
	return elapsed < tradingDuration || l.succeeded.Load() < tradingEnough && elapsed < tradingLimit
}

// browse is one browser: it trades, now and then searches, and returns what it was told.
func (l *tradingLoad) browse(b int) []outcome {
	rng := rand.New(rand.NewPCG(uint64(b), 42))
	u := b % tradingUsers
	var (
		mine []outcome
		held []store.Item
	)
	for l.going() {
		if rng.IntN(10) == 0 { // now and then a search, as people type
			if err := l.search(u); err != nil {
				mine = append(mine, outcome{user: u, err: err})
			}
			l.mu.Lock()
			l.searches++
			l.mu.Unlock()
			continue
		}
		// Mostly sell back what this browser bought (another browser of the same account
		// may have sold it first), else try to buy any of the items.
		o := outcome{user: u, item: l.items[rng.IntN(len(l.items))], buying: true}
		if len(held) > 0 && rng.IntN(3) > 0 {
			k := rng.IntN(len(held))
			o.item, o.buying = held[k], false
			held = slices.Delete(held, k, k+1)
		}
		field := "sold_item"
		if o.buying {
			field = "purchase_item"
		}
		o.status, o.body, o.err = l.post(l.accounts[u], url.Values{field: {id(o.item)}})
		if o.buying && strings.Contains(o.body, "Purchased ") {
			held = append(held, o.item)
		}
		if strings.Contains(o.body, "Purchased ") || strings.Contains(o.body, " back to the market!") {
			l.succeeded.Add(1)
		}
		mine = append(mine, o)
	}
	return mine
}

// search asks for the market as a search does, as user u.
func (l *tradingLoad) search(u int) error {
	res, err := l.accounts[u].hc.Get(l.app.server.URL + "/market?q=e&sort=-price")
	if err == nil {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			err = fmt.Errorf("search: status %d", res.StatusCode)
		}
	}
	return err
}

// tally checks what the users were told and adds it up: the money moved by the successes each
// user saw, and the purchases minus sales each user saw, per item.
func (l *tradingLoad) tally(elapsed time.Duration) (net []int64, holds []map[int64]int) {
	t := l.t
	net = make([]int64, tradingUsers)
	holds = make([]map[int64]int, tradingUsers)
	for i := range holds {
		holds[i] = map[int64]int{}
	}
	successes, refusals := 0, 0
	for _, o := range l.outcomes {
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
		checkTradeFragment(t, o, doc)
	}
	t.Logf("%d trade answers (%d succeeded, %d refused) and %d searches in %s: %.0f trades/s, %.0f requests/s",
		successes+refusals, successes, refusals, l.searches, elapsed.Round(time.Millisecond),
		float64(successes+refusals)/elapsed.Seconds(), float64(successes+refusals+l.searches)/elapsed.Seconds())
	if successes < 20 {
		t.Errorf("only %d trades succeeded: the load did not exercise much", successes)
	}
	return net, holds
}

// checkTradeFragment checks a trade answer is a small fragment carrying the budget.
func checkTradeFragment(t *testing.T, o outcome, doc *goquery.Document) {
	t.Helper()
	if strings.Contains(o.body, "<body") || len(o.body) >= 2048 {
		t.Errorf("trade answer is not a small fragment: %d bytes", len(o.body))
	}
	if doc.Find(`#budget[hx-swap-oob="true"]`).Length() != 1 {
		t.Errorf("trade answer lacks the budget: %.200s", o.body)
	}
}

// checkDatabase checks what the database says against what the users were told: no money
// made or lost, and every account's budget, items and ledger as its answers add up.
func (l *tradingLoad) checkDatabase(net []int64, holds []map[int64]int) {
	t, ctx := l.t, context.Background()
	if problems, err := l.app.store.Check(ctx); err != nil || len(problems) > 0 {
		t.Errorf("check: %v %q", err, problems)
	}
	tot, err := l.app.store.Totals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tot.Budgets+tot.Owned != tot.Granted || tot.Granted != tradingUsers*store.StartingBudget {
		t.Errorf("money created or lost: budgets %d + owned %d, granted %d (want %d)",
			tot.Budgets, tot.Owned, tot.Granted, tradingUsers*store.StartingBudget)
	}
	owners := map[int64]int64{}
	for _, it := range l.items {
		got, err := l.app.store.Item(ctx, it.ID)
		if err != nil {
			t.Fatal(err)
		}
		owners[it.ID] = got.OwnerID
	}
	for u, a := range l.accounts {
		l.checkAccount(u, a, net[u], holds[u], owners)
	}
}

// checkAccount checks one account: its budget, the items it owns and its ledger rows.
func (l *tradingLoad) checkAccount(u int, a tradingAccount, net int64, holds map[int64]int, owners map[int64]int64) {
	t, ctx := l.t, context.Background()
	got, err := l.app.store.User(ctx, a.id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Budget != store.StartingBudget+net {
		t.Errorf("trader%02d: budget %d, but the answers they saw add up to %d", u, got.Budget, store.StartingBudget+net)
	}
	for _, it := range l.items {
		want := 0
		if owners[it.ID] == a.id {
			want = 1
		}
		if holds[it.ID] != want {
			t.Errorf("trader%02d was told of %d more purchases than sales of %s; owner is user %d",
				u, holds[it.ID], it.Name, owners[it.ID])
		}
	}
	p, err := l.app.store.Ledger(ctx, a.id, 1)
	if err != nil {
		t.Fatal(err)
	}
	told := 0
	for _, o := range l.outcomes {
		if o.user == u && o.err == nil && o.status == 200 && o.item.ID != 0 &&
			(strings.Contains(o.body, "Purchased ") || strings.Contains(o.body, " back to the market!")) {
			told++
		}
	}
	if p.Total != told+1 { // the opening grant, then one row per trade
		t.Errorf("trader%02d: %d ledger rows, want %d trades and the grant", u, p.Total, told)
	}
}
