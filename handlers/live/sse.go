package live

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The wire format of Server-Sent Events: what goes on the stream, and how it is written.

// writeTimeout bounds each write to a stream: a client that stops reading is dropped.
const writeTimeout = 10 * time.Second

// writer buffers a stream's events, then writes them with a deadline each, and flushes them.
type writer struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf bytes.Buffer
}

// newWriter clears the server's read and write timeouts, which are for requests, not streams:
// each write gets its own deadline instead, and a read deadline would cancel the request's
// context.
func newWriter(w http.ResponseWriter) *writer {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	return &writer{w: w, rc: rc}
}

// begin sends the stream's headers and asks the client to reconnect after a second, not three.
func (sw *writer) begin() {
	hd := sw.w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	sw.w.WriteHeader(http.StatusOK)
	sw.buf.WriteString("retry: 1000\n\n")
}

// ping keeps proxies from closing an idle stream.
func (sw *writer) ping() { sw.buf.WriteString(": ping\n\n") }

// close tells the page not to reconnect, and why; the stream ends after it.
func (sw *writer) close(reason string) {
	sw.buf.WriteString("event: close\ndata: ")
	sw.buf.WriteString(reason)
	sw.buf.WriteString("\n\n")
}

// flush writes what is buffered, if anything.
func (sw *writer) flush() error {
	if sw.buf.Len() == 0 {
		return nil
	}
	sw.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := sw.w.Write(sw.buf.Bytes())
	sw.buf.Reset()
	if err == nil {
		err = sw.rc.Flush()
	}
	return err
}

// event is one event, ready to write: its id, name and data, each line of data on a data: line.
func event(id int64, name, data string) []byte {
	var b bytes.Buffer
	b.Grow(len(data) + len(name) + 64)
	b.WriteString("id: ")
	b.WriteString(strconv.FormatInt(id, 10))
	b.WriteString("\nevent: ")
	b.WriteString(name)
	b.WriteByte('\n')
	data = strings.ReplaceAll(strings.ReplaceAll(data, "\r\n", "\n"), "\r", "\n")
	for line := range strings.SplitSeq(data, "\n") {
		b.WriteString("data: ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// since is the version a reconnect asks to resume after: the Last-Event-ID the browser sends
// back, else the page's since=; ok is false when neither holds a version.
func since(r *http.Request) (version int64, ok bool) {
	v, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
	if err != nil {
		v, err = strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
	}
	return v, err == nil && v > 0
}
