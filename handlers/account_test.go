package handlers_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"market/handlers"
)

func passwordForm(current, password, confirm string) url.Values {
	return url.Values{"current_password": {current}, "password": {password}, "confirm_password": {confirm}}
}

func TestAccountPasswordValidation(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	if res := c.get("/account"); res.StatusCode != http.StatusOK || res.doc(t).Find("#current_password").Length() != 1 {
		t.Fatalf("GET /account: %d", res.StatusCode)
	}
	cases := []struct {
		name, field, want string
		form              url.Values
	}{
		{"no current", "current_password", "Enter your current password.", passwordForm("", "new password", "new password")},
		{"no new", "password", "Enter a new password.", passwordForm("correct horse", "", "")},
		{"short", "password", "Use at least 8 characters for your password.", passwordForm("correct horse", "short", "short")},
		{"mismatch", "confirm_password", "The passwords do not match.", passwordForm("correct horse", "new password", "new passwort")},
		{"wrong current", "current_password", "Current password is incorrect.", passwordForm("wrong horse", "new password", "new password")},
	}
	for _, tc := range cases {
		for _, htmx := range []bool{false, true} {
			var res response
			if htmx {
				res = c.htmx("/account/password", tc.form)
			} else {
				res = c.post("/account/password", tc.form)
			}
			doc := res.doc(t)
			if res.StatusCode != http.StatusOK || text(doc.Find("#"+tc.field+"-error")) != "Error: "+tc.want {
				t.Errorf("%s (htmx %v): %d %q, want %q by %s", tc.name, htmx, res.StatusCode, text(doc.Find("#"+tc.field+"-error")), tc.want, tc.field)
			}
			if doc.Find(`input[type="password"][value]`).Length() != 0 {
				t.Errorf("%s: a password was sent back", tc.name)
			}
		}
	}
}

// A wrong current password counts as a failed login: the fifth in the window is the last.
func TestAccountPasswordThrottled(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	for i := range 5 {
		if res := c.post("/account/password", passwordForm("wrong horse", "new password", "new password")); res.StatusCode != http.StatusOK {
			t.Fatalf("attempt %d: %d", i+1, res.StatusCode)
		}
	}
	res := c.post("/account/password", passwordForm("correct horse", "new password", "new password"))
	if res.StatusCode != http.StatusTooManyRequests || text(res.doc(t).Find("#current_password-error")) != "Error: "+tooMany("15 minutes") {
		t.Errorf("sixth attempt: %d %q", res.StatusCode, text(res.doc(t).Find("#current_password-error")))
	}
	if _, msg := app.client().login("alice", "correct horse"); msg != tooMany("15 minutes") {
		t.Errorf("login after the failed password changes: %q, want the same throttle", msg)
	}
}

// A password change ends every other session of the user and keeps this one; so does
// "sign out everywhere else".
func TestAccountEndsOtherSessions(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	other := app.client()
	if res, msg := other.login("alice", "correct horse"); res.StatusCode != http.StatusFound {
		t.Fatalf("second login: %s", msg)
	}
	res := c.post("/account/password", passwordForm("correct horse", "new password", "new password"))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
		t.Fatalf("change: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if msg := messages(c.get("/account").doc(t)); msg != "Your password has been changed." {
		t.Errorf("flash: %q", msg)
	}
	if res := other.get("/market"); res.StatusCode != http.StatusFound {
		t.Errorf("the other session still works: %d", res.StatusCode)
	}
	if res := c.get("/market"); res.StatusCode != http.StatusOK {
		t.Errorf("this session ended: %d", res.StatusCode)
	}
	if res, msg := other.login("alice", "correct horse"); res.StatusCode == http.StatusFound {
		t.Error("the old password still logs in")
	} else if msg != loginFailed {
		t.Errorf("old password: %q", msg)
	}
	if res, _ := other.login("alice", "new password"); res.StatusCode != http.StatusFound {
		t.Fatal("the new password does not log in")
	}
	res = c.htmx("/account/sessions", url.Values{})
	if res.StatusCode != http.StatusOK || messages(res.doc(t)) != "Signed out of every other session." {
		t.Errorf("end sessions: %d %s", res.StatusCode, res.body)
	}
	if res := other.get("/market"); res.StatusCode != http.StatusFound {
		t.Errorf("the other session survived: %d", res.StatusCode)
	}
	if res := c.get("/market"); res.StatusCode != http.StatusOK {
		t.Errorf("this session ended: %d", res.StatusCode)
	}
	res = c.post("/account/sessions", url.Values{})
	if res.StatusCode != http.StatusSeeOther || messages(c.get("/account").doc(t)) != "Signed out of every other session." {
		t.Errorf("end sessions without JavaScript: %d", res.StatusCode)
	}
	// htmx password change: the empty form comes back with the message.
	res = c.do("POST", "/account/password", passwordForm("new password", "newer password", "newer password"),
		map[string]string{"HX-Request": "true", "HX-Target": "password-form", "X-CSRF-Token": c.token()})
	if messages(res.doc(t)) != "Your password has been changed." || res.doc(t).Find("#password-form").Length() != 1 {
		t.Errorf("htmx change: %s", res.body)
	}
	for _, path := range []string{"/account"} {
		if res := app.client().get(path); res.StatusCode != http.StatusFound {
			t.Errorf("anonymous %s: %d", path, res.StatusCode)
		}
	}
}

// A live stream of a session that a password change ended closes at its next ping.
func TestAccountEndsOtherStreams(t *testing.T) {
	app := newTestApp(t, handlers.Config{StreamPing: 50 * time.Millisecond})
	c := app.signUp("alice")
	other := app.client()
	if res, msg := other.login("alice", "correct horse"); res.StatusCode != http.StatusFound {
		t.Fatalf("second login: %s", msg)
	}
	ls := other.stream("/market/events", nil)
	mine := c.stream("/market/events", nil)
	if res := c.post("/account/password", passwordForm("correct horse", "new password", "new password")); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("change: %d", res.StatusCode)
	}
	if ev := ls.next(t, time.Second); ev.name != "close" || ev.data != "signed out" {
		t.Errorf("the ended session's stream: %+v, want close: signed out", ev)
	}
	// This session's stream stays open: it has only pings.
	deadline := time.After(300 * time.Millisecond)
	for {
		select {
		case ev := <-mine.events:
			if !ev.comment {
				t.Fatalf("this session's stream got %+v", ev)
			}
			continue
		case <-deadline:
		}
		break
	}
}
