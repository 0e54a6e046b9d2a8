package handlers_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"market/store/storetest"
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
	clients := make([]*client, n)
	tokens := make([]string, n)
	for i := range clients {
		clients[i] = app.client()
		tokens[i] = clients[i].token()
	}
	type result struct {
		status int
		body   string
		err    error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := url.Values{"username": {"bob"}, "password": {fmt.Sprintf("guess %d", i)}, "csrf_token": {tokens[i]}}
			req, _ := http.NewRequest(http.MethodPost, app.server.URL+"/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", app.server.URL)
			<-start
			res, err := c.hc.Do(req)
			if err != nil {
				results[i].err = err
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			results[i] = result{status: res.StatusCode, body: string(b)}
		}()
	}
	close(start)
	wg.Wait()
	tried, refused := 0, 0
	for _, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("request: %v", r.err)
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
	clients := make([]*client, n)
	tokens := make([]string, n)
	for i := range clients {
		clients[i] = app.client()
		tokens[i] = clients[i].token()
	}
	start := make(chan struct{})
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("racer%02d", i)
			form := url.Values{"username": {name}, "email": {name + "@example.com"},
				"password": {"long enough"}, "confirm_password": {"long enough"}, "csrf_token": {tokens[i]}}
			req, _ := http.NewRequest(http.MethodPost, app.server.URL+"/register", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", app.server.URL)
			<-start
			res, err := c.hc.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses[i] = res.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	created := 0
	for _, s := range statuses {
		switch s {
		case http.StatusFound:
			created++
		case http.StatusTooManyRequests:
		default:
			t.Errorf("status %d", s)
		}
	}
	users, _ := app.store.Users(context.Background())
	if created != 3 || len(users) != 3 {
		t.Errorf("%d sign-ups answered as created, %d accounts; want exactly the cap of 3", created, len(users))
	}
}

func TestRequestBodyCap(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	phone := app.item("Phone")
	const limit = 64 << 10
	// register is a valid sign-up form whose encoding is size bytes long.
	register := func(name string, size int) url.Values {
		v := url.Values{"username": {name}, "email": {name + "@example.com"}, "password": {"long enough"},
			"confirm_password": {"long enough"}, "csrf_token": {c.token()}, "padding": {""}}
		v.Set("padding", strings.Repeat("x", size-len(v.Encode())))
		if len(v.Encode()) != size {
			t.Fatalf("form of %d bytes, want %d", len(v.Encode()), size)
		}
		return v
	}
	// chunked hides the length: the body is streamed with Transfer-Encoding: chunked.
	type chunked struct{ io.Reader }
	tests := []struct {
		name       string
		path       string
		form       url.Values
		chunked    bool
		wantStatus int
	}{
		{"a sign-up of exactly the cap is fine", "/register", register("near", limit), false, http.StatusFound},
		{"a sign-up one byte over the cap", "/register", register("over", limit+1), false, http.StatusRequestEntityTooLarge},
		{"a chunked sign-up one byte over the cap", "/register", register("chunky", limit+1), true, http.StatusRequestEntityTooLarge},
		{"a chunked sign-up of exactly the cap is fine", "/register", register("chunkok", limit), true, http.StatusFound},
		{"a purchase over the cap", "/market", url.Values{"purchase_item": {id(phone)}, "csrf_token": {c.token()},
			"padding": {strings.Repeat("1", 4*limit)}}, false, http.StatusRequestEntityTooLarge},
		{"a chunked purchase over the cap", "/market", url.Values{"purchase_item": {id(phone)}, "csrf_token": {c.token()},
			"padding": {strings.Repeat("1", 4*limit)}}, true, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			usersBefore, _ := app.store.Users(ctx)
			totalsBefore, _ := app.store.Totals(ctx)
			var body io.Reader = strings.NewReader(tt.form.Encode())
			if tt.chunked {
				body = chunked{body}
			}
			req, err := http.NewRequest(http.MethodPost, app.server.URL+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.chunked {
				req.ContentLength = -1
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", app.server.URL)
			hc := *c.hc
			if tt.path == "/register" {
				hc.Jar = app.client().hc.Jar // anonymous, but carrying alice's CSRF cookie
				u, _ := url.Parse(app.server.URL)
				hc.Jar.SetCookies(u, c.hc.Jar.Cookies(u))
				hc.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: "", MaxAge: -1}})
			}
			res, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.wantStatus)
			}
			usersAfter, _ := app.store.Users(ctx)
			totalsAfter, _ := app.store.Totals(ctx)
			if tt.wantStatus == http.StatusRequestEntityTooLarge {
				if !strings.Contains(string(b), "That request was too large.") {
					t.Errorf("413 without an explanation: %.300s", b)
				}
				if len(usersAfter) != len(usersBefore) || totalsAfter != totalsBefore {
					t.Errorf("an oversized request changed something: users %d → %d, totals %+v → %+v",
						len(usersBefore), len(usersAfter), totalsBefore, totalsAfter)
				}
				if it, _ := app.store.Item(ctx, phone.ID); it.OwnerID != 0 {
					t.Error("an oversized purchase bought the phone")
				}
			}
		})
	}
}

const wantCSP = "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; " +
	"form-action 'self'; base-uri 'self'; object-src 'none'"

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			app := newTestApp(t, handlers.Config{Secure: secure})
			anon := app.client()
			type request = struct {
				name       string
				do         func() response
				wantStatus int
			}
			requests := []request{
				{"home", func() response { return anon.get("/") }, 200},
				{"login form", func() response { return anon.get("/login") }, 200},
				{"market, anonymous", func() response { return anon.get("/market") }, 302},
				{"market, htmx anonymous", func() response { return anon.get("/market", map[string]string{"HX-Request": "true"}) }, 401},
				{"asset", func() response { return anon.get("/assets/app.css") }, 200},
				{"health", func() response { return anon.get("/healthz") }, 200},
				{"unknown page", func() response { return anon.get("/no-such-page") }, 404},
				{"post without token", func() response { return anon.do("POST", "/market", url.Values{}, nil) }, 403},
				{"oversized body", func() response {
					return anon.do("POST", "/register", url.Values{"x": {strings.Repeat("x", 70<<10)}}, nil)
				}, 413},
			}
			if !secure { // with -secure, nosurf wants an https origin: posts over plain HTTP are refused
				user := app.signUp("alice")
				phone := app.item("Phone")
				requests = append(requests,
					request{"market", func() response { return user.get("/market") }, 200},
					request{"market search fragment", func() response { return user.get("/market?q=a", map[string]string{"HX-Request": "true"}) }, 200},
					request{"htmx purchase", func() response { return user.htmx("/market", url.Values{"purchase_item": {id(phone)}}) }, 200},
					request{"plain purchase", func() response { return user.post("/market", url.Values{"purchase_item": {id(phone)}}) }, 302},
				)
			}
			for _, r := range requests {
				res := r.do()
				if res.StatusCode != r.wantStatus {
					t.Errorf("%s: status %d, want %d", r.name, res.StatusCode, r.wantStatus)
				}
				h := res.Header
				if got := h.Get("Content-Security-Policy"); got != wantCSP {
					t.Errorf("%s: CSP %q", r.name, got)
				}
				if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
					t.Errorf("%s: X-Content-Type-Options %q", r.name, got)
				}
				if got := h.Get("Referrer-Policy"); got != "same-origin" {
					t.Errorf("%s: Referrer-Policy %q", r.name, got)
				}
				hsts := h.Get("Strict-Transport-Security")
				if secure && !strings.HasPrefix(hsts, "max-age=") {
					t.Errorf("%s: Strict-Transport-Security %q, want it with -secure", r.name, hsts)
				}
				if !secure && hsts != "" {
					t.Errorf("%s: Strict-Transport-Security %q over plain HTTP", r.name, hsts)
				}
			}
			// The CSRF cookie is Secure exactly when the site is.
			for _, raw := range anon.get("/register").Header.Values("Set-Cookie") {
				if strings.HasPrefix(raw, "csrf_token=") && strings.Contains(raw, "; Secure") != secure {
					t.Errorf("csrf cookie %q with secure=%v", raw, secure)
				}
			}
		})
	}
}

func TestFriendlyErrorPages(t *testing.T) {
	app := newTestApp(t)
	anon := app.client()
	user := app.signUp("alice")
	const notFound = "There is nothing at this address. Check the link, or start again from the home page."
	for _, tt := range []struct {
		name string
		c    *client
		path string
	}{
		{"unknown path", anon, "/no-such-page"},
		{"unknown nested path", anon, "/a/b/c"},
		{"unknown item", user, "/items/99999"},
		{"malformed item id", user, "/items/abc"},
		{"huge item id", user, "/items/99999999999999999999999"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.c.get(tt.path)
			if res.StatusCode != http.StatusNotFound || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("%d %q, want a 404 page", res.StatusCode, res.Header.Get("Content-Type"))
			}
			doc := res.doc(t)
			if got := text(doc.Find("h1")); got != "Not Found" || !strings.Contains(text(doc.Find("main, body")), notFound) {
				t.Errorf("heading %q, body %q", got, text(doc.Find("body")))
			}
			if doc.Find(`#flash[role="status"]`).Length() != 1 || doc.Find(`a[href="/"]`).Length() == 0 {
				t.Error("the 404 page is not a full page of the site with a way home")
			}
			if strings.Contains(res.body, "404 page not found") {
				t.Error("Go's bare 404 text shown")
			}
		})
	}

	// Break the database under the running app: the market version's table disappears, and
	// with it every signed-in request. The token is taken first, while pages still load.
	ctx := context.Background()
	phone := app.item("Phone")
	tok := user.token()
	db := otherDB(t, app)
	if _, err := db.Exec(`DROP TABLE catalogue`); err != nil {
		t.Fatal(err)
	}
	totalsBefore, _ := app.store.Totals(ctx)
	const sorry = "Something went wrong on our side. Try again in a moment."
	leaks := []string{"catalogue", "no such table", "sql", "SQL", "store:", "panic", "goroutine", ".go:"}
	for _, tt := range []struct {
		name string
		do   func() response
	}{
		{"market page", func() response { return user.get("/market") }},
		{"market search, htmx", func() response { return user.get("/market?q=x", map[string]string{"HX-Request": "true"}) }},
		{"purchase", func() response {
			return user.do(http.MethodPost, "/market", url.Values{"purchase_item": {id(phone)}, "csrf_token": {tok}}, nil)
		}},
		{"purchase, htmx", func() response {
			return user.do(http.MethodPost, "/market", url.Values{"purchase_item": {id(phone)}},
				map[string]string{"HX-Request": "true", "X-CSRF-Token": tok})
		}},
	} {
		t.Run("500 "+tt.name, func(t *testing.T) {
			res := tt.do()
			if res.StatusCode != http.StatusInternalServerError {
				t.Fatalf("status %d, want 500", res.StatusCode)
			}
			if !strings.Contains(res.body, sorry) {
				t.Errorf("500 without the apology: %.300s", res.body)
			}
			for _, leak := range leaks {
				if strings.Contains(res.body, leak) {
					t.Errorf("500 shows %q: %.500s", leak, res.body)
				}
			}
			if strings.Contains(tt.name, "htmx") && strings.Contains(res.body, "<body") {
				t.Error("htmx got a whole page for an error")
			}
		})
	}
	if after, _ := app.store.Totals(ctx); after != totalsBefore {
		t.Errorf("a failed purchase moved money: %+v → %+v", totalsBefore, after)
	}
	if it, _ := app.store.Item(ctx, phone.ID); it.OwnerID != 0 {
		t.Error("a purchase answered with 500 took the item")
	}
}

// sessionExpiry is how long the server will keep the session behind a cookie, from now.
func sessionExpiry(t *testing.T, app *testApp, token string) time.Duration {
	t.Helper()
	db := otherDB(t, app)
	query := `SELECT (expiry - julianday('now')) * 86400 FROM sessions WHERE token = ?`
	if storetest.Postgres() {
		query = `SELECT extract(epoch FROM expiry - now())::float8 FROM sessions WHERE token = ?`
	}
	var seconds float64
	err := db.QueryRow(query, token).Scan(&seconds)
	if err == sql.ErrNoRows {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(seconds * float64(time.Second))
}

// A session ends 12 hours after login however busy it is: activity does not extend it.
func TestSessionAbsoluteLifetime(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	token := sessionCookie(c)
	first := sessionExpiry(t, app, token)
	if first < 12*time.Hour-time.Minute || first > 12*time.Hour {
		t.Fatalf("a new session lasts %s, want 12h", first)
	}
	time.Sleep(1100 * time.Millisecond)
	// A plain trade writes the session (its flash message): the deadline stays where it was.
	if res, msg := c.trade("purchase_item", id(app.item("Mouse"))); res.StatusCode != http.StatusFound || msg != "Purchased Mouse!" {
		t.Fatalf("trade: %d %q", res.StatusCode, msg)
	}
	if sessionCookie(c) != token {
		t.Fatal("the session token changed without a login or logout")
	}
	if later := sessionExpiry(t, app, token); later > first-time.Second {
		t.Errorf("activity extended the session: %s left, was %s a second ago", later, first)
	}
	// When the deadline passes, the server no longer knows the session.
	expire := `UPDATE sessions SET expiry = julianday('now') - 1.0/86400 WHERE token = ?`
	if storetest.Postgres() {
		expire = `UPDATE sessions SET expiry = now() - interval '1 second' WHERE token = ?`
	}
	if _, err := otherDB(t, app).Exec(expire, token); err != nil {
		t.Fatal(err)
	}
	if res := c.get("/market"); res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/login?next=%2Fmarket" {
		t.Errorf("after the session's deadline: %d → %q, want a redirect to log in", res.StatusCode, res.Header.Get("Location"))
	}
}

// A session idle for over an hour ends; one in use does not.
func TestSessionIdleTimeout(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	token := sessionCookie(c)
	for i := range 3 { // 150 minutes of use, never 60 idle
		app.clock.Advance(50 * time.Minute)
		if res := c.get("/market"); res.StatusCode != http.StatusOK {
			t.Fatalf("in use after %d minutes: %d", 50*(i+1), res.StatusCode)
		}
	}
	app.clock.Advance(61 * time.Minute)
	res := c.get("/market", map[string]string{"HX-Request": "true"})
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("HX-Redirect") != "/login" {
		t.Errorf("htmx after 61 idle minutes: %d HX-Redirect %q", res.StatusCode, res.Header.Get("HX-Redirect"))
	}
	if sessionExpiry(t, app, token) != 0 {
		t.Error("the idle session is still stored on the server")
	}
	if res := c.get("/market"); res.StatusCode != http.StatusFound {
		t.Errorf("after the idle timeout: %d, want a redirect to log in", res.StatusCode)
	}
	// Logging in again works and starts a fresh session.
	if res, msg := c.login("alice", "correct horse"); res.StatusCode != http.StatusFound {
		t.Fatalf("login again: %d %q", res.StatusCode, msg)
	}
	if sessionCookie(c) == token {
		t.Error("the old session token came back")
	}
}
