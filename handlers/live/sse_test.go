package live

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Each line of an event's data goes on a data: line of its own, whatever its line ends: a bare
// CR or CRLF inside would otherwise end the field early for the EventSource.
func TestEventWireFormat(t *testing.T) {
	got := string(event(42, "market", "<ul>\r\n<li>a</li>\r<li>b</li>\n</ul>"))
	want := "id: 42\nevent: market\ndata: <ul>\ndata: <li>a</li>\ndata: <li>b</li>\ndata: </ul>\n\n"
	if got != want {
		t.Errorf("event:\n%q\nwant\n%q", got, want)
	}
}

// A stream on a response it cannot take over opens with its headers and a retry of a second,
// then writes each part as it comes, flushed, and ends with a close event that says why.
func TestResponseWireOpenPingClose(t *testing.T) {
	rec := httptest.NewRecorder()
	conn, took, err := takeOver(rec, httptest.NewRequest(http.MethodGet, "/market/events", nil))
	if err != nil || took || conn != nil {
		t.Fatalf("a recorder taken over: %v, %v, %v; want it kept", conn, took, err)
	}
	rw := &responseWire{w: rec, rc: http.NewResponseController(rec), gone: make(chan struct{})}
	for _, p := range [][]byte{opening, pingLine, event(3, "market", "x"), closing("signed out")} {
		if err := rw.send(&net.Buffers{p}); err != nil {
			t.Fatal(err)
		}
	}
	want := "retry: 1000\n\n: ping\n\nid: 3\nevent: market\ndata: x\n\nevent: close\ndata: signed out\n\n"
	if got := rec.Body.String(); got != want {
		t.Errorf("body:\n%q\nwant\n%q", got, want)
	}
	for header, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-store",
		"X-Accel-Buffering": "no", "Transfer-Encoding": "identity"} {
		if got := rec.Header().Get(header); got != want {
			t.Errorf("%s: %q, want %q", header, got, want)
		}
	}
	if !rec.Flushed {
		t.Error("the stream was not flushed")
	}
}

// A reconnect resumes after its Last-Event-ID, else after the page's since=; anything else
// is no version to resume after.
func TestSince(t *testing.T) {
	for _, tc := range []struct {
		name, lastEventID, query string
		want                     int64
		ok                       bool
	}{
		{name: "Last-Event-ID wins", lastEventID: "12", query: "since=5", want: 12, ok: true},
		{name: "since= alone", query: "since=5", want: 5, ok: true},
		{name: "a bad Last-Event-ID falls back to since=", lastEventID: "x", query: "since=5", want: 5, ok: true},
		{name: "neither", query: "q=lamp"},
		{name: "zero is no version", query: "since=0"},
		{name: "negative is no version", lastEventID: "-3", query: "since=5", want: -3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/market/events?"+tc.query, nil)
			if tc.lastEventID != "" {
				r.Header.Set("Last-Event-ID", tc.lastEventID)
			}
			if got, ok := since(r); got != tc.want || ok != tc.ok {
				t.Errorf("since = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
