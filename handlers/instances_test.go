package handlers_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"market/assets"
	"market/handlers"
	"market/store"
	"market/store/storetest"
)

// newInstances starts n app instances on one PostgreSQL database behind a round-robin reverse
// proxy, as a load balancer without sticky sessions would put them. The testApp's server is
// the proxy, its store the first instance's. cfgs[0], if given, configures every instance.
func newInstances(t *testing.T, n int, cfgs ...handlers.Config) (*testApp, []*store.Store) {
	t.Helper()
	dsn := storetest.NewPostgres(t)
	as, err := assets.New()
	if err != nil {
		t.Fatal(err)
	}
	var (
		stores   []*store.Store
		backends []*url.URL
	)
	clock := &testClock{now: time.Now()}
	for i := range n {
		st := storetest.OpenAt(t, dsn)
		if i == 0 {
			if _, err := st.Seed(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		var cfg handlers.Config
		if len(cfgs) > 0 {
			cfg = cfgs[0]
		}
		cfg.Now = clock.Now
		h := handlers.New(logger, st, handlers.NewSessionManager(st.Sessions(), false), as, cfg)
		ts := httptest.NewServer(h.Routes())
		t.Cleanup(ts.Close)
		t.Cleanup(h.StopStreams) // first: the streams end, and the broker with them
		u, _ := url.Parse(ts.URL)
		stores, backends = append(stores, st), append(backends, u)
	}
	var next atomic.Uint64
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(backends[next.Add(1)%uint64(len(backends))])
		r.Out.Host = r.In.Host // the instances see the address users use, as behind nginx
	}})
	t.Cleanup(proxy.Close)
	return &testApp{t: t, server: proxy, store: stores[0], clock: clock}, stores
}

// Three instances, one market: twelve buyers rush one item, each request to whichever instance
// the proxy picks. One buyer gets it; every other is told it is gone; every instance's next
// page shows it sold at once (their caches follow the shared version), and the money adds up.
func TestInstancesShareOneMarket(t *testing.T) {
	app, stores := newInstances(t, 3)
	phone := app.item("Phone")
	const buyers = 12
	clients := make([]*client, buyers)
	tokens := make([]string, buyers)
	for i := range clients {
		clients[i] = app.signUp(fmt.Sprintf("buyer%02d", i))
		tokens[i] = clients[i].token()
		for range 3 { // every instance caches the market with the phone on sale
			if !strings.Contains(clients[i].get("/market").body, `id="item-`+id(phone)+`"`) {
				t.Fatal("the phone is not on the market before the rush")
			}
		}
	}

	answers := make([]response, buyers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range clients {
		c.web.Token = tokens[i]
		wg.Go(func() {
			<-start
			res, err := c.web.Buy(phone.ID)
			if err != nil {
				t.Errorf("buyer %d: %v", i, err)
				return
			}
			answers[i] = response{Response: res.Response, body: res.Body}
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, res := range answers {
		switch {
		case res.Response == nil: // no answer: reported above
		case res.StatusCode != http.StatusOK:
			t.Errorf("buyer %d: status %d: %.300s", i, res.StatusCode, res.body)
		case strings.Contains(res.body, "Purchased Phone!"):
			if winner >= 0 {
				t.Errorf("buyers %d and %d were both told they bought the phone", winner, i)
			}
			winner = i
		case strings.Contains(res.body, "serialization") || strings.Contains(res.body, "deadlock"):
			t.Errorf("buyer %d heard of the database's conflict: %.300s", i, res.body)
		}
	}
	if winner < 0 {
		t.Fatal("nobody bought the phone")
	}
	u, err := app.store.Authenticate(context.Background(), fmt.Sprintf("buyer%02d", winner), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if got := app.owner(phone.ID); got != u.ID {
		t.Errorf("the phone's owner is %d, want the buyer told so (%d)", got, u.ID)
	}
	// Right after the trade, every instance answers with the phone sold: to the winner in their
	// items, to everyone off the market.
	for i, c := range clients {
		for range 3 {
			doc := c.get("/market").doc(t)
			if doc.Find("#item-rows #item-"+id(phone)).Length() != 0 {
				t.Errorf("buyer %d: an instance still offers the sold phone", i)
			}
			if mine := doc.Find("#owned-rows #item-"+id(phone)).Length() == 1; mine != (i == winner) {
				t.Errorf("buyer %d: phone among their items = %v", i, mine)
			}
		}
	}
	for i, st := range stores {
		if it, err := st.Item(context.Background(), phone.ID); err != nil || it.OwnerID != u.ID {
			t.Errorf("instance %d: phone owner %d (%v)", i, it.OwnerID, err)
		}
	}
	if got := app.totals(); got.Budgets+got.Owned != got.Granted || got.Owned != phone.Price {
		t.Errorf("money after the rush: %+v", got)
	}
	if problems, err := app.store.Check(context.Background()); err != nil || len(problems) > 0 {
		t.Errorf("check: %q %v", problems, err)
	}
}

// A change committed by one instance wakes Changed on the others.
func TestChangedHearsOtherInstances(t *testing.T) {
	_, stores := newInstances(t, 2)
	ctx := context.Background()
	a, b := stores[0], stores[1]
	deadline := time.After(5 * time.Second)
	for !b.Listening() {
		select {
		case <-deadline:
			t.Fatal("the listener did not start")
		case <-time.After(10 * time.Millisecond):
		}
	}
	woke := b.Changed()
	before, _ := b.Version(ctx)
	u, err := a.CreateUser(ctx, "alice", "alice@example.com", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Market(ctx, store.MarketQuery{Q: "Mouse"})
	if err != nil || len(p.Items) != 1 {
		t.Fatal(p, err)
	}
	if _, err := a.Buy(ctx, u.ID, p.Items[0].ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Fatal("a trade on another instance did not wake Changed")
	}
	// Woken, and the version moves: on PostgreSQL the wake-up may come while the trade is not
	// yet below every reader's horizon (another database's transaction, in CI), for a moment.
	after, _ := b.Version(ctx)
	for end := time.Now().Add(5 * time.Second); after <= before && time.Now().Before(end); after, _ = b.Version(ctx) {
		time.Sleep(10 * time.Millisecond) // polling the condition
	}
	if after <= before {
		t.Errorf("woken, but the version is %d, was %d", after, before)
	}
	select {
	case <-b.Changed():
		t.Error("a fresh Changed channel is already closed with nothing new")
	case <-time.After(200 * time.Millisecond):
	}
}

// Failed logins count for all instances: with five allowed, the sixth guess is refused whichever
// instance it reaches, and so is a guess at another instance after that.
func TestInstancesShareLoginLimits(t *testing.T) {
	app, _ := newInstances(t, 3)
	app.signUp("alice")
	c := app.client()
	guess := func() response {
		return c.post("/login", url.Values{"username": {"alice"}, "password": {"wrong guess"}})
	}
	for i := range 5 {
		if res := guess(); res.StatusCode != http.StatusOK || !strings.Contains(res.body, "Login failed") {
			t.Fatalf("guess %d: %d %.200s", i+1, res.StatusCode, res.body)
		}
	}
	for i := range 3 { // one at each instance
		if res := guess(); res.StatusCode != http.StatusTooManyRequests {
			t.Errorf("guess %d after the limit: status %d, want 429 on every instance", 6+i, res.StatusCode)
		}
	}
}

// Live updates across instances: with two streams open through the proxy (one on each
// instance), a trade committed by the second instance reaches both within a second, as an
// event whose id is the market version after it (stamped at commit on PostgreSQL).
func TestInstancesLiveStreams(t *testing.T) {
	app, stores := newInstances(t, 2)
	ann := app.signUp("ann")
	app.signUp("bob")
	bob, err := app.store.Authenticate(context.Background(), "bob", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	mouse := app.item("Mouse")
	since := strconv.FormatInt(app.version(), 10)
	streams := []*liveStream{ // consecutive requests: one to each instance
		ann.stream("/market/events?since="+since, nil),
		ann.stream("/market/events?since="+since, nil),
	}
	for i, st := range stores {
		deadline := time.Now().Add(5 * time.Second)
		for !st.Listening() {
			if time.Now().After(deadline) {
				t.Fatalf("instance %d: the listener did not start", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	start := time.Now()
	if _, err := stores[1].Buy(context.Background(), bob.ID, mouse.ID); err != nil {
		t.Fatal(err)
	}
	want := strconv.FormatInt(app.version(), 10)
	row := fmt.Sprintf(`data-row="item-%d" data-change="bought"`, mouse.ID)
	for i, ls := range streams {
		ev := ls.next(t, time.Second-time.Since(start))
		if ev.id != want || ev.name != "market" || !strings.Contains(ev.data, row) {
			t.Errorf("stream %d: event id %q name %q, want id %s with the bought mouse:\n%.500s", i, ev.id, ev.name, want, ev.data)
		}
	}
	t.Logf("events after %s", time.Since(start))
	// A reconnect to either instance replays it from the shared table.
	for i := range 2 {
		ev := ann.stream("/market/events?since="+since, nil).next(t, time.Second)
		if ev.id != want || !strings.Contains(ev.data, row) {
			t.Errorf("replay %d: event id %q, want %s with the bought mouse:\n%.500s", i, ev.id, want, ev.data)
		}
	}
}
