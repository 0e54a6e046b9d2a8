package handlers_test

import (
	"net/http"
	"net/url"
	"testing"

	"market/handlers"
)

// failLogins sends n wrong passwords for bob from a client claiming the given forwarded address
// and returns the last status.
func failLogins(c *client, n int, forwarded string) int {
	status := 0
	for range n {
		form := url.Values{"username": {"bob"}, "password": {"wrong horse"}, "csrf_token": {c.token()}}
		status = c.do(http.MethodPost, "/login", form, map[string]string{"X-Forwarded-For": forwarded}).StatusCode
	}
	return status
}

func TestForwardedForIgnoredByDefault(t *testing.T) {
	app := newTestApp(t)
	app.signUp("bob")
	c := app.client()
	failLogins(c, 5, "203.0.113.1")
	// A new forged address does not buy an attacker more guesses.
	if status := failLogins(c, 1, "203.0.113.2"); status != http.StatusTooManyRequests {
		t.Errorf("6th guess with a forged X-Forwarded-For: %d, want 429", status)
	}
}

func TestForwardedForTrustedBehindProxy(t *testing.T) {
	app := newTestApp(t, handlers.Config{TrustProxy: true})
	app.signUp("bob")
	attacker, owner := app.client(), app.client()
	if status := failLogins(attacker, 6, "198.51.100.7, 203.0.113.9"); status != http.StatusTooManyRequests {
		t.Fatalf("attacker's 6th guess: %d, want 429", status)
	}
	// The proxy appends the real address last: the owner, elsewhere, is not locked out.
	form := url.Values{"username": {"bob"}, "password": {"correct horse"}, "csrf_token": {owner.token()}}
	res := owner.do(http.MethodPost, "/login", form, map[string]string{"X-Forwarded-For": "198.51.100.7, 192.0.2.44"})
	if res.StatusCode != http.StatusFound {
		t.Errorf("owner from another address: %d, want 302", res.StatusCode)
	}
}

// Forms may post from an origin named in TrustedOrigins (templ's dev proxy), and from no other.
func TestTrustedOrigins(t *testing.T) {
	app := newTestApp(t, handlers.Config{TrustedOrigins: []string{"http://127.0.0.1:7331"}})
	c := app.client()
	form := url.Values{"username": {"nobody"}, "password": {"wrong horse"}, "csrf_token": {c.token()}}
	if res := c.do(http.MethodPost, "/login", form, map[string]string{"Origin": "http://127.0.0.1:7331"}); res.StatusCode != http.StatusOK {
		t.Errorf("post from the trusted origin: %d, want 200", res.StatusCode)
	}
	if res := c.do(http.MethodPost, "/login", form, map[string]string{"Origin": "http://127.0.0.1:7332"}); res.StatusCode != http.StatusForbidden {
		t.Errorf("post from another origin: %d, want 403", res.StatusCode)
	}
}
