package live

import (
	"errors"
	"net"
	"net/http"
	"syscall"
	"time"
)

// A stream costs what it keeps, not a goroutine that waits: once its first event is out, the
// stream takes the connection over from net/http (a hijack) and the handler returns. What it
// keeps is its view of the page and the connection; it writes only when it has something to
// say, on one of the broker's few workers (run.go), and one goroutine per stream waits on the
// connection's read side to see a client hang up at once. The bytes written are the ones
// rendered for every viewer alike, shared, never copied into a buffer of the stream's own.
//
// Writing never waits on one client at the others' expense: a worker writes what a socket takes
// at once (try), and a client whose socket is full gets a goroutine of its own to finish within
// writeTimeout, after which it is dropped. Where the connection cannot be taken over (HTTP/2),
// the handler's goroutine stays and does the stream's writing itself.

// writeTimeout bounds each write to a stream: a client that stops reading is dropped.
const writeTimeout = 10 * time.Second

// wire is where a stream's bytes go.
type wire interface {
	// send writes the parts, waiting at most writeTimeout; what did not go out is left in them.
	send(parts *net.Buffers) error
	// try writes what of the parts the connection takes at once, and leaves the rest in them.
	try(parts *net.Buffers) error
	// hangUp ends the stream's connection; concurrent sends then fail.
	hangUp()
}

// connWire is a connection taken over from net/http.
type connWire struct {
	c  net.Conn
	rc syscall.RawConn // c's socket, for the writes that wait for nothing; nil: c has none
}

func newConnWire(c net.Conn) connWire { return connWire{c, rawConn(c)} }

// send writes the parts in one system call where it can (writev), then lifts its deadline,
// which would stop the writes of try.
func (w connWire) send(parts *net.Buffers) error {
	if err := w.c.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	if _, err := parts.WriteTo(w.c); err != nil {
		return err
	}
	return w.c.SetWriteDeadline(time.Time{})
}

// try writes straight to the socket, without a deadline (whose timer each write would set):
// the socket is non-blocking, and what it does not take at once is left.
func (w connWire) try(parts *net.Buffers) error {
	if w.rc != nil {
		return tryWrite(w.rc, parts)
	}
	return nil // no socket of its own (TLS, whose write cut short breaks it): send writes it all
}

func (w connWire) hangUp() { w.c.Close() }

// watch waits on the connection's read side: a client sends nothing on a stream, so anything,
// or its end, means the client is gone.
func (w connWire) watch(s *subscription) {
	var b [1]byte
	w.c.Read(b[:])
	s.finish()
}

// responseWire is a stream on a response its handler keeps open (the connection could not be
// taken over): it always waits the whole writeTimeout, on the handler's own goroutine.
type responseWire struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	gone chan struct{} // closed by hangUp: the handler returns
}

func (w *responseWire) send(parts *net.Buffers) error {
	w.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := parts.WriteTo(w.w); err != nil {
		return err
	}
	return w.rc.Flush()
}

func (w *responseWire) try(parts *net.Buffers) error { return w.send(parts) }

func (w *responseWire) hangUp() { close(w.gone) }

// takeOver sends the stream's headers and takes the connection over; ok is false when it
// cannot (HTTP/2, or a writer that does not allow it), and the caller keeps the response. A
// failed write ends the stream either way: err.
func takeOver(w http.ResponseWriter, r *http.Request) (c net.Conn, ok bool, err error) {
	header(w, r)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	c, _, err = rc.Hijack() // flushes the headers first; the buffers are left to the collector
	switch {
	case errors.Is(err, http.ErrNotSupported):
		rc.SetReadDeadline(time.Time{})  // the server's timeouts are for requests, not streams;
		rc.SetWriteDeadline(time.Time{}) // a read deadline would cancel the request's context
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	return c, true, nil
}
