package handlers_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"market/store/storetest"
)

// appBehindWire is the app on a new seeded PostgreSQL database reached through a wireProxy,
// with a signed-in client who has seen the market page (its token read).
func appBehindWire(t testing.TB, delay time.Duration) (*testApp, *wireProxy, *client, string) {
	t.Helper()
	u, err := url.Parse(storetest.NewPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newWireProxy(t, u.Host, delay)
	u.Host = p.ln.Addr().String()
	st := storetest.OpenAt(t, u.String())
	if _, err := st.Seed(t.Context()); err != nil {
		t.Fatal(err)
	}
	app := serveApp(t, st)
	c := app.signUp("rita")
	return app, p, c, c.token()
}

// marketTrade is an htmx trade from the market page, as its buttons send it: the answer must
// be 200 with want in it.
func marketTrade(t testing.TB, c *client, tok string, item int64, sell bool, want string) {
	t.Helper()
	field := "purchase_item"
	if sell {
		field = "sold_item"
	}
	res := c.do(http.MethodPost, "/market", url.Values{field: {fmt.Sprint(item)}}, map[string]string{
		"HX-Request": "true", "X-CSRF-Token": tok, "HX-Current-URL": c.app.server.URL + "/market?q=o"})
	if res.StatusCode != http.StatusOK || !strings.Contains(res.body, want) || !strings.Contains(res.body, `id="result-count"`) {
		t.Fatalf("trade %d (sell=%v): %d %.400s", item, sell, res.StatusCode, res.body)
	}
}

func marketPageShown(t testing.TB, c *client) {
	t.Helper()
	if res := c.get("/market"); res.StatusCode != http.StatusOK || !strings.Contains(res.body, "rita") {
		t.Fatalf("GET /market: %d %.300s", res.StatusCode, res.body)
	}
}

// maxRoundTrips is what a market page and a trade may each wait for, one after the other: the
// session with its user and the market version, and the trade with the page's count after it.
// A first page whose caches a trade emptied waits for as many: the session, then the snapshot
// of its rows, the user's items and the version that caches them (Store.ReadPage; another
// page, one more: its count before its rows).
const maxRoundTrips = 2

// On PostgreSQL a signed-in market page, its caches warm or emptied by a trade, and an htmx
// trade from the market page each wait for at most two round trips to the database. Counted at
// the wire; the engine's own traffic beside the requests (the listener, the notifier, the poll)
// is left out, and the fewest of a few tries counts, since a poll or the pruning may fall
// inside one.
func TestRoundTripsPerPageAndTrade(t *testing.T) {
	storetest.RequirePostgres(t)
	app, p, c, tok := appBehindWire(t, 0)
	phone := app.item("Phone").ID
	for range 3 { // every connection of the pool prepares its statements once
		marketPageShown(t, c)
		marketTrade(t, c, tok, phone, false, "Purchased Phone!")
		marketTrade(t, c, tok, phone, true, "Sold Phone back to the market!")
	}
	fewest := func(what string, before, fn func()) {
		t.Helper()
		var best []roundTrip
		for try := 0; try < 5 && (try == 0 || len(best) > maxRoundTrips); try++ {
			before()
			if trips := p.count(fn); try == 0 || len(trips) < len(best) {
				best = trips
			}
		}
		t.Logf("%s: %d round trips", what, len(best))
		for _, rt := range best {
			t.Logf("  conn %d: %.160q", rt.conn, rt.sqls)
		}
		if len(best) > maxRoundTrips {
			t.Errorf("%s waited for %d round trips to the database, want at most %d", what, len(best), maxRoundTrips)
		}
	}
	marketPageShown(t, c) // the caches now hold the page at this version
	fewest("GET /market", func() {}, func() { marketPageShown(t, c) })
	sold := true
	trade := func() {
		sold = !sold
		if sold {
			marketTrade(t, c, tok, phone, true, "Sold Phone back to the market!")
		} else {
			marketTrade(t, c, tok, phone, false, "Purchased Phone!")
		}
	}
	fewest("htmx trade", func() {}, trade)
	fewest("GET /market after a trade", trade, func() { marketPageShown(t, c) })
}

// BenchmarkPostgresFarAway is a market page (right after a trade, its caches empty, and again),
// and a trade with the database far away: every answer from PostgreSQL reaches the app
// MARKET_DB_DELAY later (200ms unless set). It reports the p50 of each, in ms; run it with a
// few iterations (-benchtime=20x).
func BenchmarkPostgresFarAway(b *testing.B) {
	storetest.RequirePostgres(b)
	delay := 200 * time.Millisecond
	if d, err := time.ParseDuration(os.Getenv("MARKET_DB_DELAY")); err == nil {
		delay = d
	}
	app, p, c, tok := appBehindWire(b, delay)
	phone := app.item("Phone").ID
	for range 2 {
		marketPageShown(b, c)
		marketTrade(b, c, tok, phone, false, "Purchased Phone!")
		marketTrade(b, c, tok, phone, true, "Sold Phone back to the market!")
	}
	var cold, pages, trades, coldTrips, pageTrips, tradeTrips []time.Duration // round trips counted as ms, for p50ms
	timed := func(times, trips *[]time.Duration, fn func()) {
		start := time.Now()
		*trips = append(*trips, time.Duration(len(p.count(fn)))*time.Millisecond)
		*times = append(*times, time.Since(start))
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		timed(&cold, &coldTrips, func() { marketPageShown(b, c) }) // after a trade: read, then cached
		timed(&pages, &pageTrips, func() { marketPageShown(b, c) })
		timed(&trades, &tradeTrips, func() {
			if i%2 == 0 {
				marketTrade(b, c, tok, phone, false, "Purchased Phone!")
			} else {
				marketTrade(b, c, tok, phone, true, "Sold Phone back to the market!")
			}
		})
	}
	b.ReportMetric(p50ms(cold), "cold-page-p50-ms")
	b.ReportMetric(p50ms(coldTrips), "cold-page-trips-p50")
	b.ReportMetric(p50ms(pages), "page-p50-ms")
	b.ReportMetric(p50ms(trades), "trade-p50-ms")
	b.ReportMetric(p50ms(pageTrips), "page-trips-p50")
	b.ReportMetric(p50ms(tradeTrips), "trade-trips-p50")
}

func p50ms(d []time.Duration) float64 {
	slices.Sort(d)
	return float64(d[len(d)/2]) / float64(time.Millisecond)
}

// A session's row names its user beside the session's data; the data decides. A row that names
// no one (saved before the column was) or someone else (written behind the app's back) still
// signs in the data's user, and the next save names them again.
func TestSessionRowNamesItsUser(t *testing.T) {
	app := newTestApp(t)
	rita, sam := app.signUp("rita"), app.signUp("sam")
	db := storetest.RawDB(t, app.store)
	userID := func(name string) (id int64) {
		t.Helper()
		if err := db.QueryRow(`SELECT id FROM users WHERE username = ?`, name).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	samID := userID("sam")
	for _, set := range []any{nil, samID} {
		if _, err := db.Exec(`UPDATE sessions SET user_id = ?`, set); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			cl   *client
			name string
		}{{rita, "rita"}, {sam, "sam"}} {
			res := c.cl.get("/market")
			if nav := text(res.doc(t).Find(".nav-username")); res.StatusCode != http.StatusOK || nav != "Signed in as "+c.name {
				t.Errorf("user_id %v: %s's market page: %d, nav %q", set, c.name, res.StatusCode, nav)
			}
		}
	}
	app.clock.Advance(2 * time.Minute) // the next page saves the session (its idle timer)
	rita.get("/market")
	var named int64
	err := db.QueryRow(`SELECT count(*) FROM sessions WHERE user_id = ?`, userID("rita")).Scan(&named)
	if err != nil || named != 1 {
		t.Errorf("%d sessions name rita after a save (%v), want 1", named, err)
	}
}
