package handlers_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"market/handlers"
	"market/store/storetest"
)

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
	return storetest.SessionExpiry(t, app.store, token)
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
	// Let a second pass by the database's clock (the session's time left shows it), so that an
	// extension by the trade below would show.
	waitUntil(t, "a second of the session's life to pass", 5*time.Second, func() bool {
		return sessionExpiry(t, app, token) <= first-time.Second
	})
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
	storetest.ExpireSession(t, app.store, token)
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
