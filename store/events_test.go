package store_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"market/store"
	"market/store/storetest"
)

func openEventsStore(t *testing.T) (*store.Store, int64, []store.Item) {
	t.Helper()
	ctx := context.Background()
	st := storetest.Open(t)
	if _, err := st.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := st.CreateUser(ctx, "ann", "ann@example.com", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.Market(ctx, store.MarketQuery{Sort: store.SortPrice})
	if err != nil {
		t.Fatal(err)
	}
	return st, u.ID, p.Items
}

// Each trade writes one event with the version after it; EventsSince replays them in order.
func TestEventsSinceReplaysTrades(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st, uid, items := openEventsStore(t)
		before := exactVersion(t, st)
		if _, err := st.Buy(ctx, uid, items[0].ID); err != nil {
			t.Fatal(err)
		}
		mid := exactVersion(t, st)
		if _, err := st.Sell(ctx, uid, items[0].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Buy(ctx, uid, 1<<40); err == nil { // refused: no event
			t.Fatal("bought an item that does not exist")
		}
		after := exactVersion(t, st)
		ev, complete, err := st.EventsSince(ctx, before, 100)
		if err != nil || !complete {
			t.Fatal(err, complete)
		}
		if len(ev) != 2 || ev[0].Kind != "buy" || ev[1].Kind != "sell" || ev[0].Version != mid || ev[1].Version != after ||
			ev[0].ItemID != items[0].ID || ev[0].UserID != uid || ev[0].ItemName != items[0].Name {
			t.Fatalf("events %+v, want buy at %d then sell at %d of item %d", ev, mid, after, items[0].ID)
		}
		ev, _, _ = st.EventsSince(ctx, mid, 100)
		if len(ev) != 1 || ev[0].Kind != "sell" {
			t.Fatalf("events after %d: %+v", mid, ev)
		}
		// A version from before the events table existed cannot be replayed.
		if _, complete, _ := st.EventsSince(ctx, 0, 100); complete {
			t.Fatal("events since version 0 are reported complete, but they were never recorded")
		}
	})
}

// Old events are pruned, and asking for them says so.
func TestEventsPruned(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		if testing.Short() {
			t.Skip("writes thousands of trades")
		}
		ctx := context.Background()
		st, uid, items := openEventsStore(t)
		start := exactVersion(t, st)
		for i := 0; i < store.EventsKept/2+400; i++ {
			if _, err := st.Buy(ctx, uid, items[0].ID); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Sell(ctx, uid, items[0].ID); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		st.DB().QueryRow(`SELECT count(*) FROM market_events`).Scan(&n)
		if n > store.EventsKept+600 {
			t.Fatalf("%d events kept, want about %d", n, store.EventsKept)
		}
		// SQLite prunes as trades commit, PostgreSQL every few seconds, outside them.
		storetest.WaitFor(t, func() bool {
			_, complete, err := st.EventsSince(ctx, start, 10)
			return err == nil && !complete
		})
		v := exactVersion(t, st)
		if _, err := st.Buy(ctx, uid, items[0].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Sell(ctx, uid, items[0].ID); err != nil {
			t.Fatal(err)
		}
		exactVersion(t, st) // both trades final
		ev, complete, err := st.EventsSince(ctx, v, 10)
		if err != nil || !complete || len(ev) != 2 {
			t.Fatalf("recent events: %v %v %+v", err, complete, ev)
		}
	})
}

// Changed is closed after a trade commits, and by the poll after another process's change.
func TestChangedRings(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st, uid, items := openEventsStore(t)
		ch := st.Changed()
		go st.Buy(ctx, uid, items[0].ID)
		select {
		case <-ch:
		case <-time.After(2 * time.Second):
			t.Fatal("Changed not closed after a trade")
		}
		ch = st.Changed()
		// Another process: a write that bypasses the store's writer.
		other, err := store.Open(ctx, st.Path(), store.Options{BcryptCost: bcrypt.MinCost})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if _, err := other.Sell(ctx, uid, items[0].ID); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(3 * store.ChangePoll):
			t.Fatal("Changed not closed after another process traded")
		}
	})
}

// ChangesSince reads one state of the database: while a trader buys and sells an item as fast
// as it can, each read's page shows the item exactly as the read's last event about it left
// it, and its count agrees with its rows. (On PostgreSQL a read whose version is not Exact,
// taken while an older transaction of its database still ran, may show changes whose events are
// not final yet: the live broker hands out exact reads only, and so the check is of those.)
func TestChangesSinceIsOneSnapshot(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := storetest.Open(t)
		if _, err := st.Seed(ctx); err != nil {
			t.Fatal(err)
		}
		u, err := st.CreateUser(ctx, "ann", "ann@example.com", "correct horse")
		if err != nil {
			t.Fatal(err)
		}
		all := store.MarketQuery{}
		p, err := st.Market(ctx, all)
		if err != nil {
			t.Fatal(err)
		}
		item := p.Items[0].ID
		base, _ := st.Version(ctx)
		defer tradeInLoop(t, st, u.ID, item)()
		exact := 0
		defer func() {
			// Each read waits a while for an exact version (a trade is rarely in flight long).
			if t.Logf("%d reads of 200 at an exact version", exact); exact < 100 {
				t.Errorf("%d reads of 200 at an exact version, want most", exact)
			}
		}()
		for range 200 {
			c, err := st.ChangesSince(ctx, base, store.EventsKept, []store.MarketQuery{all, {Sort: store.SortName}}, store.AllPages)
			if err != nil {
				t.Fatal(err)
			}
			page, ok := c.Pages[all.Normalize()]
			if !ok || len(c.Pages) != 1 {
				t.Fatalf("pages %v: want one, for the query asked twice", c.Pages)
			}
			onSale := false
			for _, it := range page.Items {
				onSale = onSale || it.ID == item
			}
			if page.Total != len(page.Items) {
				t.Fatalf("version %d: count %d, %d rows", c.Version, page.Total, len(page.Items))
			}
			if !st.Exact(c.Version) {
				continue
			}
			exact++
			if n := len(c.Events); n > 0 {
				last := c.Events[n-1]
				if last.Version != c.Version {
					t.Fatalf("the last event is at version %d, the read at %d", last.Version, c.Version)
				}
				if onSale != (last.Kind == "sell") {
					t.Fatalf("version %d: the last event says %s, but the item on sale is %v", c.Version, last.Kind, onSale)
				}
			}
		}
	})
}

// tradeInLoop has userID buy and sell itemID over and over until the returned stop is called;
// stop fails the test if a trade failed.
func tradeInLoop(t *testing.T, st *store.Store, userID, itemID int64) (stop func()) {
	ctx := context.Background()
	quit := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-quit:
				done <- nil
				return
			default:
			}
			if _, err := st.Buy(ctx, userID, itemID); err != nil {
				done <- err
				return
			}
			if _, err := st.Sell(ctx, userID, itemID); err != nil {
				done <- err
				return
			}
		}
	}()
	return func() {
		close(quit)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
