//go:build load

package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"market/handlers"
)

// TestLoadResetTiming: the reset form answers as fast for an address no account uses as for
// one an account uses. 200 of each, interleaved, each to an address of its own (so each known
// one queues a mail, off the request path); it reports p50 and p99 of each, and fails when the
// distributions do not overlap. A timing figure: it builds with the load tag only
// (go test -tags load -run '^TestLoadResetTiming$' -v ./handlers/).
func TestLoadResetTiming(t *testing.T) {
	const n = 200
	a := newMailApp(t, handlers.Config{ResetsPerHour: 1 << 20})
	ctx := context.Background()
	for i := range n {
		if _, err := a.store.CreateUser(ctx, fmt.Sprintf("user%d", i), fmt.Sprintf("user%d@example.com", i), "correct horse"); err != nil {
			t.Fatal(err)
		}
	}
	c := a.client()
	tok := c.token()
	post := func(email string) time.Duration {
		start := time.Now()
		res := c.do(http.MethodPost, "/password/forgot", url.Values{"email_address": {email}, "csrf_token": {tok}}, nil)
		took := time.Since(start)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", email, res.StatusCode)
		}
		return took
	}
	var known, unknown []time.Duration
	for i := range n {
		known = append(known, post(fmt.Sprintf("user%d@example.com", i)))
		unknown = append(unknown, post(fmt.Sprintf("nobody%d@example.com", i)))
	}
	pct := func(d []time.Duration, p int) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[(len(s)-1)*p/100]
	}
	t.Logf("known:   p50 %v p99 %v", pct(known, 50), pct(known, 99))
	t.Logf("unknown: p50 %v p99 %v", pct(unknown, 50), pct(unknown, 99))
	if pct(known, 50) > pct(unknown, 99) || pct(unknown, 50) > pct(known, 99) {
		t.Error("the time of an answer tells whether an account uses the address")
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(a.smtp.Messages()) < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := len(a.smtp.Messages()); got != n {
		t.Errorf("%d reset mails, want %d", got, n)
	}
}
