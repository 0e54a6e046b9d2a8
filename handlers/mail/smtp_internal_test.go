package mail

import (
	"net/mail"
	"strings"
	"testing"
)

// SMTP_URL: STARTTLS is required unless the host is a loopback address; smtps is TLS from the
// first byte; the ports default to 587 and 465; a bad URL never repeats its password.
func TestNewSMTP(t *testing.T) {
	from, _ := mail.ParseAddress("Market <market@example.com>")
	for _, c := range []struct{ url, policy, addr string }{
		{"smtp://user:pass@smtp.example.com:587", "TLSMandatory", "smtp.example.com:587"},
		{"smtp://user:pass@smtp.example.com", "TLSMandatory", "smtp.example.com:587"},
		{"smtp://127.0.0.1:2525", "TLSOpportunistic", "127.0.0.1:2525"},
		{"smtp://localhost:25", "TLSOpportunistic", "localhost:25"},
		{"smtp://[::1]:25", "TLSOpportunistic", "::1:25"},
		{"smtps://user:pass@smtp.example.com", "", "smtp.example.com:465"},
	} {
		s, err := NewSMTP(c.url, from)
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		if c.policy != "" && s.client.TLSPolicy() != c.policy {
			t.Errorf("%s: TLS policy %s, want %s", c.url, s.client.TLSPolicy(), c.policy)
		}
		if s.client.ServerAddr() != c.addr {
			t.Errorf("%s: server %s, want %s", c.url, s.client.ServerAddr(), c.addr)
		}
	}
	for _, bad := range []string{"http://user:hunter2@example.com", "smtp://", "smtp://user:hunter2@host:port", "smtp://user:hunter2@host:99999"} {
		if _, err := NewSMTP(bad, from); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
