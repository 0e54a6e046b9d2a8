package store_test

import (
	"context"
	"testing"

	"market/store/storetest"
)

// Reset empties the market on either engine: every table its migrations made is dropped and
// made again, the schema is back at its last migration, the version goes on, a live stream
// from before the reset is told to refresh, and a table of another program is left alone.
func TestResetEmptiesTheMarket(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := newStore(t)
		u := storetest.CreateUser(t, st, "before")
		it := storetest.AddItem(t, st, "Vase", 10)
		if _, err := st.Buy(ctx, u.ID, it.ID); err != nil {
			t.Fatal(err)
		}
		schema, err := st.SchemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		storetest.Exec(t, rawDB(t, st), `CREATE TABLE other_program (x integer)`)
		storetest.Exec(t, rawDB(t, st), `INSERT INTO other_program (x) VALUES (7)`)
		before, err := st.Version(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Reset(ctx); err != nil {
			t.Fatal(err)
		}

		if users, err := st.Users(ctx); err != nil || len(users) != 0 {
			t.Errorf("after reset: %d users (%v), want none", len(users), err)
		}
		if v, err := st.SchemaVersion(ctx); err != nil || v != schema {
			t.Errorf("after reset: schema version %d (%v), want %d", v, err, schema)
		}
		if v, _ := st.Version(ctx); v <= before {
			t.Errorf("after reset: market version %d, not past %d", v, before)
		}
		if _, complete, err := st.EventsSince(ctx, before, 10); err != nil || complete {
			t.Errorf("a stream from before the reset: complete %v (%v), want a refresh", complete, err)
		}
		var x int
		if err := rawDB(t, st).QueryRow(`SELECT x FROM other_program`).Scan(&x); err != nil || x != 7 {
			t.Errorf("another program's table: %d (%v), want it kept", x, err)
		}
		storetest.CreateUser(t, st, "before") // the name is free again
		storetest.AssertHealthy(t, st)
	})
}
