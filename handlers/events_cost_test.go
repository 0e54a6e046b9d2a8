package handlers_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"market/handlers"
	"market/store/storetest"
)

// What a stream may cost: a trade re-reads only the pages it can change, streams are capped,
// and a stream lives no longer than its session.

// A trade re-reads only the pages of the searches its item matches, the way the search itself
// matches (name or description, any letter case, % and _ taken literally): the streams of the
// other searches get the trade's marker and the new version, and no page is read for them.
func TestStreamReadsOnlyPagesATradeTouches(t *testing.T) {
	app := newTestApp(t)
	ann, bob, carl, dave := app.signUp("ann"), app.signUp("bob"), app.signUp("carl"), app.signUp("dave")
	quiet := []*liveStream{ // searches neither the kettle nor the mouse match
		bob.stream("/market/events?q=zebra", nil),
		bob.stream("/market/events?q=zebra&sort=price&page=2", nil),
		bob.stream("/market/events?q=%25", nil), // a literal %
		bob.stream("/market/events?q=_", nil),   // a literal _
	}
	mice := []*liveStream{ // searches the mouse matches, by description and by name
		carl.stream("/market/events?q=BATTERY", nil),
		dave.stream("/market/events?q=mOuSe&sort=-price", nil),
	}
	all := append(append([]*liveStream{}, quiet...), mice...)
	waitUntil(t, "the streams", time.Second, func() bool { return app.handler.OpenStreams() == len(all) })

	kettle, mouse := app.item("Kettle"), app.item("Mouse")
	read := app.handler.LivePagesRead()
	ann.buy(kettle.ID)
	marker := fmt.Sprintf(`data-row="item-%d" data-change="bought" data-name="Kettle" data-mine="false" data-shown="false"`, kettle.ID)
	for i, ls := range all {
		ev := ls.next(t, time.Second)
		if ev.id != strconv.FormatInt(app.version(), 10) || !strings.Contains(ev.data, marker) || strings.Contains(ev.data, "hx-swap-oob") {
			t.Errorf("stream %d after the kettle: id %q, want %d with the marker alone:\n%s", i, ev.id, app.version(), ev.data)
		}
	}
	if n := app.handler.LivePagesRead() - read; n != 0 {
		t.Errorf("a trade no search matches read %d pages, want none", n)
	}

	read = app.handler.LivePagesRead()
	ann.buy(mouse.ID)
	for i, ls := range mice {
		// The row goes: deleted, or (the mouse alone matched) the rows replaced by none.
		if ev := ls.next(t, time.Second); !strings.Contains(ev.data, `data-shown="true"`) ||
			!strings.Contains(ev.data, fmt.Sprintf(`<tr id="item-%d" hx-swap-oob="delete">`, mouse.ID)) &&
				!strings.Contains(ev.data, `<tbody hx-swap-oob="innerHTML:#item-rows"></tbody>`) {
			t.Errorf("search %d of the mouse: its row not removed:\n%s", i, ev.data)
		}
	}
	for i, ls := range quiet {
		if ev := ls.next(t, time.Second); strings.Contains(ev.data, "hx-swap-oob") || !strings.Contains(ev.data, `data-shown="false"`) {
			t.Errorf("stream %d after the mouse: rows changed:\n%s", i, ev.data)
		}
	}
	if n := app.handler.LivePagesRead() - read; n != int64(len(mice)) {
		t.Errorf("the mouse's purchase read %d pages, want the %d of the searches it matches", n, len(mice))
	}
}

// A stream past the instance's cap, or past its address's, is refused with 429, Retry-After
// and a message; behind a trusted proxy the address is the one the proxy gives. A stream that
// ends makes room.
func TestStreamCaps(t *testing.T) {
	app := newTestApp(t, handlers.Config{MaxStreams: 2})
	ann, bob, carl := app.signUp("ann"), app.signUp("bob"), app.signUp("carl")
	first := ann.stream("/market/events", nil)
	bob.stream("/market/events", nil)
	refused(t, carl, "/market/events", nil, "Too many live updates are open on this server.")
	first.cancel()
	waitUntil(t, "the stream to end", time.Second, func() bool { return app.handler.OpenStreams() == 1 })
	if ls := carl.stream("/market/events", nil); ls.res.StatusCode != http.StatusOK {
		t.Fatalf("a stream after one ended: %d, want 200", ls.res.StatusCode)
	}

	app = newTestApp(t, handlers.Config{StreamsPerAddr: 2, TrustProxy: true})
	ann, bob, carl = app.signUp("ann"), app.signUp("bob"), app.signUp("carl")
	from := func(addr string) map[string]string { return map[string]string{"X-Forwarded-For": addr} }
	ann.stream("/market/events", from("203.0.113.7"))
	ann.stream("/market/events", from("203.0.113.7"))
	refused(t, bob, "/market/events", from("203.0.113.7"), "Too many live updates are open from your address.")
	if ls := carl.stream("/market/events", from("203.0.113.8")); ls.res.StatusCode != http.StatusOK {
		t.Fatalf("a stream from another address: %d, want 200", ls.res.StatusCode)
	}
}

// refused checks that a cap refuses c's stream of path: 429, Retry-After, and message.
func refused(t *testing.T, c *client, path string, headers map[string]string, message string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // an open stream never ends
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.app.server.URL+path, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("a stream past the cap: %d, Retry-After %q; want 429 with Retry-After",
			res.StatusCode, res.Header.Get("Retry-After"))
	}
	if body, _ := io.ReadAll(res.Body); !strings.Contains(string(body), message) {
		t.Fatalf("a stream past the cap: no %q in\n%s", message, body)
	}
}

// A stream neither refreshes the session's idle timer, nor outlives it: once the session has
// been idle past the timeout, the stream ends at its next ping, and the session is over.
func TestStreamEndsAtIdleTimeout(t *testing.T) {
	app := newTestApp(t, handlers.Config{IdleTimeout: 10 * time.Minute, StreamPing: 50 * time.Millisecond})
	ann := app.signUp("ann")
	app.clock.Advance(5 * time.Minute) // the stream opens after 5 idle minutes...
	ls := ann.stream("/market/events", nil)
	waitUntil(t, "the stream", time.Second, func() bool { return app.handler.OpenStreams() == 1 })
	app.clock.Advance(6 * time.Minute) // ... and 11 minutes after the last request, it ends
	if ev := ls.next(t, time.Second); ev.name != "close" {
		t.Fatalf("past the idle timeout: event %q, want close", ev.name)
	}
	waitUntil(t, "the stream to end", time.Second, func() bool { return app.handler.OpenStreams() == 0 })
	if res := ann.get("/market"); res.StatusCode != http.StatusFound {
		t.Fatalf("after the idle timeout: GET /market %d, want 302 to log in", res.StatusCode)
	}
}

// A stream whose session is destroyed on another instance (a logout there) ends within one
// ping.
func TestStreamEndsAtLogoutOnAnotherInstance(t *testing.T) {
	storetest.RequirePostgres(t)
	const ping = 200 * time.Millisecond
	app, _ := newInstances(t, 2, handlers.Config{StreamPing: ping})
	ann := app.signUp("ann")
	ls := ann.stream("/market/events", nil) // the proxy sends each request to the next instance
	ann.get("/logout")
	start := time.Now()
	if ev := ls.next(t, ping+time.Second); ev.name != "close" {
		t.Fatalf("after logout on the other instance: event %q, want close", ev.name)
	}
	t.Logf("closed %s after the logout", time.Since(start))
}
