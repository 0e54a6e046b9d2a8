package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"market/store"
	"market/store/storetest"
)

// Sweep deletes expired sessions and old limit counts, and keeps the rest; on PostgreSQL an
// instance finding another sweeping skips its turn.
func TestSweep(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t)
	ss := st.Sessions(0)
	defer ss.StopCleanup()
	now := time.Now()
	for i, expiry := range []time.Time{now.Add(-time.Hour), now.Add(-time.Minute), now.Add(time.Hour)} {
		if err := ss.Commit(string(rune('a'+i))+"-token", []byte("data"), expiry); err != nil {
			t.Fatal(err)
		}
	}
	if st.SharedLimits() {
		for _, at := range []time.Time{now.Add(-2 * time.Hour), now.Add(-90 * time.Minute), now.Add(-time.Minute)} {
			if _, err := st.LimitTake(ctx, "login_addr", "127.0.0.1", 100, 3*time.Hour, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	sw, err := st.Sweep(ctx, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	wantEvents := int64(0)
	if st.SharedLimits() {
		wantEvents = 2
	}
	if sw.Sessions != 2 || sw.LimitEvents != wantEvents {
		t.Errorf("swept %+v, want 2 sessions and %d limit events", sw, wantEvents)
	}
	sessions, events, err := st.Rows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sessions != 1 || st.SharedLimits() && events != 1 {
		t.Errorf("left %d sessions and %d limit events, want 1 and 1", sessions, events)
	}
	if _, ok, _ := ss.Find("c-token"); !ok {
		t.Error("the live session was swept")
	}
	if !storetest.Postgres() {
		return
	}
	// Another instance sweeping (it holds the lock): this one skips.
	conn, err := pgx.Connect(ctx, st.Path())
	if err != nil {
		t.Skipf("connect as another instance: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, store.SweepLockKey); err != nil {
		t.Fatal(err)
	}
	if sw, err := st.Sweep(ctx, now); err != nil || !sw.Skipped {
		t.Errorf("sweep while another instance sweeps: %+v %v, want skipped", sw, err)
	}
}

// The live streams' check reads many sessions and their accounts' generations in two reads;
// an expired session, an unknown token or a missing account is not in the answer.
func TestStreamSessions(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t)
	ss := st.Sessions(0)
	defer ss.StopCleanup()
	u, other := createUser(t, st, "streamer"), createUser(t, st, "other")
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
}
