package handlers_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"strings"
	"testing"
	"time"

	"market/assets"
	"market/handlers"
	sender "market/handlers/mail"
	"market/handlers/mail/mailtest"
	"market/store"
	"market/store/storetest"
)

// publicURL is the market's BASE_URL in the mail tests: not the test server's address, so a
// link that works was built from it, never from the request.
const publicURL = "https://market.example"

// mailApp is the whole stack with a mail worker sending to a real SMTP server.
type mailApp struct {
	*testApp
	smtp *mailtest.Server
	log  *lockedBuffer
}

func newMailApp(t *testing.T, cfg handlers.Config) *mailApp {
	t.Helper()
	st := storetest.Open(t)
	if _, err := st.Seed(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := mailtest.Start(t)
	logBuf := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logBuf, nil))
	from, _ := mail.ParseAddress("Market <market@market.example>")
	smtp, err := sender.NewSMTP(srv.URL(), from)
	if err != nil {
		t.Fatal(err)
	}
	w := sender.NewWorker(st, smtp, logger, sender.Options{Poll: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	as, err := assets.New()
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{now: time.Now()}
	cfg.Now, cfg.BaseURL, cfg.MailQueued = clock.Now, publicURL, w.Wake
	h := handlers.New(logger, st, handlers.NewSessionManager(st.Sessions(), false), as, cfg)
	ts := httptest.NewServer(h.Routes())
	t.Cleanup(ts.Close)
	t.Cleanup(h.StopStreams)
	return &mailApp{testApp: &testApp{t: t, server: ts, store: st, clock: clock, handler: h}, smtp: srv, log: logBuf}
}

// mailTo waits for the n-th mail to address (from 1) and returns it.
func (a *mailApp) mailTo(address string, n int) mailtest.Message {
	a.t.Helper()
	return a.smtp.WaitTo(a.t, address, n, 10*time.Second)[n-1]
}

// linkPath is the path of a mail's link, which must start with the public URL.
func (a *mailApp) linkPath(m mailtest.Message, prefix string) string {
	a.t.Helper()
	link := m.Link()
	if !strings.HasPrefix(link, publicURL+prefix) {
		a.t.Fatalf("mail %q: link %q, want %s%s...", m.Subject, link, publicURL, prefix)
	}
	if !strings.Contains(m.HTML, `href="`+link+`"`) {
		a.t.Errorf("the HTML of %q does not link to %s", m.Subject, link)
	}
	u, err := url.Parse(link)
	if err != nil {
		a.t.Fatal(err)
	}
	return u.Path
}

// outbox is every mail queued to address.
func (a *mailApp) outbox(address string) []store.Mail {
	a.t.Helper()
	mails, err := a.store.Mails(context.Background(), 10000)
	if err != nil {
		a.t.Fatal(err)
	}
	var to []store.Mail
	for _, m := range mails {
		if strings.EqualFold(m.To, address) {
			to = append(to, m)
		}
	}
	return to
}

// flashOf is the page's messages, checked to say want.
func flashOf(t *testing.T, r response, want string) {
	t.Helper()
	if got := messages(r.doc(t)); !strings.Contains(got, want) {
		t.Errorf("messages %q, want %q", got, want)
	}
}

// altered is a link with the last character of its token changed.
func altered(link string) string {
	last := link[len(link)-1]
	if last == 'A' {
		return link[:len(link)-1] + "B"
	}
	return link[:len(link)-1] + "A"
}
