package postgres_test

import (
	"context"
	"testing"
	"time"

	"market/store"
	"market/store/driver/drivertest"
	"market/store/storetest"
)

// A long transaction in another database of the cluster (another application, another test's
// database) holds the cluster's snapshot horizon back, but it can never write this market's
// feed: every trade is at once at an exact version, which caches may key on, ChangesSince
// reads each trade's event at it, and the feed is pruned.
func TestExactBesideAnotherDatabasesTransaction(t *testing.T) {
	ctx := context.Background()
	storetest.HoldTransactionElsewhere(t) // older than everything the market does
	st := storetest.OpenAt(t, drivertest.PostgresURL(t))
	ann := storetest.CreateUser(t, st, "ann")
	lamp := storetest.AddItem(t, st, "Lamp", 1)
	start := exactWithin(t, st, time.Second)
	since := start
	for i := range 20 {
		trade, kind := st.Buy, "buy"
		if i%2 == 1 {
			trade, kind = st.Sell, "sell"
		}
		if _, err := trade(ctx, ann.ID, lamp.ID); err != nil {
			t.Fatal(err)
		}
		v := exactWithin(t, st, time.Second)
		c, err := st.ChangesSince(ctx, since, 10, []store.MarketQuery{{}}, store.AllPages)
		if err != nil {
			t.Fatal(err)
		}
		if c.Version != v || len(c.Events) != 1 || c.Events[0].Kind != kind || c.Events[0].Version != v {
			t.Fatalf("trade %d (%s): read at %d (exact %v) with events %+v; want the %s alone, at the exact %d",
				i, kind, c.Version, st.Exact(c.Version), c.Events, kind, v)
		}
		since = v
	}
	// Nor does it keep the feed from being pruned: a cursor from before is told it missed events.
	if err := st.PruneEvents(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, complete, err := st.EventsSince(ctx, start, 10); err != nil || complete {
		t.Fatalf("events since before a prune of them all: %v, complete %v; want incomplete", err, complete)
	}
}

// A transaction of the market's own database that is older than a trade still counts: while
// it runs, the version after the trade is not exact and the trade's event is not read (it
// could yet be followed by a change before it); once it ends, both are.
func TestInexactWhileAnOlderTransactionOfTheMarketRuns(t *testing.T) {
	ctx := context.Background()
	st := storetest.OpenAt(t, drivertest.PostgresURL(t))
	ann := storetest.CreateUser(t, st, "ann")
	lamp, vase := storetest.AddItem(t, st, "Lamp", 1), storetest.AddItem(t, st, "Vase", 1)
	since := exactWithin(t, st, time.Second)
	tx, err := st.DB().Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`UPDATE items SET description = 'held' WHERE id = ?`, vase.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Buy(ctx, ann.ID, lamp.ID); err != nil {
		t.Fatal(err)
	}
	c, err := st.ChangesSince(ctx, since, 10, nil, store.AllPages)
	if err != nil {
		t.Fatal(err)
	}
	if st.Exact(c.Version) || len(c.Events) != 0 {
		t.Fatalf("behind a running transaction: version %d exact %v, events %+v; want inexact, none", c.Version, st.Exact(c.Version), c.Events)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	v := exactWithin(t, st, time.Second)
	c, err = st.ChangesSince(ctx, since, 10, nil, store.AllPages)
	if err != nil || c.Version != v || len(c.Events) != 1 || c.Events[0].ItemID != lamp.ID {
		t.Fatalf("after it ended: %v, version %d (exact %d), events %+v; want the purchase of %d", err, c.Version, v, c.Events, lamp.ID)
	}
}

// exactWithin is the market version once it is exact, which it must be within wait.
func exactWithin(t *testing.T, st *store.Store, wait time.Duration) int64 {
	t.Helper()
	for end := time.Now().Add(wait); ; time.Sleep(time.Millisecond) { // polling, bounded
		v, err := st.Version(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Exact(v) {
			return v
		}
		if time.Now().After(end) {
			t.Fatalf("version %d: not exact within %v", v, wait)
		}
	}
}
