package handlers_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"market/store/storetest"
)

// On PostgreSQL, a long transaction in another database of the cluster (another application
// sharing it) neither slows the live streams nor empties the caches: each trade reaches an open
// stream within a second, with the exact version after it, and a page asked twice at that
// version is read from the database once. (On SQLite, the same without the other database.)
func TestFreshBesideAnotherDatabasesTransaction(t *testing.T) {
	app := newTestApp(t)
	if storetest.Postgres() {
		storetest.HoldTransactionElsewhere(t)
	}
	ann, bob := app.signUp("ann"), app.signUp("bob")
	ls := ann.stream("/market/events", nil)
	waitUntil(t, "the stream", time.Second, func() bool { return app.handler.OpenStreams() == 1 })
	mouse, kettle := app.item("Mouse"), app.item("Kettle")
	for i, trade := range []struct {
		item   int64
		sell   bool
		change string
	}{{mouse.ID, false, "bought"}, {kettle.ID, false, "bought"}, {mouse.ID, true, "sold"}, {kettle.ID, true, "sold"}} {
		start := time.Now()
		if trade.sell {
			bob.sell(trade.item)
		} else {
			bob.buy(trade.item)
		}
		ev := ls.next(t, time.Second)
		marker := fmt.Sprintf(`data-row="item-%d" data-change="%s"`, trade.item, trade.change)
		if v := app.version(); ev.id != strconv.FormatInt(v, 10) || !app.store.Exact(v) || !strings.Contains(ev.data, marker) {
			t.Fatalf("trade %d: event %q, want the exact version %d (exact: %v) with %s:\n%s", i, ev.id, v, app.store.Exact(v), marker, ev.data)
		}
		t.Logf("trade %d reached the stream after %v", i, time.Since(start))
		ann.get("/market")
		hits := app.handler.CacheHits()
		ann.get("/market")
		if app.handler.CacheHits() == hits {
			t.Errorf("trade %d: the market page asked again at the same version was not served from the cache", i)
		}
	}
}
