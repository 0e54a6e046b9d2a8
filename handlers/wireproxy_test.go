package handlers_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// wireProxy stands between the store and PostgreSQL and counts round trips: on each
// connection, the client's first bytes after the server last answered (or its first bytes at
// all) start one. It reads the protocol's messages far enough to name the statements each round
// trip runs (Parse, Bind, Query), so that a test can tell the request's own from the listener's,
// the notifier's and the poll's, which run beside it. With a delay, every answer reaches the
// client that much later: the database is that far away.
type wireProxy struct {
	ln     net.Listener
	target string
	delay  time.Duration

	mu    sync.Mutex
	trips []roundTrip
	conns []net.Conn
}

// roundTrip is one round trip: its connection and the statements it ran.
type roundTrip struct {
	conn int
	sqls []string
}

// wireConn is what the proxy knows of one connection: the client's unread half message, the
// statements it prepared (name: SQL), and whether the server answered since it last spoke.
type wireConn struct {
	id       int
	started  bool
	pending  []byte
	stmts    map[string]string
	answered bool
	trip     int // index in trips of its current round trip, -1 before the first
}

func newWireProxy(t testing.TB, target string, delay time.Duration) *wireProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &wireProxy{ln: ln, target: target, delay: delay}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *wireProxy) accept() {
	for id := 0; ; id++ {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		wc := &wireConn{id: id, stmts: map[string]string{}, answered: true, trip: -1}
		go p.fromClient(c, s, wc)
		go p.fromServer(s, c, wc)
	}
}

func (p *wireProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// fromClient copies the client's messages to the server, noting round trips and statements.
func (p *wireProxy) fromClient(c, s net.Conn, wc *wireConn) {
	defer c.Close()
	defer s.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			p.note(wc, buf[:n])
			if _, werr := s.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// chunk is an answer read from the server, due at the client at due.
type chunk struct {
	b   []byte
	due time.Time
}

// fromServer copies the server's answers to the client, each delay after it came.
func (p *wireProxy) fromServer(s, c net.Conn, wc *wireConn) {
	defer c.Close()
	defer s.Close()
	queue := make(chan chunk, 1024)
	go func() {
		defer close(queue)
		buf := make([]byte, 32<<10)
		for {
			n, err := s.Read(buf)
			if n > 0 {
				queue <- chunk{bytes.Clone(buf[:n]), time.Now().Add(p.delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for ch := range queue {
		time.Sleep(time.Until(ch.due))
		p.mu.Lock()
		wc.answered = true
		p.mu.Unlock()
		if _, err := c.Write(ch.b); err != nil {
			return
		}
	}
}

// note counts the round trip b starts, if it starts one, and names its statements.
func (p *wireProxy) note(wc *wireConn, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if wc.answered {
		wc.answered = false
		p.trips = append(p.trips, roundTrip{conn: wc.id})
		wc.trip = len(p.trips) - 1
	}
	wc.pending = append(wc.pending, b...)
	for {
		if !wc.started { // the startup message (or an SSL request): a length, no type
			if len(wc.pending) < 8 {
				return
			}
			n := int(binary.BigEndian.Uint32(wc.pending))
			if len(wc.pending) < n {
				return
			}
			wc.started = binary.BigEndian.Uint32(wc.pending[4:]) != 80877103
			wc.pending = wc.pending[n:]
			continue
		}
		if len(wc.pending) < 5 {
			return
		}
		n := 1 + int(binary.BigEndian.Uint32(wc.pending[1:]))
		if len(wc.pending) < n {
			return
		}
		if sql := wc.statement(wc.pending[0], wc.pending[5:n]); sql != "" {
			p.trips[wc.trip].sqls = append(p.trips[wc.trip].sqls, sql)
		}
		wc.pending = wc.pending[n:]
	}
}

// statement is the SQL a message of type typ runs or prepares, if any.
func (wc *wireConn) statement(typ byte, body []byte) string {
	fields := strings.SplitN(string(body), "\x00", 3)
	switch {
	case typ == 'Q' && len(fields) > 0:
		return fields[0]
	case typ == 'P' && len(fields) > 1:
		wc.stmts[fields[0]] = fields[1]
		return "prepare: " + fields[1]
	case typ == 'B' && len(fields) > 1:
		if sql, ok := wc.stmts[fields[1]]; ok {
			return sql
		}
		return "bind " + fields[1]
	}
	return ""
}

// count runs fn and returns the round trips it made, less those that ran only what runs
// beside every request (see background).
func (p *wireProxy) count(fn func()) []roundTrip {
	p.mu.Lock()
	from := len(p.trips)
	p.mu.Unlock()
	fn()
	p.mu.Lock()
	defer p.mu.Unlock()
	var mine []roundTrip
	for _, rt := range p.trips[from:] {
		if !background(rt) {
			mine = append(mine, rt)
		}
	}
	return mine
}

// background reports whether a round trip ran only what the engine runs by itself: the
// listener, the notifier (the market version, then NOTIFY), the poll of the version and the
// pruning (the engine names its own reads of the version apart).
func background(rt roundTrip) bool {
	if len(rt.sqls) == 0 {
		return false
	}
	for _, sql := range rt.sqls {
		sql = strings.TrimPrefix(sql, "prepare: ")
		if !strings.Contains(sql, "/* the engine's own */") && !strings.Contains(sql, "pg_notify") && !strings.Contains(sql, "LISTEN") &&
			!strings.Contains(sql, "advisory") {
			return false
		}
	}
	return true
}
