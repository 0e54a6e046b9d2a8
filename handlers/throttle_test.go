// Login and sign-up throttles: per account and per address, and under guesses sent all at once.

package handlers_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"market/handlers"
)

// clientFrom is a browser whose connections come from another loopback address (127.0.0.2 …),
// so the server sees a different client IP, as it would for another machine.
func (a *testApp) clientFrom(ip string) *client {
	a.t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conn, err := d.Dial("tcp", a.server.Listener.Addr().String())
	if err != nil {
		a.t.Skipf("cannot connect from %s on this system: %v", ip, err)
	}
	conn.Close()
	c := a.client()
	c.hc.Transport = &http.Transport{DialContext: d.DialContext}
	return c
}

// login posts the login form and returns the status and the message shown.
func (c *client) login(username, password string) (response, string) {
	c.app.t.Helper()
	res := c.post("/login", url.Values{"username": {username}, "password": {password}})
	msg := ""
	if res.StatusCode != http.StatusFound {
		msg = messages(res.doc(c.app.t))
	}
	return res, msg
}

const loginFailed = "Login failed. Check username and password."

func tooMany(n string) string { return "Too many failed login attempts. Try again in " + n + "." }

func TestLoginThrottle(t *testing.T) {
	app := newTestApp(t)
	app.signUp("bob")
	c := app.client()
	type step struct {
		name               string
		advance            time.Duration
		username, password string
		wantStatus         int
		wantMessage        string
		wantRetryAfter     string
	}
	steps := []step{}
	for i := 1; i <= 5; i++ {
		steps = append(steps, step{name: fmt.Sprintf("wrong password %d", i), username: "bob", password: "wrong horse",
			wantStatus: http.StatusOK, wantMessage: loginFailed})
	}
	steps = append(steps,
		step{name: "sixth attempt refused even with the right password", username: "bob", password: "correct horse",
			wantStatus: http.StatusTooManyRequests, wantMessage: tooMany("15 minutes"), wantRetryAfter: "900"},
		step{name: "another letter case is the same account", username: "BOB", password: "correct horse",
			wantStatus: http.StatusTooManyRequests, wantMessage: tooMany("15 minutes"), wantRetryAfter: "900"},
		step{name: "the wait counts down", advance: 10 * time.Minute, username: "bob", password: "correct horse",
			wantStatus: http.StatusTooManyRequests, wantMessage: tooMany("5 minutes"), wantRetryAfter: "300"},
		step{name: "one minute is singular", advance: 4*time.Minute + 30*time.Second, username: "bob", password: "correct horse",
			wantStatus: http.StatusTooManyRequests, wantMessage: tooMany("1 minute"), wantRetryAfter: "30"},
		step{name: "after the window the right password works", advance: 31 * time.Second, username: "bob", password: "correct horse",
			wantStatus: http.StatusFound},
	)
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			app.clock.Advance(s.advance)
			res, msg := c.login(s.username, s.password)
			if res.StatusCode != s.wantStatus || msg != s.wantMessage {
				t.Fatalf("got %d %q, want %d %q", res.StatusCode, msg, s.wantStatus, s.wantMessage)
			}
			if got := res.Header.Get("Retry-After"); got != s.wantRetryAfter {
				t.Errorf("Retry-After %q, want %q", got, s.wantRetryAfter)
			}
			if s.wantStatus == http.StatusTooManyRequests {
				if got := c.get("/market"); got.StatusCode != http.StatusFound {
					t.Errorf("a refused login logged in: GET /market %d", got.StatusCode)
				}
			}
		})
	}
}

func TestLoginSuccessResetsFailures(t *testing.T) {
	app := newTestApp(t)
	app.signUp("bob")
	c := app.client()
	for round := range 3 {
		for i := range 4 {
			if res, msg := c.login("bob", "wrong horse"); res.StatusCode != http.StatusOK || msg != loginFailed {
				t.Fatalf("round %d, failure %d: %d %q", round, i+1, res.StatusCode, msg)
			}
		}
		if res, msg := c.login("bob", "correct horse"); res.StatusCode != http.StatusFound {
			t.Fatalf("round %d: right password after 4 failures: %d %q", round, res.StatusCode, msg)
		}
		c.get("/logout")
	}
	// The count starts again from zero: five more failures, and then the lock.
	for range 5 {
		c.login("bob", "wrong horse")
	}
	if res, msg := c.login("bob", "correct horse"); res.StatusCode != http.StatusTooManyRequests || msg != tooMany("15 minutes") {
		t.Errorf("after 5 new failures: %d %q, want 429", res.StatusCode, msg)
	}
}

// Guessing from one address does not lock the owner out from theirs; an address guessing at
// many accounts meets the looser cap per address.
func TestLoginThrottleIsPerAddress(t *testing.T) {
	app := newTestApp(t, handlers.Config{LoginFailures: 2}) // 2 per account and address, 40 per address
	app.signUp("bob")
	attacker := app.clientFrom("127.0.0.2")
	for range 2 {
		if res, msg := attacker.login("bob", "guess"); res.StatusCode != http.StatusOK || msg != loginFailed {
			t.Fatalf("attacker's guess: %d %q", res.StatusCode, msg)
		}
	}
	if res, msg := attacker.login("bob", "correct horse"); res.StatusCode != http.StatusTooManyRequests || msg != tooMany("15 minutes") {
		t.Fatalf("attacker after the limit: %d %q, want 429", res.StatusCode, msg)
	}
	if res, msg := app.client().login("bob", "correct horse"); res.StatusCode != http.StatusFound {
		t.Fatalf("bob from his own address: %d %q, want a login", res.StatusCode, msg)
	}

	spray := app.clientFrom("127.0.0.3")
	for i := range 40 {
		if res, msg := spray.login(fmt.Sprintf("ghost%02d", i), "guess"); res.StatusCode != http.StatusOK || msg != loginFailed {
			t.Fatalf("spray %d: %d %q", i, res.StatusCode, msg)
		}
	}
	if res, msg := spray.login("bob", "correct horse"); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("address over its cap: %d %q, want 429", res.StatusCode, msg)
	}
	if res, msg := app.client().login("bob", "correct horse"); res.StatusCode != http.StatusFound {
		t.Errorf("bob from his own address after the spray: %d %q", res.StatusCode, msg)
	}
}

// Guesses sent all at once are counted as they arrive, not after each is checked: no more than
// the limit is ever tried, however many run in parallel.
func TestConcurrentLoginGuessesThrottled(t *testing.T) {
	app := newTestApp(t)
	app.signUp("bob")
	const n = 30
	results := postAtOnce(t, app, n, "/login", func(i int) url.Values {
		return url.Values{"username": {"bob"}, "password": {fmt.Sprintf("guess %d", i)}}
	})
	tried, refused := 0, 0
	for _, r := range results {
		switch {
		case r.status == 0: // the request failed: postAtOnce said so
		case r.status == http.StatusOK && strings.Contains(r.body, loginFailed):
			tried++
		case r.status == http.StatusTooManyRequests:
			refused++
		default:
			t.Errorf("status %d", r.status)
		}
	}
	if tried > 5 || tried+refused != n {
		t.Errorf("%d parallel guesses were checked and %d refused; want at most 5 checked", tried, refused)
	}
}

func TestSignupCapPerAddress(t *testing.T) {
	app := newTestApp(t, handlers.Config{SignupsPerHour: 2})
	form := func(name string) url.Values {
		return url.Values{"username": {name}, "email": {name + "@example.com"},
			"password": {"long enough"}, "confirm_password": {"long enough"}}
	}
	users := func() int {
		u, err := app.store.Users(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(u)
	}
	// A refused form does not use up the allowance.
	if res := app.client().post("/register", url.Values{"username": {"x"}}); res.StatusCode != http.StatusOK {
		t.Fatalf("invalid sign-up: %d", res.StatusCode)
	}
	app.signUp("first")
	app.signUp("second")
	res := app.client().post("/register", form("third"))
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third sign-up in the hour: %d, want 429", res.StatusCode)
	}
	if msg := messages(res.doc(t)); !strings.Contains(msg, "Too many accounts were created from your address. Try again in") {
		t.Errorf("message %q", msg)
	}
	if v, _ := res.doc(t).Find("input#username").Attr("value"); v != "third" {
		t.Errorf("the typed username was not kept: %q", v)
	}
	if res.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if got := users(); got != 2 {
		t.Fatalf("%d users, want 2: the refused sign-up made an account", got)
	}
	if res := app.clientFrom("127.0.0.2").post("/register", form("elsewhere")); res.StatusCode != http.StatusFound {
		t.Errorf("sign-up from another address: %d, want 302", res.StatusCode)
	}
	app.clock.Advance(61 * time.Minute)
	if res := app.client().post("/register", form("later")); res.StatusCode != http.StatusFound {
		t.Errorf("sign-up an hour later: %d, want 302", res.StatusCode)
	}
}

// Sign-ups sent at once cannot slip past the cap between its check and its count.
func TestConcurrentSignupsCapped(t *testing.T) {
	app := newTestApp(t, handlers.Config{SignupsPerHour: 3})
	const n = 20
	results := postAtOnce(t, app, n, "/register", func(i int) url.Values {
		name := fmt.Sprintf("racer%02d", i)
		return url.Values{"username": {name}, "email": {name + "@example.com"},
			"password": {"long enough"}, "confirm_password": {"long enough"}}
	})
	created := 0
	for _, r := range results {
		switch r.status {
		case http.StatusFound:
			created++
		case http.StatusTooManyRequests, 0:
		default:
			t.Errorf("status %d", r.status)
		}
	}
	users, _ := app.store.Users(context.Background())
	if created != 3 || len(users) != 3 {
		t.Errorf("%d sign-ups answered as created, %d accounts; want exactly the cap of 3", created, len(users))
	}
}

// sent is what a request of postAtOnce got: status 0 when it failed (an error is reported).
type sent struct {
	status int
	body   string
}

// postAtOnce posts form(i), with its CSRF token, to path from n new clients (each a session of
// its own), all released at the same moment, and returns what each got, in order.
func postAtOnce(t *testing.T, app *testApp, n int, path string, form func(i int) url.Values) []sent {
	t.Helper()
	results := make([]sent, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		c := app.client()
		f := form(i)
		f.Set("csrf_token", c.token())
		req, _ := http.NewRequest(http.MethodPost, app.server.URL+path, strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", app.server.URL)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := c.hc.Do(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			results[i] = sent{res.StatusCode, string(b)}
		}()
	}
	close(start)
	wg.Wait()
	return results
}
