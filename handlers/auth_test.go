package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func TestRegisterValidation(t *testing.T) {
	app := newTestApp(t)
	app.signUp("taken_user")
	long := strings.Repeat("a", 31)
	valid := url.Values{"username": {"new_user"}, "email": {"new@example.com"},
		"password": {"long enough"}, "confirm_password": {"long enough"}}
	with := func(field, value string) url.Values {
		v := url.Values{}
		for k, vs := range valid {
			v[k] = vs
		}
		v.Set(field, value)
		return v
	}
	tests := []struct {
		name, field, want string
		form              url.Values
	}{
		{"empty username", "username", "Enter a username.", with("username", "")},
		{"one-letter username", "username", "Use 2 to 30 characters for your username.", with("username", "a")},
		{"31-letter username", "username", "Use 2 to 30 characters for your username.", with("username", long)},
		{"username with a space", "username", "Use only letters, digits, _ . or - in your username.", with("username", "ab cd")},
		{"username with non-ASCII letters", "username", "Use only letters, digits, _ . or - in your username.", with("username", "zoë")},
		{"taken username in other case", "username", "That username is taken. Choose another.", with("username", "TAKEN_USER")},
		{"empty email", "email", "Enter an email address.", with("email", "")},
		{"email without at", "email", "Enter an email address like name@example.com.", with("email", "nobody.example.com")},
		{"email with display name", "email", "Enter an email address like name@example.com.", with("email", "Bob <bob@example.com>")},
		{"email without dot in domain", "email", "Enter an email address like name@example.com.", with("email", "bob@localhost")},
		{"email over 120 characters", "email", "Use an email address of at most 120 characters.", with("email", strings.Repeat("a", 110)+"@example.com")},
		{"taken email in other case", "email", "That email address is already registered. Log in instead.", with("email", "Taken_User@Example.COM")},
		{"empty password", "password", "Enter a password.", with("password", "")},
		{"short password", "password", "Use at least 8 characters for your password.", with("password", "short")},
		{"password over 72 bytes", "password", "Use at most 72 bytes for your password.", with("password", strings.Repeat("p", 73))},
		{"empty confirmation", "confirm_password", "Confirm your password.", with("confirm_password", "")},
		{"confirmation differs", "confirm_password", "The passwords do not match.", with("confirm_password", "long enougH")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := app.store.Users(context.Background())
			res := app.client().post("/register", tt.form)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", res.StatusCode)
			}
			doc := res.doc(t)
			errEl := doc.Find("#" + tt.field + "-error")
			if got := strings.TrimPrefix(text(errEl), "Error: "); got != tt.want {
				t.Errorf("error for %s = %q, want %q", tt.field, got, tt.want)
			}
			input := doc.Find("input#" + tt.field)
			if d, _ := input.Attr("aria-describedby"); !strings.Contains(d, tt.field+"-error") {
				t.Errorf("input %s aria-describedby = %q, want it to name its error", tt.field, d)
			}
			if v, _ := doc.Find("input#username").Attr("value"); v != tt.form.Get("username") {
				t.Errorf("typed username not kept: %q", v)
			}
			if v, ok := doc.Find("input#password").Attr("value"); ok && v != "" {
				t.Errorf("password echoed back: %q", v)
			}
			after, _ := app.store.Users(context.Background())
			if len(after) != len(before) {
				t.Errorf("users %d → %d: a refused sign-up created an account", len(before), len(after))
			}
		})
	}
}

// Both names taken: both errors at once, each next to its field, and in the summary.
func TestRegisterBothTaken(t *testing.T) {
	app := newTestApp(t)
	app.signUp("taken_user")
	res := app.client().post("/register", url.Values{"username": {"Taken_User"}, "email": {"TAKEN_USER@example.com"},
		"password": {"long enough"}, "confirm_password": {"long enough"}})
	doc := res.doc(t)
	for field, want := range map[string]string{
		"username": "That username is taken. Choose another.",
		"email":    "That email address is already registered. Log in instead.",
	} {
		if got := strings.TrimPrefix(text(doc.Find("#"+field+"-error")), "Error: "); got != want {
			t.Errorf("error for %s = %q, want %q", field, got, want)
		}
	}
	if n := doc.Find(".error-summary li").Length(); n != 2 {
		t.Errorf("the error summary lists %d errors, want 2", n)
	}
	if title := text(doc.Find("title")); !strings.HasPrefix(title, "Error: ") {
		t.Errorf("title %q does not start with Error: ", title)
	}
}

func TestRegisterLogsInWithBudget(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	res := c.get("/market")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /market after sign-up: %d", res.StatusCode)
	}
	doc := res.doc(t)
	if got := text(doc.Find("span#budget")); got != "$1,000" {
		t.Errorf("budget %q, want $1,000", got)
	}
	if got := messages(doc); got != "Account created successfully! You are now logged in as alice." {
		t.Errorf("flash %q", got)
	}
	if got := messages(c.get("/market").doc(t)); got != "" {
		t.Errorf("flash shown twice: %q", got)
	}
}

func TestSimultaneousSignUpsMakeOneAccount(t *testing.T) {
	app := newTestApp(t)
	const n = 12
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := app.client()
			form := url.Values{"username": {"racer"}, "email": {fmt.Sprintf("racer%d@example.com", i)},
				"password": {"long enough"}, "confirm_password": {"long enough"}}
			statuses <- c.post("/register", form).StatusCode
		}()
	}
	wg.Wait()
	close(statuses)
	created := 0
	for s := range statuses {
		switch s {
		case http.StatusFound:
			created++
		case http.StatusOK: // the form again, with "That username is taken."
		default:
			t.Errorf("status %d, want 302 or 200", s)
		}
	}
	users, _ := app.store.Users(context.Background())
	if created != 1 || len(users) != 1 {
		t.Errorf("created %d, users %d; want exactly one", created, len(users))
	}
}

func TestLogin(t *testing.T) {
	app := newTestApp(t)
	app.signUp("bob")
	tests := []struct {
		name, username, password, next string
		wantStatus                     int
		wantLocation, wantMessage      string
	}{
		{"right password", "bob", "correct horse", "", http.StatusFound, "/market", ""},
		{"username in other case", "BOB", "correct horse", "", http.StatusFound, "/market", ""},
		{"local next is honoured", "bob", "correct horse", "/items/3", http.StatusFound, "/items/3", ""},
		{"foreign next is ignored", "bob", "correct horse", "https://evil.example/", http.StatusFound, "/market", ""},
		{"scheme-relative next is ignored", "bob", "correct horse", "//evil.example/x", http.StatusFound, "/market", ""},
		{"backslash next is ignored", "bob", "correct horse", "/\\evil.example", http.StatusFound, "/market", ""},
		{"wrong password", "bob", "wrong horse", "", http.StatusOK, "", "Login failed. Check username and password."},
		{"unknown user", "nobody", "correct horse", "", http.StatusOK, "", "Login failed. Check username and password."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := app.client()
			form := url.Values{"username": {tt.username}, "password": {tt.password}}
			if tt.next != "" {
				form.Set("next", tt.next)
			}
			res := c.post("/login", form)
			if res.StatusCode != tt.wantStatus || res.Header.Get("Location") != tt.wantLocation {
				t.Fatalf("got %d → %q, want %d → %q", res.StatusCode, res.Header.Get("Location"), tt.wantStatus, tt.wantLocation)
			}
			if tt.wantMessage != "" {
				if got := messages(res.doc(t)); got != tt.wantMessage {
					t.Errorf("message %q, want %q", got, tt.wantMessage)
				}
				return
			}
			doc := c.get("/market").doc(t)
			if got := messages(doc); got != "Login successful! Welcome back, bob." {
				t.Errorf("flash %q", got)
			}
		})
	}
}

func sessionCookie(c *client) string {
	u, _ := url.Parse(c.app.server.URL)
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == "session" {
			return ck.Value
		}
	}
	return ""
}

func TestSessionTokenRenewedAtLoginAndLogout(t *testing.T) {
	app := newTestApp(t)
	app.signUp("carol")
	c := app.client()
	c.get("/login")
	// An anonymous visit keeps no session, so the token before login is one an attacker
	// planted (session fixation): login must not keep it.
	u0, _ := url.Parse(app.server.URL)
	c.hc.Jar.SetCookies(u0, []*http.Cookie{{Name: "session", Value: "planted-by-an-attacker-0123456789abcdef", Path: "/"}})
	c.get("/market")
	before := sessionCookie(c)
	if before == "" {
		t.Fatal("no anonymous session before login")
	}
	if res := c.post("/login", url.Values{"username": {"carol"}, "password": {"correct horse"}}); res.StatusCode != http.StatusFound {
		t.Fatalf("login: %d", res.StatusCode)
	}
	loggedIn := sessionCookie(c)
	if loggedIn == "" || loggedIn == before {
		t.Fatalf("session token not renewed at login: %q → %q", before, loggedIn)
	}

	// A copy of the logged-in cookie, as an attacker who stole it would hold.
	thief := app.client()
	u, _ := url.Parse(app.server.URL)
	thief.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: loggedIn, Path: "/"}})
	if res := thief.get("/market"); res.StatusCode != http.StatusOK {
		t.Fatalf("copied cookie before logout: %d, want 200", res.StatusCode)
	}

	res := c.get("/logout")
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/" {
		t.Fatalf("logout: %d → %q", res.StatusCode, res.Header.Get("Location"))
	}
	if after := sessionCookie(c); after == loggedIn {
		t.Error("session token not renewed at logout")
	}
	if got := messages(c.get("/").doc(t)); got != "You have been logged out." {
		t.Errorf("logout message %q", got)
	}
	if res := c.get("/market"); res.StatusCode != http.StatusFound {
		t.Errorf("market after logout: %d, want 302", res.StatusCode)
	}
	if res := thief.get("/market"); res.StatusCode != http.StatusFound ||
		res.Header.Get("Location") != "/login?next=%2Fmarket" {
		t.Errorf("copied cookie after logout: %d → %q, want a redirect to log in", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestLogoutWhenAnonymous(t *testing.T) {
	app := newTestApp(t)
	res := app.client().get("/logout")
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/" {
		t.Fatalf("anonymous logout: %d → %q", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestMarketNeedsLogin(t *testing.T) {
	app := newTestApp(t)
	c := app.client()
	res := c.get("/market")
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/login?next=%2Fmarket" {
		t.Fatalf("anonymous /market: %d → %q", res.StatusCode, res.Header.Get("Location"))
	}
	doc := c.get("/login?next=%2Fmarket").doc(t)
	if got := messages(doc); got != "Please log in to access this page." {
		t.Errorf("message %q", got)
	}
	res = c.get("/market", map[string]string{"HX-Request": "true"})
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("HX-Redirect") != "/login" {
		t.Errorf("anonymous htmx /market: %d HX-Redirect %q, want 401 /login", res.StatusCode, res.Header.Get("HX-Redirect"))
	}
	// Logging in from that page goes back to the market.
	app.signUp("dave")
	res = c.post("/login?next=%2Fmarket", url.Values{"username": {"dave"}, "password": {"correct horse"}, "next": {"/market"}})
	if res.Header.Get("Location") != "/market" {
		t.Errorf("after login: %q", res.Header.Get("Location"))
	}
}
