package handlers_test

import (
	"net/http"
	"testing"
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
