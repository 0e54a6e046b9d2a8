package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// BASE_URL is checked, and defaults to the address the server listens on.
func TestPublicURL(t *testing.T) {
	for _, c := range []struct{ base, addr, want string }{
		{"", "127.0.0.1:5000", "http://127.0.0.1:5000"},
		{"", "0.0.0.0:8080", "http://localhost:8080"},
		{"", "[::]:8080", "http://localhost:8080"},
		{"https://market.example.com/", "", "https://market.example.com"},
		{"https://example.com/market", "", "https://example.com/market"},
	} {
		if got, err := publicURL(c.base, c.addr); err != nil || got != c.want {
			t.Errorf("publicURL(%q, %q) = %q, %v; want %q", c.base, c.addr, got, err, c.want)
		}
	}
	for _, bad := range []string{"market.example.com", "ftp://x", "https://", "https://x/?a=1", "https://x/#top"} {
		if _, err := publicURL(bad, ""); err == nil {
			t.Errorf("BASE_URL %q accepted", bad)
		}
	}
	var sb strings.Builder
	if _, _, err := parseFlags([]string{"-base-url", "nope"}, func(string) string { return "" }, &sb); err == nil {
		t.Error("-base-url nope accepted")
	}
}

var loggedLink = regexp.MustCompile(`https?://[^\s"\\]+/email/confirm/[A-Za-z0-9_-]+`)

// Without SMTP_URL, the mail of a sign-up is in the log, its link on the address the server
// listens on, and the link works.
func TestMailInTheLog(t *testing.T) {
	bin := buildBinary(t)
	db := t.TempDir() + "/market.db"
	srv := startServer(t, bin, db)
	ann := signUp(t, srv.url, "ann")
	var link string
	deadline := time.Now().Add(20 * time.Second)
	for link == "" {
		link = loggedLink.FindString(srv.log.String())
		if time.Now().After(deadline) {
			t.Fatalf("no confirmation link in the log\n%s", srv.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.HasPrefix(link, srv.url+"/email/confirm/") {
		t.Fatalf("link %s, want it on %s", link, srv.url)
	}
	res, err := ann.HTTP.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the link: %d", res.StatusCode)
	}
	if strings.Count(srv.log.String(), strings.TrimPrefix(link, srv.url)) != 1 {
		t.Error("the request log holds the link's token (only the mail's line may)")
	}
	// market check reads the outbox too, beside the running server.
	if out, err := runAdmin(t, bin, db, "check"); err != nil {
		t.Errorf("check: %v\n%s", err, out)
	}
}
