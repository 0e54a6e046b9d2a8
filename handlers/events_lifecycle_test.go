package handlers_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"market/assets"
	"market/handlers"
)

// A stream's life: the caps on a user's streams, hang-ups, the server's timeouts and shutdown,
// and logout.

// A fifth stream of one user closes the oldest after a second's grace, and a sixth closes one
// at once: each closed stream is told not to come back.
func TestStreamLimitPerUser(t *testing.T) {
	app := newTestApp(t)
	ann := app.signUp("ann")
	var streams []*liveStream
	for i := range 5 {
		streams = append(streams, ann.stream("/market/events", nil))
		// In order: each stream is subscribed before the next opens.
		waitUntil(t, "the stream", time.Second, func() bool { return app.handler.OpenStreams() == i+1 })
	}
	opened := time.Now()
	streams = append(streams, ann.stream("/market/events", nil))
	if ev := streams[0].next(t, 500*time.Millisecond); ev.name != "close" {
		t.Fatalf("a sixth stream: the oldest got %q, want a close event at once", ev.name)
	}
	if ev := streams[1].next(t, 2*time.Second); ev.name != "close" {
		t.Fatalf("the second oldest got %q, want a close event", ev.name)
	}
	if waited := time.Since(opened); waited < 900*time.Millisecond {
		t.Errorf("the fifth stream's oldest closed after %s, before the grace", waited)
	}
	for _, st := range streams[:2] {
		if _, ok := <-st.events; ok {
			t.Fatal("a closed stream did not end")
		}
	}
	// The server counts a stream closed once its connection is released, just after the
	// client has seen its end.
	waitUntil(t, "four streams open", 2*time.Second, func() bool { return app.handler.OpenStreams() == 4 })
}

// A search replaces its page's stream: the new one opens before the old one closes. A user
// with four tabs open then has five streams for a moment, and no other tab loses its stream.
func TestStreamLimitSparesOtherTabs(t *testing.T) {
	app := newTestApp(t)
	ann := app.signUp("ann")
	var tabs []*liveStream
	for range 4 {
		tabs = append(tabs, ann.stream("/market/events", nil))
	}
	waitUntil(t, "four streams", 2*time.Second, func() bool { return app.handler.OpenStreams() == 4 })
	ann.stream("/market/events?q=lamp", nil) // the last tab's search
	tabs[3].cancel()
	waitUntil(t, "the old stream to close", 2*time.Second, func() bool { return app.handler.OpenStreams() == 4 })
	// Watch the other tabs until past the grace: none of them may be told to close.
	for past := time.After(1500 * time.Millisecond); past != nil; {
		select {
		case ev := <-tabs[0].events:
			noClose(t, 0, ev)
		case ev := <-tabs[1].events:
			noClose(t, 1, ev)
		case ev := <-tabs[2].events:
			noClose(t, 2, ev)
		case <-past:
			past = nil
		}
	}
	if n := app.handler.OpenStreams(); n != 4 {
		t.Fatalf("%d streams open, want 4", n)
	}
}

// noClose fails the test when a tab's stream was told to close, or ended.
func noClose(t *testing.T, tab int, ev sseEvent) {
	t.Helper()
	if ev == (sseEvent{}) || ev.name == "close" {
		t.Fatalf("tab %d lost its stream to another tab's search", tab)
	}
}

// waitUntil polls cond for up to wait.
func waitUntil(t *testing.T, what string, wait time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(wait); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, wait)
		}
	}
}

// A client that hangs up frees its stream and its goroutines.
func TestStreamHangUpFreesEverything(t *testing.T) {
	app := newTestApp(t)
	ann := app.signUp("ann")
	open := func(n int) func() bool { return func() bool { return app.handler.OpenStreams() == n } }
	warm := ann.stream("/market/events", nil) // starts the broker and the poll, which stay
	waitUntil(t, "one stream", time.Second, open(1))
	warm.cancel()
	waitUntil(t, "no stream", time.Second, open(0))
	app.server.CloseClientConnections()
	base := settledGoroutines(t)
	bob := app.signUp("bob")
	var streams []*liveStream
	for _, c := range []*client{ann, bob} {
		for range 4 {
			streams = append(streams, c.stream("/market/events", nil))
		}
	}
	waitUntil(t, "8 streams", time.Second, open(8))
	if n := runtime.NumGoroutine(); n < base+8 {
		t.Fatalf("%d goroutines with 8 streams, %d without: the count does not see them", n, base)
	}
	for _, ls := range streams {
		ls.cancel()
	}
	waitUntil(t, "streams closed", time.Second, open(0))
	waitUntil(t, "goroutines freed", 2*time.Second, func() bool { return runtime.NumGoroutine() <= base })
}

// An open stream costs the server one goroutine (it waits on the connection for the client to
// hang up), whatever the number of streams: the clients here are bare connections that hold
// none of their own.
func TestStreamCostsOneGoroutine(t *testing.T) {
	app := newTestApp(t, handlers.Config{StreamsPerAddr: 1000})
	warm := app.signUp("ann").stream("/market/events", nil) // starts the broker, its workers and pinger
	waitUntil(t, "one stream", time.Second, func() bool { return app.handler.OpenStreams() == 1 })
	const n = 40
	var users []*client
	for i := range n / 4 { // 4 streams a user at most
		users = append(users, app.signUp(fmt.Sprintf("user%02d", i)))
	}
	base := settledGoroutines(t) // with the users' idle connections
	var conns []net.Conn
	for i := range n {
		conns = append(conns, bareStream(t, users[i/4]))
	}
	waitUntil(t, "the streams", 2*time.Second, func() bool { return app.handler.OpenStreams() == n+1 })
	if extra := settledGoroutines(t) - base; extra > n {
		t.Errorf("%d streams added %d goroutines, want at most one each", n, extra)
	}
	for _, c := range conns {
		c.Close()
	}
	warm.cancel()
	waitUntil(t, "the streams to end", 2*time.Second, func() bool { return app.handler.OpenStreams() == 0 })
}

// bareStream opens c's live stream over a bare connection, and reads the answer's status line.
func bareStream(t *testing.T, c *client) net.Conn {
	t.Helper()
	u, _ := url.Parse(c.app.server.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var cookies []string
	for _, ck := range c.hc.Jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	fmt.Fprintf(conn, "GET /market/events HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\n\r\n", u.Host, strings.Join(cookies, "; "))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200") {
		t.Fatalf("a bare stream: %q, %v", status, err)
	}
	conn.SetReadDeadline(time.Time{})
	return conn
}

// settledGoroutines is the number of goroutines once it holds still (the same in five
// readings in a row), as the connections just closed wind down.
func settledGoroutines(t *testing.T) int {
	t.Helper()
	n, same := runtime.NumGoroutine(), 0
	waitUntil(t, "the goroutines to settle", 2*time.Second, func() bool {
		now := runtime.NumGoroutine()
		if now == n {
			same++
		} else {
			n, same = now, 0
		}
		return same >= 5
	})
	return n
}

// A stream outlives the server's read and write timeouts, pings while idle, and graceful
// shutdown ends it at once.
func TestStreamTimeoutsAndShutdown(t *testing.T) {
	app := newTestApp(t)
	ann := app.signUp("ann")
	h := handlers.New(slog.New(slog.NewTextHandler(io.Discard, nil)), app.store,
		handlers.NewSessionManager(app.store.Sessions(), false), mustAssets(t),
		handlers.Config{StreamPing: 100 * time.Millisecond})
	srv := &http.Server{Handler: h.Routes(), ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond}
	srv.RegisterOnShutdown(h.StopStreams)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	// ann's cookies, on this server.
	u, _ := url.Parse(app.server.URL)
	other, _ := url.Parse("http://" + ln.Addr().String())
	ann.hc.Jar.SetCookies(other, ann.hc.Jar.Cookies(u))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, other.String()+"/market/events", nil)
	res, err := ann.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	events := make(chan sseEvent, 100)
	go readEvents(res.Body, events)
	pings := 0
	for timeout := time.After(time.Second); pings < 8; {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the stream ended after %d pings, within the server's timeouts", pings)
			}
			if ev.comment && ev.data == ": ping" {
				pings++
			}
		case <-timeout:
			t.Fatalf("%d pings in a second, want 8 or more (every 100 ms)", pings)
		}
	}
	start := time.Now()
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v after %s", err, time.Since(start))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("shutdown took %s", d)
	}
	for range events { // drained: the stream ended
	}
}

func mustAssets(t *testing.T) *assets.Server {
	t.Helper()
	as, err := assets.New()
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// Logging out (in another tab) ends the stream at its next ping, for good.
func TestStreamEndsAtLogout(t *testing.T) {
	app := newTestApp(t, handlers.Config{StreamPing: 50 * time.Millisecond})
	ann := app.signUp("ann")
	ls := ann.stream("/market/events", nil)
	waitUntil(t, "the stream", time.Second, func() bool { return app.handler.OpenStreams() == 1 })
	ann.get("/logout")
	if ev := ls.next(t, time.Second); ev.name != "close" {
		t.Fatalf("after logout: event %q, want close", ev.name)
	}
	waitUntil(t, "the stream to end", time.Second, func() bool { return app.handler.OpenStreams() == 0 })
}

// A stream whose session cannot be checked (the sessions cannot be read: the database is down)
// counts as signed in: it keeps its pings and stays open.
func TestStreamOutlivesFailedSessionCheck(t *testing.T) {
	app := newTestApp(t, handlers.Config{StreamPing: 50 * time.Millisecond})
	ann := app.signUp("ann")
	ls := ann.stream("/market/events", nil)
	waitUntil(t, "the stream", time.Second, func() bool { return app.handler.OpenStreams() == 1 })
	if _, err := app.store.DB().Exec("ALTER TABLE sessions RENAME TO sessions_away"); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for pings := 0; pings < 3; pings++ {
		select {
		case ev, ok := <-ls.events:
			if !ok || !ev.comment {
				t.Fatalf("with the sessions unreadable: event %+v (open %v), want pings", ev, ok)
			}
		case <-deadline:
			t.Fatalf("%d pings within 5 s", pings)
		}
	}
	if n := app.handler.OpenStreams(); n != 1 {
		t.Errorf("%d streams open, want 1", n)
	}
}
