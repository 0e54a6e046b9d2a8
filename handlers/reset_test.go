package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"market/handlers"
	"market/handlers/mail/mailtest"
	"market/store/storetest"
)

func resetSent(email string) string {
	return fmt.Sprintf("If an account uses %s, we sent it a link to choose a new password. The link works for one hour.", email)
}

// forgot asks for a reset link for email, from c.
func forgot(t *testing.T, c *client, email string, headers ...map[string]string) response {
	t.Helper()
	return c.post("/password/forgot", url.Values{"email_address": {email}}, headers...)
}

// The whole reset: the link, the token out of the URL, the new password, every session ended,
// the old password refused, a notice, and the link dead.
func TestPasswordReset(t *testing.T) {
	a := newMailApp(t, handlers.Config{})
	dan := a.signUp("dan")
	if href, _ := a.client().get("/login").doc(t).Find(`a:contains("Forgot your password?")`).Attr("href"); href != "/password/forgot" {
		t.Errorf("/login links to %q for a forgotten password", href)
	}
	anon := a.client()
	a.clock.Advance(61 * time.Second) // the sign-up's confirmation took the address's minute
	forgedHost(t, anon, "DAN@example.com")
	m := a.mailTo("dan@example.com", 2) // after the sign-up's confirmation
	if m.Subject != "Choose a new password" || strings.Contains(m.Text+m.HTML, "evil.example") {
		t.Fatalf("reset mail %q: %q", m.Subject, m.Text)
	}
	path := a.linkPath(m, "/password/reset/")
	token := strings.TrimPrefix(path, "/password/reset/")

	res := anon.get(path)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/password/reset" ||
		res.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("link: %d to %q, Referrer-Policy %q", res.StatusCode, res.Header.Get("Location"), res.Header.Get("Referrer-Policy"))
	}
	page := anon.get("/password/reset")
	if page.Header.Get("Referrer-Policy") != "no-referrer" || page.doc(t).Find(`input[name="password"]`).Length() != 1 {
		t.Fatalf("reset form: %d, Referrer-Policy %q", page.StatusCode, page.Header.Get("Referrer-Policy"))
	}
	if strings.Contains(page.body, token) {
		t.Error("the form's page holds the token")
	}
	short := anon.post("/password/reset", url.Values{"password": {"short"}, "confirm_password": {"short"}})
	if !strings.Contains(text(short.doc(t).Find("#password-error")), "Use at least 8 characters for your password.") {
		t.Errorf("a short password: %q", text(short.doc(t).Find(".error-message")))
	}
	res = anon.post("/password/reset", url.Values{"password": {"new horse battery"}, "confirm_password": {"new horse battery"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Fatalf("reset: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	flashOf(t, anon.get("/login"), "Your password has been changed. Log in with your new password.")

	if res := dan.get("/market"); res.StatusCode != http.StatusFound {
		t.Errorf("dan's old session still signed in: %d", res.StatusCode)
	}
	login := func(password string) int {
		return a.client().post("/login", url.Values{"username": {"dan"}, "password": {password}}).StatusCode
	}
	if login("correct horse") != http.StatusOK || login("new horse battery") != http.StatusFound {
		t.Error("the old password still logs in, or the new one does not")
	}
	if n := a.mailTo("dan@example.com", 3); n.Subject != "Your password has been changed" {
		t.Errorf("notice: %q", n.Subject)
	}
	flashOf(t, a.client().get(path), expired) // used
	if strings.Contains(a.log.String(), token) {
		t.Error("the log holds the token")
	}
}

// forgedHost asks for a reset link for email with a forged Host (and X-Forwarded-Host), which
// must never reach the link: links start with BASE_URL.
func forgedHost(t *testing.T, anon *client, email string) {
	t.Helper()
	form := url.Values{"email_address": {email}, "csrf_token": {anon.token()}}
	req, _ := http.NewRequest(http.MethodPost, anon.app.server.URL+"/password/forgot", strings.NewReader(form.Encode()))
	req.Host = "evil.example"
	for _, c := range anon.hc.Jar.Cookies(req.URL) { // the jar would pick them by the forged host
		req.AddCookie(c)
	}
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("Sec-Fetch-Site", "same-origin") // what a script forging Host may well say
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	forged, err := (&http.Client{}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	forged.Body.Close()
	if forged.StatusCode != http.StatusOK {
		t.Fatalf("forgot with a forged Host: %d", forged.StatusCode)
	}
}

// A reset link dies after an hour, and when the password changes on /account; an unknown or
// altered one says the same.
func TestResetLinkExpires(t *testing.T) {
	a := newMailApp(t, handlers.Config{})
	a.signUp("eve")
	a.clock.Advance(61 * time.Second)
	forgot(t, a.client(), "eve@example.com")
	first := a.linkPath(a.mailTo("eve@example.com", 2), "/password/reset/")
	flashOf(t, a.client().get(altered(first)), expired)
	flashOf(t, a.client().get("/password/reset"), expired) // no token in the session

	a.clock.Advance(61 * time.Minute)
	flashOf(t, a.client().get(first), expired)

	forgot(t, a.client(), "eve@example.com")
	second := a.linkPath(a.mailTo("eve@example.com", 3), "/password/reset/")
	holder := a.client()
	if res := holder.get(second); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("fresh link: %d", res.StatusCode)
	}
	eve := a.client() // the session from before the hour is over has ended
	if res := eve.post("/login", url.Values{"username": {"eve"}, "password": {"correct horse"}}); res.StatusCode != http.StatusFound {
		t.Fatalf("login: %d", res.StatusCode)
	}
	eve.post("/account/password", url.Values{"current_password": {"correct horse"}, "password": {"other horse 2"}, "confirm_password": {"other horse 2"}})
	res := holder.post("/password/reset", url.Values{"password": {"new horse battery"}, "confirm_password": {"new horse battery"}})
	flashOf(t, res, expired)
}

// Known and unknown addresses get the same status and words.
func TestResetSameAnswer(t *testing.T) {
	a := newMailApp(t, handlers.Config{})
	a.signUp("fay")
	known := forgot(t, a.client(), "fay@example.com")
	unknown := forgot(t, a.client(), "nobody@example.com")
	if known.StatusCode != unknown.StatusCode {
		t.Errorf("status %d for a known address, %d for an unknown one", known.StatusCode, unknown.StatusCode)
	}
	k, u := messages(known.doc(t)), messages(unknown.doc(t))
	if k != resetSent("fay@example.com") || u != resetSent("nobody@example.com") {
		t.Errorf("known %q, unknown %q", k, u)
	}
	csrf := regexp.MustCompile(`[A-Za-z0-9+/=_-]{40,}`) // the CSRF token, masked anew for each page
	same := func(body, name string) string {
		return csrf.ReplaceAllString(strings.ReplaceAll(body, name+"@", "x@"), "T")
	}
	if same(known.body, "fay") != same(unknown.body, "nobody") {
		t.Error("the pages differ beyond the address")
	}
}

// 200 reset requests for one victim from one client: 20 answered, the rest 429, one mail,
// and no password hash.
func TestResetFlood(t *testing.T) {
	a := newMailApp(t, handlers.Config{})
	a.signUp("gil")
	a.mailTo("gil@example.com", 1)
	a.clock.Advance(61 * time.Second)
	hashes := a.store.HashesDone()
	attacker := a.client()
	tok := attacker.token()
	codes := map[int]int{}
	for range 200 {
		res := attacker.do(http.MethodPost, "/password/forgot", url.Values{"email_address": {"gil@example.com"}, "csrf_token": {tok}}, nil)
		codes[res.StatusCode]++
		if res.StatusCode == http.StatusTooManyRequests && res.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if codes[http.StatusOK] != 20 || codes[http.StatusTooManyRequests] != 180 {
		t.Errorf("statuses %v, want 20 of 200 and 180 of 429", codes)
	}
	a.mailTo("gil@example.com", 2)
	if _, more := a.smtp.Wait(300*time.Millisecond, func(m []mailtest.Message) bool { return len(m) > 2 }); more {
		t.Error("more than one reset mail")
	}
	if n := len(a.outbox("gil@example.com")); n != 2 {
		t.Errorf("%d mails to the victim, want 2 (its confirmation, one reset)", n)
	}
	if d := a.store.HashesDone() - hashes; d != 0 {
		t.Errorf("%d password hashes", d)
	}
}

// A reset that was answered is queued by the time WaitLater returns, as shutdown waits for it
// before the store closes; while its write waits (the writer held elsewhere), WaitLater gives
// up at its deadline.
func TestResetWaitedFor(t *testing.T) {
	a := newMailApp(t, handlers.Config{})
	a.signUp("hal")
	a.clock.Advance(61 * time.Second) // the sign-up's confirmation took the address's minute
	release := storetest.HoldWriter(t, a.store, "mail_tokens")
	if res := forgot(t, a.client(), "hal@example.com"); res.StatusCode != http.StatusOK {
		t.Fatalf("forgot: %d", res.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if a.handler.WaitLater(ctx) {
		t.Error("WaitLater: done while the reset's write waits for the writer")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("WaitLater took %v past a deadline of 200 ms", took)
	}
	release()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !a.handler.WaitLater(ctx) {
		t.Fatal("WaitLater: the reset still at work 10 s after the writer was free")
	}
	if n := len(a.outbox("hal@example.com")); n != 2 {
		t.Errorf("%d mails to hal once WaitLater returned, want 2 (the confirmation, the reset)", n)
	}
}
