package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"market/store"
)

// market check finds an outbox whose states, times and claims disagree.
func TestCheckMailQueue(t *testing.T) {
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
