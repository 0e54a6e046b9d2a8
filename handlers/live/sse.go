package live

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
)

// The wire format of Server-Sent Events: what goes on the stream, and how it is written.

// The bytes a stream sends besides its events: the opening (reconnect after a second, not
// three) and a ping, which keeps proxies from closing an idle stream.
var (
	opening  = []byte("retry: 1000\n\n")
	pingLine = []byte(": ping\n\n")
)

// closing tells the page not to reconnect, and why; the stream ends after it.
func closing(reason string) []byte {
	return []byte("event: close\ndata: " + reason + "\n\n")
}

// header sets a stream's headers. An HTTP/1 answer says identity, not chunked, so that its body
// is the bare stream (the stream then owns the connection, and closes it to end): net/http
// closes such an answer after it, as Server-Sent Events suggest.
func header(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	if r.ProtoMajor == 1 {
		hd.Set("Transfer-Encoding", "identity")
	}
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
