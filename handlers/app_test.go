package handlers_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"market/assets"
	"market/handlers"
	"market/handlers/webtest"
	"market/store"
	"market/store/storetest"
)

// testApp is the whole HTTP stack on a real SQLite file, served by httptest.
type testApp struct {
	t       testing.TB
	server  *httptest.Server
	store   *store.Store
	clock   *testClock
	handler *handlers.Handler
}

// testClock is a clock tests can move forward.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestApp starts the app on a fresh database holding the demo catalogue.
func newTestApp(t testing.TB, cfgs ...handlers.Config) *testApp {
	t.Helper()
	ctx := context.Background()
	st := storetest.Open(t) // SQLite, or PostgreSQL when MARKET_TEST_POSTGRES says so
	if _, err := st.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	return serveApp(t, st, cfgs...)
}

// serveApp starts the app on st.
func serveApp(t testing.TB, st *store.Store, cfgs ...handlers.Config) *testApp {
	t.Helper()
	return serveAppLogging(t, st, io.Discard, cfgs...)
}

// serveAppLogging starts the app on st, writing its log to log.
func serveAppLogging(t testing.TB, st *store.Store, log io.Writer, cfgs ...handlers.Config) *testApp {
	t.Helper()
	as, err := assets.New()
	if err != nil {
		t.Fatal(err)
	}
	sessions := handlers.NewSessionManager(st.Sessions(), false)

	var cfg handlers.Config
	if len(cfgs) > 0 {
		cfg = cfgs[0]
	}
	clock := &testClock{now: time.Now()}
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	logger := slog.New(slog.NewTextHandler(log, nil))
	h := handlers.New(logger, st, sessions, as, cfg)
	ts := httptest.NewServer(h.Routes())
	t.Cleanup(ts.Close)
	t.Cleanup(h.StopStreams) // first: the streams end, and the broker with them
	return &testApp{t: t, server: ts, store: st, clock: clock, handler: h}
}

// client is one browser: its own cookie jar, redirects not followed (a webtest.Client, whose
// errors fail the test).
type client struct {
	app *testApp
	hc  *http.Client
	web *webtest.Client
}

func (a *testApp) client() *client {
	web := webtest.New(a.server.URL, "")
	return &client{app: a, hc: web.HTTP, web: web}
}

// response is a finished response with its body read.
type response struct {
	*http.Response
	body string
}

func (r response) doc(t testing.TB) *goquery.Document {
	t.Helper()
	body := r.body
	// HTML parsers drop bare rows outside a table, so a fragment of rows is parsed inside one.
	if strings.HasPrefix(body, "<tr") {
		body = "<table><tbody>" + body + "</tbody></table>"
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// answer is what the server said, or the end of the test when it said nothing.
func (c *client) answer(a webtest.Answer, err error) response {
	c.app.t.Helper()
	if err != nil {
		c.app.t.Fatal(err)
	}
	return response{Response: a.Response, body: a.Body}
}

func (c *client) do(method, path string, form url.Values, headers map[string]string) response {
	c.app.t.Helper()
	return c.answer(c.web.Do(method, path, form, headers))
}

// buy and sell are htmx trades, as the market page's buttons send them, that must succeed:
// the test ends unless the answer is 200 with the success message.
func (c *client) buy(item int64) response {
	c.app.t.Helper()
	return c.htmxTrade(item, false, "Purchased")
}

func (c *client) sell(item int64) response {
	c.app.t.Helper()
	return c.htmxTrade(item, true, "Sold")
}

func (c *client) htmxTrade(item int64, sell bool, want string) response {
	c.app.t.Helper()
	c.web.Token = c.token()
	res := c.answer(c.web.Trade(item, sell))
	if res.StatusCode != http.StatusOK || !strings.Contains(res.body, want) {
		c.app.t.Fatalf("trade %d (sell=%v): %d %.300s", item, sell, res.StatusCode, res.body)
	}
	return res
}

func (c *client) get(path string, headers ...map[string]string) response {
	c.app.t.Helper()
	return c.do(http.MethodGet, path, nil, first(headers))
}

// token lifts the CSRF token from a real page, as a browser's form would carry it.
func (c *client) token() string {
	c.app.t.Helper()
	tok, ok := c.get("/login").doc(c.app.t).Find(`input[name="csrf_token"]`).Attr("value")
	if !ok || tok == "" {
		c.app.t.Fatal("no csrf_token on /login")
	}
	return tok
}

// post submits a form with a valid CSRF token.
func (c *client) post(path string, form url.Values, headers ...map[string]string) response {
	c.app.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf_token", c.token())
	return c.do(http.MethodPost, path, form, first(headers))
}

// htmx posts as htmx does: the token in X-CSRF-Token, HX-Request set.
func (c *client) htmx(path string, form url.Values) response {
	c.app.t.Helper()
	return c.do(http.MethodPost, path, form, map[string]string{"HX-Request": "true", "X-CSRF-Token": c.token()})
}

func first(h []map[string]string) map[string]string {
	if len(h) > 0 {
		return h[0]
	}
	return nil
}

// signUp registers a user through the form and returns its logged-in client.
func (a *testApp) signUp(username string) *client {
	a.t.Helper()
	c := a.client()
	c.web.Name = username
	res := c.answer(c.web.SignUp())
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/market" {
		a.t.Fatalf("sign up %s: %d %s", username, res.StatusCode, res.Header.Get("Location"))
	}
	return c
}

// item finds a demo item by name.
func (a *testApp) item(name string) store.Item {
	a.t.Helper()
	p, err := a.store.Market(context.Background(), store.MarketQuery{Q: name})
	if err != nil {
		a.t.Fatal(err)
	}
	for _, it := range p.Items {
		if it.Name == name {
			return it
		}
	}
	a.t.Fatalf("no item %q on the market", name)
	return store.Item{}
}

// totals reads the market's money totals, failing the test if it cannot.
func (a *testApp) totals() store.Totals {
	a.t.Helper()
	t, err := a.store.Totals(context.Background())
	if err != nil {
		a.t.Fatal(err)
	}
	return t
}

// owner is the owner of an item (0: on the market), failing the test if it cannot be read.
func (a *testApp) owner(id int64) int64 {
	a.t.Helper()
	it, err := a.store.Item(context.Background(), id)
	if err != nil {
		a.t.Fatal(err)
	}
	return it.OwnerID
}

// text is the trimmed, space-normalised text of a selection.
func text(s *goquery.Selection) string {
	return strings.Join(strings.Fields(s.Text()), " ")
}

// messages are the texts of the messages on a page or in a fragment.
func messages(doc *goquery.Document) string {
	return text(doc.Find("#flash p, #flash-alert p, [hx-swap-oob^='innerHTML:#flash'] p"))
}
