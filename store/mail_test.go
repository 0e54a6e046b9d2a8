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

// A mail that failed for good keeps its token while the token can be used (an operator's retry
// sends a link that works), then the sweep takes it out; failed mails go, as sent ones do, once
// MailKept has passed since they failed.
func TestSweepFailedMail(t *testing.T) { storetest.Each(t, testSweepFailedMail) }

func testSweepFailedMail(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	u := storetest.CreateUser(t, st, "bea")
	now := time.Now()
	// Each mail carries its token; each fails for good, at the time given.
	for _, m := range []struct {
		secret          string
		expires, failed time.Time
	}{
		{"live-token", now.Add(time.Hour), now.Add(-time.Minute)},
		{"dead-token", now.Add(-time.Minute), now.Add(-time.Hour)},
		{"old-token", now.Add(-store.MailKept), now.Add(-store.MailKept - time.Hour)},
	} {
		tok := store.Token{Hash: store.TokenHash(m.secret), Purpose: store.TokenConfirm, Email: u.Email, Expires: m.expires}
		mail := store.Mail{To: u.Email, Subject: m.secret, Text: "go to /l/" + m.secret, HTML: `<a href="/l/` + m.secret + `">go</a>`, Secret: m.secret}
		if err := st.IssueToken(ctx, u.ID, tok, mail); err != nil {
			t.Fatal(err)
		}
		claimed, err := st.ClaimMails(ctx, "me", time.Now(), time.Minute, 1)
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claim: %d, %v", len(claimed), err)
		}
		if err := st.MailNotSent(ctx, claimed[0].ID, "me", "550 no such user", m.failed, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.SweepMail(ctx, now); err != nil {
		t.Fatal(err)
	}
	carries := map[string]bool{}
	rows, err := st.DB().Query(`SELECT subject, secret <> '' OR body_text LIKE '%-token%' OR body_html LIKE '%-token%' FROM mails`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var subject string
		var carriesToken bool
		if err := rows.Scan(&subject, &carriesToken); err != nil {
			t.Fatal(err)
		}
		carries[subject] = carriesToken
	}
	want := map[string]bool{"live-token": true, "dead-token": false}
	if len(carries) != len(want) || carries["live-token"] != true || carries["dead-token"] != false {
		t.Errorf("after the sweep, mails (do they carry their token?) %v, want %v", carries, want)
	}
	checkMailsClean(t, st)
}

// checkMailsClean fails when Check finds a problem.
func checkMailsClean(t *testing.T, st *store.Store) {
	t.Helper()
	if problems, err := st.Check(context.Background()); err != nil || len(problems) > 0 {
		t.Errorf("check: %v %v", problems, err)
	}
}

// A worker that outlived its claim's lease (another instance claimed the mail since) records
// nothing of its attempt: the mail stays the other's, not queued again for a third claim.
func TestMailNotSentKeepsAnotherClaim(t *testing.T) {
	storetest.Each(t, testMailNotSentKeepsAnotherClaim)
}

func testMailNotSentKeepsAnotherClaim(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	if err := st.EnqueueMail(ctx, store.Mail{To: "ann@example.com", Subject: "Hello", Text: "hi", HTML: "<p>hi</p>"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	first, err := st.ClaimMails(ctx, "slow", now, time.Minute, 1)
	if err != nil || len(first) != 1 {
		t.Fatalf("first claim: %d, %v", len(first), err)
	}
	second, err := st.ClaimMails(ctx, "next", now.Add(2*time.Minute), time.Minute, 1) // the lease ended
	if err != nil || len(second) != 1 {
		t.Fatalf("claim after the lease: %d, %v", len(second), err)
	}
	if err := st.MailNotSent(ctx, first[0].ID, "slow", "connection reset", now, false); err != nil {
		t.Fatal(err)
	}
	if again, err := st.ClaimMails(ctx, "third", now.Add(2*time.Minute), time.Minute, 1); err != nil || len(again) != 0 {
		t.Errorf("a third claim while the second's lease runs: %d mails (%v), want none", len(again), err)
	}
}
