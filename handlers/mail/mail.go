// Package mail sends the mails of the store's outbox: a Worker per instance claims the mails
// that are due, hands them to a Sender (SMTP, or the log when no server is configured), and
// marks each sent, or due again later.
//
// The outbox is ours (store/mail.go), not a job queue such as River. A mail must be written in
// the transaction of the change that asks for it, and on SQLite every write goes through the
// store's one writer connection and its group commits: River's SQLite driver wants a
// connection of its own to write its jobs and to poll, and a second writer is what the store
// avoids (SQLite's busy handler is unfair: a waiting writer can wait out the whole busy
// timeout). Inserting River's job through our transaction would work on PostgreSQL only. The
// outbox needs one table, one claim statement (FOR UPDATE SKIP LOCKED on PostgreSQL; the one
// writer on SQLite), a lease and a backoff: some 150 lines, against a dependency with its own
// schema and migrations on both engines.
//
// Delivery is at least once: a mail is marked sent after the server accepted it, so a worker
// that dies between the two leaves it to be sent again when its claim's lease ends. The window
// is the one UPDATE after the server's answer (and a mail its batch's deadline cuts short, which
// the server may take all the same); Message-ID is the same at every attempt
// (market-ID.CREATED@domain), so a receiving server or client can tell a repeat.
package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"market/store"
)

// Sender delivers mails. Send reports each mail's fate, in order: nil (the server accepted it),
// ErrNotTried (the batch had no time left for it), or why it was not sent. A mail is tried only
// while ctx lasts; one started is finished.
type Sender interface {
	Send(ctx context.Context, mails []store.Mail) []error
}

// ErrPermanent marks a refusal that trying again will not change (an SMTP 5xx), or a mail that
// cannot be built.
var ErrPermanent = errors.New("refused for good")

// ErrNotTried marks a mail that was never offered to the server: its batch ran out of time, or
// the worker is stopping. It goes back to the outbox as it was, its attempt not counted.
var ErrNotTried = errors.New("not tried")

// SMTP sends through an SMTP server.
type SMTP struct {
	client *gomail.Client // as configured; each exchange has a client of its own (clientFor)
	host   string
	opts   []gomail.Option
	from   *mail.Address
	domain string // of From: the right side of every Message-ID
}

// smtpTimeout bounds each exchange with the server: the connection and its greeting, TLS and
// login, then each mail's commands.
const smtpTimeout = 20 * time.Second

// ParseFrom reads MAIL_FROM: "Market <market@example.com>" or a bare address.
func ParseFrom(s string) (*mail.Address, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("MAIL_FROM %q: %w", s, err)
	}
	return a, nil
}

// NewSMTP is a sender for rawURL: smtp://user:pass@host:587, which requires STARTTLS unless the
// host is a loopback address (a local relay), or smtps://user:pass@host:465, TLS from the
// first byte. The user and password are optional (a relay that trusts the network).
func NewSMTP(rawURL string, from *mail.Address) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("SMTP_URL: not a URL") // the error would repeat the password
	}
	host := u.Hostname()
	if host == "" {
		return nil, errors.New("SMTP_URL: no host")
	}
	// Without NOOP, a mail's commands are all its deadline covers (Send counts on it).
	opts := []gomail.Option{gomail.WithTimeout(smtpTimeout), gomail.WithoutNoop()}
	port := 587
	switch u.Scheme {
	case "smtp":
		if loopback(host) {
			opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
		} else {
			opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
		}
	case "smtps":
		port = 465
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("SMTP_URL: scheme %q: want smtp or smtps", u.Scheme)
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("SMTP_URL: port %q", p)
		}
	}
	opts = append(opts, gomail.WithPort(port))
	if user := u.User.Username(); user != "" {
		pass, _ := u.User.Password()
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(user), gomail.WithPassword(pass))
	}
	c, err := gomail.NewClient(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("SMTP_URL: %w", err)
	}
	_, domain, _ := strings.Cut(from.Address, "@")
	return &SMTP{client: c, host: host, opts: opts, from: from, domain: domain}, nil
}

// loopback: localhost, or an address of the loopback network.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Send sends the mails over one connection, one at a time, until ctx ends: the mails left are
// not tried. go-mail sets its timeout as a deadline on the connection once connected and at each
// mail, and Send cuts it to what is left of ctx, so the mails end by ctx's deadline (one cut
// short there counts as tried, and may arrive) and the dial one timeout after at most. A mail
// the server accepted is sent whatever follows (RSET, QUIT, the connection's end); one that
// cannot be built fails alone, for good.
func (s *SMTP) Send(ctx context.Context, mails []store.Mail) []error {
	results := make([]error, len(mails))
	msgs := make([]*gomail.Msg, len(mails))
	for i, m := range mails {
		msg, err := s.message(m)
		if err != nil {
			results[i] = fmt.Errorf("%w: %w", ErrPermanent, err)
			continue
		}
		msgs[i], results[i] = msg, ErrNotTried
	}
	if !slices.ContainsFunc(msgs, func(m *gomail.Msg) bool { return m != nil }) {
		return results
	}
	c, err := s.clientFor(ctx)
	if err != nil {
		return results
	}
	client, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		if ctx.Err() == nil { // else the dial was cut short, and nothing was offered
			for i, msg := range msgs {
				if msg != nil {
					results[i] = fmt.Errorf("connect: %w", err)
				}
			}
		}
		return results
	}
send:
	for i, msg := range msgs {
		if msg == nil {
			continue
		}
		each, err := s.clientFor(ctx)
		if err != nil {
			break
		}
		err = each.SendWithSMTPClient(client, msg)
		var se *gomail.SendError
		switch {
		case msg.IsDelivered():
			results[i] = nil
		case errors.As(err, &se) && se.ErrorCode() >= 500:
			results[i] = fmt.Errorf("%w: %w", ErrPermanent, err)
		case errors.As(err, &se) && se.ErrorCode() != 0 && se.ErrorCode() != 421:
			results[i] = err // the server's answer to this mail
		default:
			// The connection failed (or the server closes it: 421), not this mail: the mails
			// after it were never offered, and stay untried rather than count an attempt.
			results[i] = err
			break send
		}
	}
	// The mails' fates are known: QUIT's answer changes none of them.
	if err := c.CloseWithSMTPClient(client); err != nil {
		client.Close()
	}
	return results
}

// clientFor is a go-mail client whose timeout ends by ctx's deadline; ErrNotTried once ctx has
// ended. (A go-mail client is its configuration: the connection is the smtp.Client it dials.)
func (s *SMTP) clientFor(ctx context.Context) (*gomail.Client, error) {
	d := smtpTimeout
	if deadline, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(deadline))
	}
	if ctx.Err() != nil || d <= 0 {
		return nil, ErrNotTried
	}
	return gomail.NewClient(s.host, append(s.opts[:len(s.opts):len(s.opts)], gomail.WithTimeout(d))...)
}

// message is m as a MIME message: text and HTML alternatives, From, To, Date, Message-ID.
func (s *SMTP) message(m store.Mail) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	msg.FromMailAddress(s.from)
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("mail %d: %w", m.ID, err)
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(MessageID(m, s.domain))
	msg.SetDateWithValue(time.Now())
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	return msg, nil
}

// MessageID is the Message-ID of mail m (without its angle brackets), the same at every
// attempt: market-ID.CREATED@domain.
func MessageID(m store.Mail, domain string) string {
	return fmt.Sprintf("market-%d.%d@%s", m.ID, m.Created.UnixMilli(), domain)
}

// Log "sends" each mail by writing it to the log at info, its text (and so its link)
// included: what a developer without an SMTP server follows.
type Log struct{ Logger *slog.Logger }

// Send logs the mails.
func (l Log) Send(ctx context.Context, mails []store.Mail) []error {
	for _, m := range mails {
		l.Logger.LogAttrs(ctx, slog.LevelInfo, "mail (no SMTP_URL: not sent)",
			slog.Int64("id", m.ID), slog.String("to", m.To), slog.String("subject", m.Subject), slog.String("text", m.Text))
	}
	return make([]error, len(mails))
}
