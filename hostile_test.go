package main

// Clients that hang up, stall or hoard connections: each is cut off by a timeout or a limit,
// and none of them costs the server anything once it is gone. The server runs in this
// process, as `market -addr 127.0.0.1:0` would, with its log written to a file.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readStatus reads the status line of an answer on c, or the error that ended the connection.
func readStatus(c net.Conn, within time.Duration) (int, error) {
	c.SetReadDeadline(time.Now().Add(within))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, err
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, fmt.Errorf("status line %q", line)
	}
	return strconv.Atoi(f[1])
}

// closedWithin reports whether the server ends the connection c (EOF or reset) within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// Each limit of http.Server cuts off the client that would hold a connection, while other
// users are served as usual.
func TestHostileClients(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: waits out the server's timeouts")
	}
	h := &hostileClients{srv: serveInProcess(t, nil), headerTimeout: defaultLimits.readHeader + 3*time.Second}
	t.Run("HeadersOneByteASecond", h.headersOneByteASecond)
	t.Run("BodyThatNeverEnds", h.bodyThatNeverEnds)
	t.Run("EndlessChunkedBody", h.endlessChunkedBody)
	t.Run("HeadersOverTheLimit", h.headersOverTheLimit)
	t.Run("ThousandsOfIdleConnections", h.thousandsOfIdleConnections)
}

// hostileClients is the server TestHostileClients attacks, shared by its parallel subtests.
type hostileClients struct {
	srv           *inProcess
	headerTimeout time.Duration
}

// served checks another user is served as usual beside the hostile client.
func (h *hostileClients) served(t *testing.T) {
	t.Helper()
	start := time.Now()
	if got := get(t, h.srv.base, "/login", ""); got != http.StatusOK {
		t.Errorf("GET /login beside the hostile client: %d", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("GET /login beside the hostile client took %s", d)
	}
}

// dial opens a connection to the server, closed at the end of the test.
func (h *hostileClients) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", h.srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// headersOneByteASecond: a slowloris client, whose headers never end, is cut off by the header timeout.
func (h *hostileClients) headersOneByteASecond(t *testing.T) {
	t.Parallel()
	c := h.dial(t)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // slowloris: the headers never end
		c.Write([]byte("GET /login HTTP/1.1\r\nHost: x\r\n"))
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
				if _, err := c.Write([]byte("X")); err != nil {
					return
				}
			}
		}
	}()
	h.served(t)
	if !closedWithin(c, h.headerTimeout) {
		t.Errorf("a client sending headers a byte a second still held its connection after %s", h.headerTimeout)
	}
}

// bodyThatNeverEnds: a body shorter than its Content-Length is cut off by the read timeout.
func (h *hostileClients) bodyThatNeverEnds(t *testing.T) {
	t.Parallel()
	c := h.dial(t)
	c.Write([]byte("POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
		"Content-Length: 1000\r\n\r\nusername=a"))
	h.served(t)
	if !closedWithin(c, defaultLimits.read+3*time.Second) {
		t.Errorf("a body that never ends still held its connection after %s", defaultLimits.read+3*time.Second)
	}
}

// endlessChunkedBody: an endless chunked body is refused with 413 at the body cap.
func (h *hostileClients) endlessChunkedBody(t *testing.T) {
	t.Parallel()
	c := h.dial(t)
	c.Write([]byte("POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
		"Transfer-Encoding: chunked\r\n\r\n"))
	chunk := "1000\r\n" + strings.Repeat("a", 0x1000) + "\r\n"
	go func() {
		for i := 0; i < 1000; i++ { // 4 MiB, if nobody stops it
			if _, err := c.Write([]byte(chunk)); err != nil {
				return
			}
		}
	}()
	if status, err := readStatus(c, 5*time.Second); err != nil || status != http.StatusRequestEntityTooLarge {
		t.Errorf("an endless chunked body: status %d (%v), want 413", status, err)
	}
	h.served(t)
}

// headersOverTheLimit: headers over the limit are refused with 431.
func (h *hostileClients) headersOverTheLimit(t *testing.T) {
	t.Parallel()
	c := h.dial(t)
	big := strings.Repeat("a", defaultLimits.headerSize+8<<10)
	go c.Write([]byte("GET /login HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n"))
	if status, err := readStatus(c, 5*time.Second); err != nil || status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("headers over %d bytes: status %d (%v), want 431", defaultLimits.headerSize, status, err)
	}
	h.served(t)
}

// thousandsOfIdleConnections: connections that never send a request are cut off by the header timeout.
func (h *hostileClients) thousandsOfIdleConnections(t *testing.T) {
	t.Parallel()
	conns := make([]net.Conn, 0, 2000)
	for range 2000 {
		c, err := net.Dial("tcp", h.srv.addr)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if len(conns) < 1000 {
		t.Fatalf("only %d connections opened", len(conns))
	}
	h.served(t)
	// Connections that never send a request are cut off by the header timeout.
	deadline := time.Now().Add(h.headerTimeout)
	open := 0
	for _, c := range conns {
		if !closedWithin(c, max(time.Until(deadline), 10*time.Millisecond)) {
			open++
		}
	}
	if open > 0 {
		t.Errorf("%d of %d idle connections still open after %s", open, len(conns), h.headerTimeout)
	}
}

// A keep-alive connection left idle after its answer is closed by the idle timeout. The
// production value is a minute; the same server, with a shorter one, shows it is enforced.
func TestIdleKeepAliveClosed(t *testing.T) {
	l := defaultLimits
	l.idle = 300 * time.Millisecond
	s := newServer("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), slog.New(slog.DiscardHandler), l)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	if status, err := readStatus(c, 2*time.Second); status != http.StatusOK {
		t.Fatalf("status %d (%v)", status, err)
	}
	if !closedWithin(c, 2*time.Second) {
		t.Error("an idle keep-alive connection was still open 2 s after a 300 ms idle timeout")
	}
	if defaultLimits.idle > 2*time.Minute || defaultLimits.readHeader > 10*time.Second || defaultLimits.read > 30*time.Second {
		t.Errorf("production limits too loose: %+v", defaultLimits)
	}
}
