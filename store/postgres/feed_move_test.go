package postgres_test

import (
	"context"
	"database/sql"
	osexec "os/exec"
	"testing"

	"market/store/driver/drivertest"
	"market/store/storetest"
)

// A cursor survives no move of the database: after a dump restored into another database (here
// in the same cluster: another OID), the feed's epoch is rolled, so a stream or page holding a
// version of the old place gets a refresh (EventsSince is incomplete), never a silent gap; the
// restored market's versions are past the old ones.
func TestFeedEpochRollsOnRestore(t *testing.T) {
	ctx := context.Background()
	src := storetest.OpenAt(t, drivertest.PostgresURL(t))
	u := storetest.CreateUser(t, src, "mover")
	it := storetest.AddItem(t, src, "Crate", 10)
	before, _ := src.Version(ctx)
	if _, err := src.Buy(ctx, u.ID, it.ID); err != nil {
		t.Fatal(err)
	}
	old, _ := src.Version(ctx)
	// The purchase is read once no older transaction of the database runs.
	storetest.WaitFor(t, func() bool {
		ev, complete, err := src.EventsSince(ctx, before, 10)
		if err != nil || !complete || len(ev) > 1 {
			t.Fatalf("events at the source: %v %v %+v", err, complete, ev)
		}
		return len(ev) == 1
	})
	dst := drivertest.PostgresURL(t)
	dump := osexec.Command("sh", "-c", `"$0" --no-owner "$1" | "$2" -q -v ON_ERROR_STOP=1 "$3"`,
		pgTool("pg_dump"), src.Path(), pgTool("psql"), dst)
	if out, err := dump.CombinedOutput(); err != nil {
		t.Fatalf("dump and restore: %v\n%s", err, out)
	}
	restored := storetest.OpenAt(t, dst)
	if _, complete, err := restored.EventsSince(ctx, before, 10); err != nil || complete {
		t.Fatalf("a cursor from before the restore: complete %v (%v), want a refresh", complete, err)
	}
	if v, _ := restored.Version(ctx); v <= old {
		t.Errorf("restored at version %d, not past %d", v, old)
	}
	if o := storetest.Owner(t, restored, it.ID); o != u.ID {
		t.Errorf("the restored item's owner is %d, want %d", o, u.ID)
	}
}

// Feed rows from transactions the cluster has not reached (a restore into a younger cluster)
// would sort before every new change: the epoch is rolled and they are dropped; a ledger row
// stays in the ledger, and leaves the feed.
func TestFeedEpochRollsOnRowsFromTheFuture(t *testing.T) {
	ctx := context.Background()
	st := storetest.OpenAt(t, drivertest.PostgresURL(t))
	u := storetest.CreateUser(t, st, "future")
	it := storetest.AddItem(t, st, "Crate", 10)
	storetest.Exec(t, st.DB(), `INSERT INTO market_feed (xid, item_id, kind, user_id) VALUES ('900000000'::xid8, 1, 'buy', 1)`)
	storetest.Exec(t, st.DB(), `INSERT INTO trades (xid, user_id, item_id, kind, amount) VALUES ('900000001'::xid8, ?, ?, 'buy', 0)`, u.ID, it.ID)
	before, _ := st.Version(ctx)
	epoch := func() (e int64) {
		if err := st.DB().QueryRow(`SELECT epoch FROM catalogue`).Scan(&e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	was := epoch()
	again := storetest.OpenAt(t, st.Path())
	if now := epoch(); now <= was {
		t.Errorf("epoch %d after rows from the future, was %d: not rolled", now, was)
	}
	var n int
	if err := again.DB().QueryRow(`SELECT count(*) FROM market_feed WHERE xid = '900000000'::xid8`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d rows from the future kept (%v)", n, err)
	}
	var xid sql.NullString
	if err := again.DB().QueryRow(`SELECT xid::text FROM trades WHERE user_id = ? AND kind = 'buy'`, u.ID).Scan(&xid); err != nil || xid.Valid {
		t.Errorf("the ledger row from the future: xid %v (%v), want it kept, out of the feed", xid, err)
	}
	if _, complete, _ := again.EventsSince(ctx, before, 10); complete {
		t.Error("a cursor from before the roll is complete")
	}
}

// pgTool is the path of one of PostgreSQL's programs.
func pgTool(name string) string {
	if p, err := osexec.LookPath(name); err == nil {
		return p
	}
	return "/usr/lib/postgresql/15/bin/" + name
}
