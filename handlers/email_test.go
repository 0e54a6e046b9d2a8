package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"market/handlers"
)

const expired = "This link has expired or was already used."

// Sign-up sends a confirmation link; pages say so until it is followed; the link works once.
func TestConfirmAddress(t *testing.T) {
	a := newMailApp(t, handlers.Config{})
	ann := a.signUp("ann")
	banner := text(ann.get("/market").doc(t).Find("#email-banner"))
	if !strings.Contains(banner, "Confirm your email address: we sent a link to ann@example.com.") {
		t.Errorf("banner %q", banner)
	}
	m := a.mailTo("ann@example.com", 1)
	if m.Subject != "Confirm your email address" {
		t.Errorf("subject %q", m.Subject)
	}
	path := a.linkPath(m, "/email/confirm/")
	token := strings.TrimPrefix(path, "/email/confirm/")

	altered := ann.get(altered("/email/confirm/" + token))
	flashOf(t, altered, expired)
	res := ann.get(path)
	if res.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("Referrer-Policy %q", res.Header.Get("Referrer-Policy"))
	}
	flashOf(t, res, "Your email address ann@example.com is confirmed.")
	if ann.get("/market").doc(t).Find("#email-banner").Length() != 0 {
		t.Error("the banner is still there once the address is confirmed")
	}
	flashOf(t, a.client().get(path), expired) // used
	if strings.Contains(a.log.String(), token) {
		t.Error("the log holds the token")
	}
}

// The banner's button sends a new link, at most one a minute to the address.
func TestResendConfirm(t *testing.T) {
	a := newMailApp(t, handlers.Config{})
	bob := a.signUp("bob")
	first := a.mailTo("bob@example.com", 1)
	res := bob.post("/account/email/confirm", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("resend: %d", res.StatusCode)
	}
	flashOf(t, bob.get("/account"), "We sent a link to bob@example.com.")
	a.clock.Advance(61 * time.Second)
	if res := bob.post("/account/email/confirm", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("second resend: %d %s", res.StatusCode, res.body)
	}
	second := a.mailTo("bob@example.com", 2)
	if n := len(a.outbox("bob@example.com")); n != 2 {
		t.Errorf("%d mails queued, want 2 (the resend within the minute sends nothing)", n)
	}
	if first.Link() == second.Link() {
		t.Error("a new link is the old one")
	}
	flashOf(t, bob.get(a.linkPath(first, "/email/confirm/")), "Your email address bob@example.com is confirmed.")
}

// Changing the address: the current password, a free address, a link to the new one, a
// notice to the old one; the address changes when the link is followed.
func TestChangeAddress(t *testing.T) {
	a := newMailApp(t, handlers.Config{})
	a.signUp("ann")
	cat := a.signUp("cat")
	change := func(email, password string) response {
		return cat.post("/account/email", url.Values{"email_address": {email}, "current_password": {password}})
	}
	res := change("cat2@example.com", "wrong password")
	if got := text(res.doc(t).Find("#email-current_password-error")); !strings.Contains(got, "Current password is incorrect.") {
		t.Errorf("wrong password: %d %q", res.StatusCode, got)
	}
	res = change("ANN@example.com", "correct horse")
	if got := text(res.doc(t).Find("#email-email_address-error")); !strings.Contains(got, "That email address is already registered. Log in instead.") {
		t.Errorf("taken: %q", got)
	}
	if res := change("cat2@example.com", "correct horse"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("change: %d", res.StatusCode)
	}
	flashOf(t, cat.get("/account"), "We sent a link to cat2@example.com to confirm the change.")
	notice := a.mailTo("cat@example.com", 2) // after the sign-up's confirmation
	if notice.Subject != "Your email address is about to change" || !strings.Contains(notice.Text, "cat2@example.com") || notice.Link() != "" {
		t.Errorf("notice %q: %q", notice.Subject, notice.Text)
	}
	path := a.linkPath(a.mailTo("cat2@example.com", 1), "/email/confirm/")
	if email := text(cat.get("/account").doc(t).Find("dd").Eq(1)); email != "cat@example.com" {
		t.Errorf("the address is %q before the link is followed", email)
	}
	flashOf(t, a.client().get(path), "Your email address is now cat2@example.com.")
	if email := text(cat.get("/account").doc(t).Find("dd").Eq(1)); email != "cat2@example.com" {
		t.Errorf("the address is %q after the link", email)
	}
	flashOf(t, a.client().get(path), expired)
}

// An address taken by another account between the request and the link stays with that
// account: addresses stay unique.
func TestChangeAddressTakenMeanwhile(t *testing.T) {
	a := newMailApp(t, handlers.Config{})
	hal := a.signUp("hal")
	if res := hal.post("/account/email", url.Values{"email_address": {"new@example.com"}, "current_password": {"correct horse"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("change: %d", res.StatusCode)
	}
	path := a.linkPath(a.mailTo("new@example.com", 1), "/email/confirm/")
	a.clock.Advance(61 * time.Second)
	a.signUp("new") // new@example.com, free until now
	flashOf(t, hal.get(path), "That email address is already registered to another account.")
	if email := text(hal.get("/account").doc(t).Find("dd").Eq(1)); email != "hal@example.com" {
		t.Errorf("hal's address is %q", email)
	}
}
