package store_test

import (
	"context"
	"testing"
	"time"

	"market/store/storetest"
)

// Sweep deletes expired sessions and old limit counts (those kept in tables: PostgreSQL's), and
// keeps the rest.
func TestSweep(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := storetest.Open(t)
		ss := st.Sessions()
		now := time.Now()
		for i, expiry := range []time.Time{now.Add(-time.Hour), now.Add(-time.Minute), now.Add(time.Hour)} {
			if err := ss.Commit(string(rune('a'+i))+"-token", []byte("data"), expiry); err != nil {
				t.Fatal(err)
			}
		}
		for _, at := range []time.Time{now.Add(-2 * time.Hour), now.Add(-90 * time.Minute), now.Add(-time.Minute)} {
			if _, err := st.LimitTake(ctx, "login_addr", "127.0.0.1", 100, 3*time.Hour, at); err != nil {
				t.Fatal(err)
			}
		}
		tables := storetest.OnPostgres(t) // the counts are in a table, not in memory
		sw, err := st.Sweep(ctx, now.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		wantEvents := int64(0)
		if tables {
			wantEvents = 2
		}
		if sw.Sessions != 2 || sw.LimitEvents != wantEvents {
			t.Errorf("swept %+v, want 2 sessions and %d limit events", sw, wantEvents)
		}
		sessions, events, err := st.Rows(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sessions != 1 || tables && events != 1 {
			t.Errorf("left %d sessions and %d limit events, want 1 and 1", sessions, events)
		}
		if _, ok, _ := ss.Find("c-token"); !ok {
			t.Error("the live session was swept")
		}
		// The one event left in the window still counts.
		if wait, err := st.LimitRetryAfter(ctx, "login_addr", "127.0.0.1", 1, 3*time.Hour, now); err != nil || wait <= 0 {
			t.Errorf("after the sweep: wait %v %v, want the newest event still counted", wait, err)
		}
	})
}

// The live streams' check reads many sessions and their accounts' generations in two reads;
// an expired session, an unknown token or a missing account is not in the answer.
func TestStreamSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := storetest.Open(t)
		ss := st.Sessions()
		u, other := storetest.CreateUser(t, st, "streamer"), storetest.CreateUser(t, st, "other")
		now := time.Now()
		for token, expiry := range map[string]time.Time{"live": now.Add(time.Hour), "also": now.Add(time.Hour), "gone": now.Add(-time.Minute)} {
			if err := ss.Commit(token, []byte("data of "+token), expiry); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.EndSessions(ctx, u.ID); err != nil { // generation 1
			t.Fatal(err)
		}
		sessions, gens, err := st.StreamSessions(ctx, []string{"live", "also", "gone", "nobody's"}, []int64{u.ID, other.ID, u.ID + 1000})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"live": "data of live", "also": "data of also"}
		if len(sessions) != len(want) {
			t.Errorf("sessions %q, want %q", sessions, want)
		}
		for token, data := range want {
			if string(sessions[token]) != data {
				t.Errorf("session %q: %q, want %q", token, sessions[token], data)
			}
		}
		if len(gens) != 2 || gens[u.ID] != 1 || gens[other.ID] != 0 {
			t.Errorf("generations %v, want %d: 1 and %d: 0, no other", gens, u.ID, other.ID)
		}
	})
}
