package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"market/store"
	"market/store/storetest"
)

// market check finds an outbox whose states, times and claims disagree.
func TestCheckMailQueue(t *testing.T) { storetest.Each(t, testCheckMailQueue) }

func testCheckMailQueue(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	for _, to := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if err := st.EnqueueMail(ctx, store.Mail{To: to, Subject: "s", Text: "t", HTML: "h", Secret: "tok"}); err != nil {
			t.Fatal(err)
		}
	}
	if problems, err := st.Check(ctx); err != nil || len(problems) > 0 {
		t.Fatalf("a fresh outbox: %v %v", problems, err)
	}
	far := time.Now().Add(48 * time.Hour).UnixMilli()
	for _, q := range []string{
		`UPDATE mails SET state = 'sent', secret = '' WHERE to_addr = 'a@example.com'`,
		`UPDATE mails SET claimed_by = 'x', claimed_until = ? WHERE to_addr = 'b@example.com'`,
		`UPDATE mails SET state = 'failed', claimed_by = 'y' WHERE to_addr = 'c@example.com'`,
	} {
		var args []any
		if strings.Contains(q, "?") {
			args = append(args, far)
		}
		if _, err := st.DB().ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	problems, err := st.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(problems, "\n")
	for _, want := range []string{"mail 1: sent without a time", "mail 2: claimed far into the future", "mail 3: failed but claimed"} {
		if !strings.Contains(got, want) {
			t.Errorf("check says %q, want %q", got, want)
		}
	}
}

// SweepMail deletes tokens a day past their expiry and mails sent long ago, and nothing else.
func TestSweepMail(t *testing.T) { storetest.Each(t, testSweepMail) }

func testSweepMail(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	u, err := st.CreateUser(ctx, "ann", "ann@example.com", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, expires := range []time.Time{now.Add(-25 * time.Hour), now.Add(-time.Hour), now.Add(time.Hour)} {
		tok := store.Token{Hash: store.TokenHash(string(rune('a' + i))), Purpose: store.TokenReset, Email: u.Email, Expires: expires}
		if err := st.IssueToken(ctx, u.ID, tok, store.Mail{To: u.Email, Subject: "s", Text: "t", HTML: "h"}); err != nil {
			t.Fatal(err)
		}
	}
	mails, err := st.ClaimMails(ctx, "me", time.Now(), time.Minute, 10)
	if err != nil || len(mails) != 3 {
		t.Fatalf("claim: %d, %v", len(mails), err)
	}
	for i, sent := range []time.Time{now.Add(-store.MailKept - time.Hour), now.Add(-time.Hour)} {
		if err := st.MailSent(ctx, mails[i].ID, sent); err != nil {
			t.Fatal(err)
		}
	}
	n, err := st.SweepMail(ctx, now)
	if err != nil || n != 2 {
		t.Errorf("swept %d rows (%v), want 2: one token, one mail", n, err)
	}
	if _, _, err := st.TokenUser(ctx, store.TokenReset, store.TokenHash("c"), now); err != nil {
		t.Errorf("the live token: %v", err)
	}
	if left, err := st.Mails(ctx, 10); err != nil || len(left) != 2 {
		t.Errorf("%d mails left (%v), want 2", len(left), err)
	}
}
