package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"market/store"
	"market/store/storetest"
)

// tradeFixture: alice (the trader) and bob, each granted 1000, and items priced for the cases.
type tradeFixture struct {
	st                 *store.Store
	alice, bob         store.User
	cheap, big, pricey store.Item
	exact              store.Item
	// onPage, when set, makes every trade a TradeOnPage from this market page, whose page
	// must be the one Market reads next (t hears when it is not).
	onPage *store.MarketQuery
	t      *testing.T
}

const (
	buy  = "buy"
	sell = "sell"
)

type tradeStep struct {
	who  func(f tradeFixture) int64
	op   string
	item func(f tradeFixture) int64
}

type tradeCase struct {
	name       string
	before     []tradeStep // trades that succeed first
	op         string      // alice does this
	item       func(f tradeFixture) int64
	wantErr    error
	wantName   string // the item named in the result, for the message
	wantAlice  int64
	wantBob    int64
	wantOwner  func(f tradeFixture) int64 // 0: on the market
	wantLedger string                     // the kind alice's newest ledger row has after the op
}

func tradeCases() []tradeCase {
	aliceID := func(f tradeFixture) int64 { return f.alice.ID }
	bobID := func(f tradeFixture) int64 { return f.bob.ID }
	cheap := func(f tradeFixture) int64 { return f.cheap.ID }
	big := func(f tradeFixture) int64 { return f.big.ID }
	pricey := func(f tradeFixture) int64 { return f.pricey.ID }
	exact := func(f tradeFixture) int64 { return f.exact.ID }
	id := func(n int64) func(tradeFixture) int64 { return func(tradeFixture) int64 { return n } }
	return []tradeCase{
		{name: "buy on the market", op: buy, item: cheap,
			wantName: "Cheap", wantAlice: 700, wantBob: 1000, wantOwner: aliceID, wantLedger: "buy"},
		{name: "buy with exactly the whole budget", op: buy, item: exact,
			wantName: "Exact", wantAlice: 0, wantBob: 1000, wantOwner: aliceID, wantLedger: "buy"},
		{name: "insufficient funds leaves budgets unchanged", op: buy, item: pricey, wantErr: store.ErrInsufficientFunds,
			wantName: "Pricey", wantAlice: 1000, wantBob: 1000, wantOwner: id(0), wantLedger: "grant"},
		{name: "insufficient after an earlier purchase", before: []tradeStep{{aliceID, buy, big}}, op: buy, item: cheap,
			wantErr: store.ErrInsufficientFunds, wantName: "Cheap", wantAlice: 200, wantBob: 1000, wantOwner: id(0), wantLedger: "buy"},
		{name: "an item is sold once", before: []tradeStep{{bobID, buy, cheap}}, op: buy, item: cheap,
			wantErr: store.ErrUnavailable, wantName: "Cheap", wantAlice: 1000, wantBob: 700, wantOwner: bobID, wantLedger: "grant"},
		{name: "cannot buy what you own", before: []tradeStep{{aliceID, buy, cheap}}, op: buy, item: cheap,
			wantErr: store.ErrUnavailable, wantName: "Cheap", wantAlice: 700, wantBob: 1000, wantOwner: aliceID, wantLedger: "buy"},
		{name: "buy unknown id", op: buy, item: id(99999), wantErr: store.ErrNotFound,
			wantAlice: 1000, wantBob: 1000, wantLedger: "grant"},
		{name: "buy id zero", op: buy, item: id(0), wantErr: store.ErrNotFound,
			wantAlice: 1000, wantBob: 1000, wantLedger: "grant"},
		{name: "buy negative id", op: buy, item: id(-3), wantErr: store.ErrNotFound,
			wantAlice: 1000, wantBob: 1000, wantLedger: "grant"},
		{name: "sell what you own", before: []tradeStep{{aliceID, buy, cheap}}, op: sell, item: cheap,
			wantName: "Cheap", wantAlice: 1000, wantBob: 1000, wantOwner: id(0), wantLedger: "sell"},
		{name: "cannot sell what is on the market", op: sell, item: cheap, wantErr: store.ErrNotOwner,
			wantName: "Cheap", wantAlice: 1000, wantBob: 1000, wantOwner: id(0), wantLedger: "grant"},
		{name: "cannot sell what another owns", before: []tradeStep{{bobID, buy, big}}, op: sell, item: big,
			wantErr: store.ErrNotOwner, wantName: "Big", wantAlice: 1000, wantBob: 200, wantOwner: bobID, wantLedger: "grant"},
		{name: "cannot sell twice", before: []tradeStep{{aliceID, buy, cheap}, {aliceID, sell, cheap}}, op: sell, item: cheap,
			wantErr: store.ErrNotOwner, wantName: "Cheap", wantAlice: 1000, wantBob: 1000, wantOwner: id(0), wantLedger: "sell"},
		{name: "sell unknown id", op: sell, item: id(99999), wantErr: store.ErrNotFound,
			wantAlice: 1000, wantBob: 1000, wantLedger: "grant"},
		{name: "buy back what you sold", before: []tradeStep{{aliceID, buy, cheap}, {aliceID, sell, cheap}}, op: buy, item: cheap,
			wantName: "Cheap", wantAlice: 700, wantBob: 1000, wantOwner: aliceID, wantLedger: "buy"},
	}
}

func TestTrades(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		for _, tt := range tradeCases() {
			t.Run(tt.name, func(t *testing.T) { runTradeCase(t, tt, nil) })
		}
	})
}

// TradeOnPage trades as Buy and Sell do, in every case, and its page is the market page as the
// trade, done or refused, left it: the count and pager Market reads right after (on PostgreSQL
// it came in the trade's round trip). A page past the end is the last, as Market's.
func TestTradeOnPage(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		for _, q := range []store.MarketQuery{{}, {Q: "e", Sort: store.SortPriceDesc, Page: 2}} {
			t.Run(fmt.Sprintf("q=%s page %d", q.Q, q.Page), func(t *testing.T) {
				for _, tt := range tradeCases() {
					t.Run(tt.name, func(t *testing.T) { runTradeCase(t, tt, &q) })
				}
			})
		}
	})
}

// doOnPage is do through TradeOnPage.
func (f tradeFixture) doOnPage(ctx context.Context, op string, who, item int64) (store.Trade, error) {
	tr, after, err := f.st.TradeOnPage(ctx, who, item, op == buy, *f.onPage)
	if after.Err != nil {
		f.t.Errorf("%s %d: the page after it: %v", op, item, after.Err)
		return tr, err
	}
	want, merr := f.st.Market(ctx, *f.onPage)
	want.Items = nil
	if merr != nil || fmt.Sprint(after.Page) != fmt.Sprint(want) {
		f.t.Errorf("%s %d: the page after it %+v, Market reads %+v (%v)", op, item, after.Page, want, merr)
	}
	return tr, err
}

func newTradeFixture(t *testing.T, onPage *store.MarketQuery) tradeFixture {
	f := tradeFixture{st: newStore(t), onPage: onPage, t: t}
	f.alice, f.bob = storetest.CreateUser(t, f.st, "alice"), storetest.CreateUser(t, f.st, "bob")
	f.cheap = storetest.AddItem(t, f.st, "Cheap", 300)
	f.big = storetest.AddItem(t, f.st, "Big", 800)
	f.pricey = storetest.AddItem(t, f.st, "Pricey", 1200)
	f.exact = storetest.AddItem(t, f.st, "Exact", 1000)
	return f
}

// do is one buy or sell.
func (f tradeFixture) do(ctx context.Context, op string, who, item int64) (store.Trade, error) {
	if f.onPage != nil {
		return f.doOnPage(ctx, op, who, item)
	}
	if op == buy {
		return f.st.Buy(ctx, who, item)
	}
	return f.st.Sell(ctx, who, item)
}

func runTradeCase(t *testing.T, tt tradeCase, onPage *store.MarketQuery) {
	ctx := context.Background()
	f := newTradeFixture(t, onPage)
	for _, s := range tt.before {
		if _, err := f.do(ctx, s.op, s.who(f), s.item(f)); err != nil {
			t.Fatalf("setup %s: %v", s.op, err)
		}
	}
	totalsBefore, _ := f.st.Totals(ctx)
	rowsBefore := len(storetest.Ledger(t, f.st, f.alice.ID))

	tr, err := f.do(ctx, tt.op, f.alice.ID, tt.item(f))
	if !errors.Is(err, tt.wantErr) {
		t.Fatalf("err = %v, want %v", err, tt.wantErr)
	}
	if tr.Item.Name != tt.wantName {
		t.Errorf("trade names item %q, want %q", tr.Item.Name, tt.wantName)
	}
	if err == nil && tr.Budget != tt.wantAlice {
		t.Errorf("trade reports budget %d, want %d", tr.Budget, tt.wantAlice)
	}
	if got := storetest.Budget(t, f.st, f.alice.ID); got != tt.wantAlice {
		t.Errorf("alice's budget %d, want %d", got, tt.wantAlice)
	}
	if got := storetest.Budget(t, f.st, f.bob.ID); got != tt.wantBob {
		t.Errorf("bob's budget %d, want %d", got, tt.wantBob)
	}
	if tt.wantOwner != nil {
		if got, want := storetest.Owner(t, f.st, tt.item(f)), tt.wantOwner(f); got != want {
			t.Errorf("owner %d, want %d", got, want)
		}
	}
	checkTradeLedger(t, f, tt, tr, rowsBefore)
	// Money before == money after: a trade moves money between a budget and an item.
	totalsAfter, _ := f.st.Totals(ctx)
	if totalsAfter.Granted != totalsBefore.Granted ||
		totalsAfter.Budgets+totalsAfter.Owned != totalsBefore.Budgets+totalsBefore.Owned {
		t.Errorf("totals %+v → %+v", totalsBefore, totalsAfter)
	}
	if err != nil && totalsAfter != totalsBefore {
		t.Errorf("a refused trade changed the totals: %+v → %+v", totalsBefore, totalsAfter)
	}
	storetest.AssertHealthy(t, f.st)
}

// checkTradeLedger: the ledger moved with the money, or not at all.
func checkTradeLedger(t *testing.T, f tradeFixture, tt tradeCase, tr store.Trade, rowsBefore int) {
	t.Helper()
	rows := storetest.Ledger(t, f.st, f.alice.ID)
	wantRows := rowsBefore
	if tt.wantErr == nil {
		wantRows++
	}
	if len(rows) != wantRows {
		t.Errorf("alice has %d ledger rows, want %d", len(rows), wantRows)
	}
	if last := rows[len(rows)-1]; last.Kind != tt.wantLedger {
		t.Errorf("newest ledger row is %q, want %q", last.Kind, tt.wantLedger)
	}
	if tt.wantErr == nil {
		last := rows[len(rows)-1]
		wantAmount := tr.Item.Price
		if tt.op == buy {
			wantAmount = -wantAmount
		}
		if last.ItemID != tt.item(f) || last.Amount != wantAmount || last.ItemName != tt.wantName {
			t.Errorf("ledger row %+v, want item %d amount %d", last, tt.item(f), wantAmount)
		}
	}
	for _, u := range []store.User{f.alice, f.bob} {
		if sum, b := storetest.LedgerSum(storetest.Ledger(t, f.st, u.ID)), storetest.Budget(t, f.st, u.ID); sum != b {
			t.Errorf("%s: ledger sums to %d, budget is %d", u.Username, sum, b)
		}
	}
}
