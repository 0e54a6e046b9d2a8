package handlers_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"market/handlers"
	"market/store"
)

// /admin/mail lists the outbox for admins only; a failed mail can be sent again.
func TestAdminMail(t *testing.T) {
	a := newMailApp(t, handlers.Config{})
	boss := a.signUpAdmin("boss")
	a.smtp.Down()
	joe := a.signUp("joe")
	if res := joe.get("/admin/mail"); res.StatusCode != http.StatusNotFound {
		t.Errorf("a user gets %d from /admin/mail, want 404", res.StatusCode)
	}
	var failed store.Mail
	deadline := time.Now().Add(10 * time.Second)
	for failed.ID == 0 {
		for _, m := range a.outbox("joe@example.com") {
			if m.State == store.MailQueued && m.Attempts > 0 && m.LastError != "" {
				failed = m
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("joe's mail was never tried")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := a.store.DB().Exec(`UPDATE mails SET state = 'failed' WHERE id = ?`, failed.ID); err != nil {
		t.Fatal(err) // as after its last attempt, which takes hours of backoff
	}
	page := boss.get("/admin/mail").doc(t)
	row := page.Find("#mail-" + strconv.FormatInt(failed.ID, 10))
	if got := text(row); !strings.Contains(got, "joe@example.com") || !strings.Contains(got, "Confirm your email address") ||
		!strings.Contains(got, "failed") {
		t.Fatalf("row %q", got)
	}
	if res := joe.post("/admin/mail/"+strconv.FormatInt(failed.ID, 10)+"/retry", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("a user's retry: %d, want 404", res.StatusCode)
	}
	a.smtp.Up()
	if res := boss.post("/admin/mail/"+strconv.FormatInt(failed.ID, 10)+"/retry", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("retry: %d", res.StatusCode)
	}
	flashOf(t, boss.get("/admin/mail"), "The mail to joe@example.com is queued again.")
	a.mailTo("joe@example.com", 1)
	if res := boss.post("/admin/mail/"+strconv.FormatInt(failed.ID, 10)+"/retry", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("retry again: %d", res.StatusCode)
	}
	flashOf(t, boss.get("/admin/mail"), "has not failed: there is nothing to send again.")
	if problems, err := a.store.Check(context.Background()); err != nil || len(problems) > 0 {
		t.Errorf("check: %v %v", problems, err)
	}
}
