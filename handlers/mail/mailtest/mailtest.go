// Package mailtest is a real SMTP server for tests (emersion/go-smtp, in process, on a loopback
// port): it keeps what it receives, can be taken down and brought up again on the same port,
// can refuse mails for a while, answer each slowly, or hang up at a command.
package mailtest

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one mail the server accepted.
type Message struct {
	From, To  string
	Subject   string
	MessageID string
	Date      string
	FromHdr   string
	Text      string // the text/plain part
	HTML      string // the text/html part
}

// Link is the first http(s) link of the mail's text, or "".
func (m Message) Link() string { return linkRE.FindString(m.Text) }

var linkRE = regexp.MustCompile(`https?://\S+`)

// Server is an SMTP server on 127.0.0.1.
type Server struct {
	t    testing.TB
	addr string

	mu      sync.Mutex
	srv     *smtp.Server
	ln      net.Listener
	got     []Message
	refuse  int           // the next refuse mails get 451
	delay   time.Duration // how long each mail's data waits for its answer
	hangUp  string        // a command at which the server drops the connection
	changed chan struct{}
}

// Start serves SMTP on a free loopback port until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, changed: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.Down)
	return s
}

// URL is the server's SMTP_URL.
func (s *Server) URL() string { return "smtp://" + s.addr }

func (s *Server) serve(ln net.Listener) {
	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	s.mu.Lock()
	s.srv, s.ln = srv, ln
	s.mu.Unlock()
	go srv.Serve(hangUpListener{ln, s})
}

// Down stops the server: connections are refused until Up.
func (s *Server) Down() {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv != nil {
		ln.Close() // Serve may not have taken it yet, and then Close would not close it
		srv.Close()
	}
}

// Up serves again on the same port.
func (s *Server) Up() {
	s.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", s.addr)
		if err == nil {
			s.serve(ln)
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("listen again on %s: %v", s.addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Refuse answers the next n mails with 451 (try again later).
func (s *Server) Refuse(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = n
}

// Delay answers each mail's data after d.
func (s *Server) Delay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// HangUpAt drops the connection, unanswered, when the client sends the command (QUIT, RSET).
func (s *Server) HangUpAt(command string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hangUp = strings.ToUpper(command)
}

// hangUpListener's connections end when the client sends the server's hangUp command.
type hangUpListener struct {
	net.Listener
	s *Server
}

func (l hangUpListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return hangUpConn{c, l.s}, nil
}

type hangUpConn struct {
	net.Conn
	s *Server
}

// Read drops the connection at the command: SMTP's client waits for each answer, so a command
// starts a read.
func (c hangUpConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.s.mu.Lock()
	command := c.s.hangUp
	c.s.mu.Unlock()
	if command != "" && n > 0 && bytes.HasPrefix(bytes.ToUpper(p[:n]), []byte(command+"\r\n")) {
		c.Conn.Close()
		return 0, io.EOF
	}
	return n, err
}

// Messages are the mails accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.got...)
}

// Wait waits up to timeout for the mails accepted to satisfy ok, and returns them.
func (s *Server) Wait(timeout time.Duration, ok func([]Message) bool) ([]Message, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, changed := append([]Message(nil), s.got...), s.changed
		s.mu.Unlock()
		if ok(got) {
			return got, true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return got, false
		}
	}
}

// WaitTo waits up to timeout for n mails to address and returns them.
func (s *Server) WaitTo(t testing.TB, address string, n int, timeout time.Duration) []Message {
	t.Helper()
	var to []Message
	_, ok := s.Wait(timeout, func(got []Message) bool {
		to = to[:0]
		for _, m := range got {
			if strings.EqualFold(m.To, address) {
				to = append(to, m)
			}
		}
		return len(to) >= n
	})
	if !ok {
		t.Fatalf("%d mails to %s within %s, want %d", len(to), address, timeout, n)
	}
	return to
}

func (s *Server) accept(m Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse > 0 {
		s.refuse--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.got = append(s.got, m)
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s        *Server
	from, to string
}

func (x *session) Reset()        { x.from, x.to = "", "" }
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = to
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := parse(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, Message: "unreadable: " + err.Error()}
	}
	m.From, m.To = x.from, x.to
	x.s.mu.Lock()
	delay := x.s.delay
	x.s.mu.Unlock()
	time.Sleep(delay) // a slow server
	return x.s.accept(m)
}

// parse reads the headers and the text and HTML parts of a mail.
func parse(raw []byte) (Message, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, err
	}
	dec := new(mime.WordDecoder)
	subject, _ := dec.DecodeHeader(msg.Header.Get("Subject"))
	m := Message{Subject: subject, MessageID: msg.Header.Get("Message-ID"), Date: msg.Header.Get("Date"), FromHdr: msg.Header.Get("From")}
	err = walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, &m)
	return m, err
}

func walk(contentType, encoding string, body io.Reader, m *Message) error {
	media, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return err
	}
	if strings.HasPrefix(media, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, m); err != nil {
				return err
			}
		}
	}
	text, err := decode(encoding, body)
	if err != nil {
		return err
	}
	switch media {
	case "text/plain":
		m.Text = text
	case "text/html":
		m.HTML = text
	}
	return nil
}
