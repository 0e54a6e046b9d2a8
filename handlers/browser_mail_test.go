// Browser: the journeys of the email address, with the mails from a real SMTP server.

package handlers_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"market/handlers"
)

// TestBrowserMail: confirming the address from the mail, changing it, and a forgotten password,
// from the login page's link to signing in with the new password, the old session gone.
func TestBrowserMail(t *testing.T) {
	browser := startBrowser(t)
	a := newMailApp(t, handlers.Config{})
	old := newBrowserTab(t, browser, a.testApp)
	old.signUpWithForm("kim", false)
	if got := old.text("email-banner"); !strings.Contains(got, "Confirm your email address: we sent a link to kim@example.com.") {
		t.Fatalf("banner %q", got)
	}
	old.audit("the confirmation banner")
	browserConfirmAndChange(t, a, old)

	a.clock.Advance(61 * time.Second) // the address's mail of this minute was the change's
	b := newBrowserTab(t, browser, a.testApp)
	b.navigate("/login")
	b.run("follow Forgot your password?", chromedp.Click(chromedp.CSS(`a[href="/password/forgot"]`)))
	b.waitFor("the forgot page", `location.pathname === '/password/forgot' && document.readyState === 'complete'`)
	b.audit("forgot password")
	b.run("ask for a link",
		chromedp.SendKeys(chromedp.ID("email_address"), "kim2@example.com"),
		chromedp.Click(chromedp.CSS(`form[action="/password/forgot"] button[type="submit"]`)))
	b.waitFor("the answer", `document.getElementById('flash').textContent.includes('If an account uses kim2@example.com, we sent it a link')`)
	link := a.linkPath(a.mailTo("kim2@example.com", 2), "/password/reset/")
	b.navigate(link)
	b.waitFor("the reset form", `location.pathname === '/password/reset' && document.getElementById('confirm_password') !== null`)
	if got := b.js(`location.href`); strings.Contains(got, strings.TrimPrefix(link, "/password/reset/")) {
		t.Errorf("the token is still in the address bar: %s", got)
	}
	b.audit("reset form")
	b.run("choose a new password",
		chromedp.SendKeys(chromedp.ID("password"), "new horse battery"),
		chromedp.SendKeys(chromedp.ID("confirm_password"), "new horse battery"),
		chromedp.Click(chromedp.CSS(`form[action="/password/reset"] button[type="submit"]`)))
	b.waitFor("the login page", `location.pathname === '/login' && document.readyState === 'complete'`)
	if got := b.text("flash"); got != "Your password has been changed. Log in with your new password." {
		t.Errorf("after the reset #flash says %q", got)
	}
	b.run("log in with the new password",
		chromedp.SendKeys(chromedp.ID("username"), "kim"),
		chromedp.SendKeys(chromedp.ID("password"), "new horse battery"),
		chromedp.Click(chromedp.CSS(`form[action^="/login"] button[type="submit"]`)))
	b.waitFor("the market", `location.pathname === '/market' && document.readyState === 'complete'`)

	old.navigate("/market")
	if got := old.js(`location.pathname`); got != "/login" {
		t.Errorf("the session from before the reset is on %s, want the login page", got)
	}
	if n := a.mailTo("kim2@example.com", 3); n.Subject != "Your password has been changed" {
		t.Errorf("notice %q", n.Subject)
	}
}

// browserConfirmAndChange follows the confirmation link of kim's sign-up, then changes the
// address to kim2@example.com from /account and follows that link.
func browserConfirmAndChange(t *testing.T, a *mailApp, old *browserTab) {

	old.navigate(a.linkPath(a.mailTo("kim@example.com", 1), "/email/confirm/"))
	if got := old.text("flash"); got != "Your email address kim@example.com is confirmed." {
		t.Errorf("after the confirmation link #flash says %q", got)
	}
	old.navigate("/market")
	if old.js(`String(document.getElementById('email-banner') === null)`) != "true" {
		t.Error("the banner stays once the address is confirmed")
	}

	old.navigate("/account")
	old.run("ask to change the address",
		chromedp.SendKeys(chromedp.ID("email-email_address"), "kim2@example.com"),
		chromedp.SendKeys(chromedp.ID("email-current_password"), "correct horse"),
		chromedp.Click(chromedp.CSS(`#email-form button[type="submit"]`)))
	old.waitFor("the change asked", `document.getElementById('flash').textContent.includes('We sent a link to kim2@example.com to confirm the change.')`)
	old.navigate(a.linkPath(a.mailTo("kim2@example.com", 1), "/email/confirm/"))
	if got := old.text("flash"); got != "Your email address is now kim2@example.com." {
		t.Errorf("after the change link #flash says %q", got)
	}
}
