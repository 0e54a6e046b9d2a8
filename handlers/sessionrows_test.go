package handlers_test

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// The readiness probe writes a session row of its own; its token cannot come back in a
// cookie, so nobody can load that row as their session (it holds no session's data, and
// loading it answered 503 "cannot reach its database" to whoever sent its name).
func TestReadinessProbeRowIsNoSession(t *testing.T) {
	app := newTestApp(t)
	c := app.client()
	if res := c.get("/readyz"); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /readyz: %d", res.StatusCode)
	}
	for _, token := range []string{"readiness-probe", "readiness%3Bprobe", `"readiness;probe"`} {
		res := app.client().do(http.MethodGet, "/market", nil, map[string]string{"Cookie": "session=" + token})
		if res.StatusCode != http.StatusSeeOther && res.StatusCode != http.StatusFound {
			t.Errorf("GET /market with the cookie session=%s: %d, want a redirect to log in", token, res.StatusCode)
		}
	}
}

// A session's row that does not decode (written by something else, or damaged) is no session:
// its holder is asked to log in, not told for twelve hours that the database is unreachable.
func TestUndecodableSessionIsNoSession(t *testing.T) {
	app := newTestApp(t)
	ctx := context.Background()
	for token, data := range map[string][]byte{
		"not-gob":       []byte("2026-12-06T07:00:00Z"),
		"bad-record":    {0xfe, 0xff},
		"empty-session": {},
	} {
		if err := app.store.Sessions().CommitCtx(ctx, token, data, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		res := app.client().do(http.MethodGet, "/market", nil, map[string]string{"Cookie": "session=" + token})
		if res.StatusCode != http.StatusSeeOther && res.StatusCode != http.StatusFound {
			t.Errorf("GET /market with an undecodable session (%s): %d, want a redirect to log in", token, res.StatusCode)
		}
	}
}
