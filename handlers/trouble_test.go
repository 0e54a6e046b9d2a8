package handlers_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"market/handlers"
	"market/store"
	"market/store/storetest"
)

// dbProxy stands between the store and PostgreSQL, so that a test can cut the database off, or
// drop a connection at the moment it sends COMMIT.
type dbProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns []net.Conn
	// dropCommit: the next trade a client sends closes its connection, unsent. On PostgreSQL a
	// trade is one statement, market_trade, which commits as it runs: its commit point.
	dropCommit  bool
	commitsSeen int
	// hangAtTrade: the next trade a client sends hangs the database, sent (see hang).
	hangAtTrade bool
	resume      func()
	// held, while not nil, holds every byte in both directions until it is closed: the
	// database hangs.
	held chan struct{}
}

// hang makes the database stop answering, until the returned function is called.
func (p *dbProxy) hang() (resume func()) {
	held := make(chan struct{})
	p.mu.Lock()
	p.held = held
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			p.held = nil
			p.mu.Unlock()
			close(held)
		})
	}
}

// wait blocks while the database hangs.
func (p *dbProxy) wait() {
	p.mu.Lock()
	held := p.held
	p.mu.Unlock()
	if held != nil {
		<-held
	}
}

func newDBProxy(t *testing.T, target string) *dbProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dbProxy{ln: ln, target: target}
	go p.accept()
	t.Cleanup(p.cut)
	return p
}

func (p *dbProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.pipe(c, s, true)
		go p.pipe(s, c, false)
	}
}

// pipe copies from to to; from the client, it looks for COMMIT when asked to drop one.
func (p *dbProxy) pipe(from, to net.Conn, fromClient bool) {
	defer from.Close()
	defer to.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 && fromClient && bytes.Contains(buf[:n], []byte("market_trade")) {
			p.mu.Lock()
			drop, hang := p.dropCommit, p.hangAtTrade
			p.dropCommit, p.hangAtTrade = false, false
			p.commitsSeen++
			p.mu.Unlock()
			if drop {
				return
			}
			if hang {
				resume := p.hang()
				p.mu.Lock()
				p.resume = resume
				p.mu.Unlock()
			}
		}
		if n > 0 {
			p.wait()
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// cut closes the proxy and every connection through it: the database is unreachable.
func (p *dbProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// storeBehindProxy opens a store on a new PostgreSQL database, through a proxy.
func storeBehindProxy(t *testing.T) (*store.Store, *dbProxy) {
	t.Helper()
	u, err := url.Parse(storetest.NewPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newDBProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	st := storetest.OpenAt(t, u.String())
	if _, err := st.Seed(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st, p
}

// The database unreachable: every route answers 503 with Retry-After (a page, or the htmx
// message), never 500. SQLite: the store closed; PostgreSQL: every connection cut.
func TestUnreachableDatabaseIs503(t *testing.T) {
	var (
		app     *testApp
		goesOff func()
	)
	if storetest.OnPostgres(t) { // the connections cut, behind a proxy; a file cannot be cut
		st, proxy := storeBehindProxy(t)
		app, goesOff = serveApp(t, st), proxy.cut
	} else {
		app = newTestApp(t)
		goesOff = func() { app.store.Close() }
	}
	id := fmt.Sprint(app.item("Phone").ID)
	c := app.signUp("henry")
	tok := c.token()
	anon := app.client()
	anonTok := anon.token()
	goesOff()

	htmx := map[string]string{"HX-Request": "true", "X-CSRF-Token": tok}
	type req struct {
		method, path string
		form         url.Values
		headers      map[string]string
	}
	reqs := []req{
		{"GET", "/", nil, nil}, {"GET", "/home", nil, nil}, {"GET", "/market", nil, nil},
		{"GET", "/market?q=lap", nil, htmx}, {"GET", "/items/" + id, nil, nil}, {"GET", "/items/" + id, nil, htmx},
		{"GET", "/trades", nil, nil}, {"GET", "/login", nil, nil}, {"GET", "/register", nil, nil},
		{"GET", "/logout", nil, nil}, {"GET", "/market/events", nil, nil}, {"GET", "/healthz", nil, nil},
		{"GET", "/readyz", nil, nil},
		{"POST", "/market", url.Values{"purchase_item": {id}, "csrf_token": {tok}}, nil},
		{"POST", "/market", url.Values{"purchase_item": {id}}, htmx},
		{"POST", "/login", url.Values{"username": {"henry"}, "password": {"correct horse"}, "csrf_token": {tok}}, nil},
		{"POST", "/register", url.Values{"username": {"ivy"}, "csrf_token": {tok}}, nil},
	}
	for _, r := range reqs {
		res := c.do(r.method, r.path, r.form, r.headers)
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
			t.Errorf("signed in, %s %s: %d Retry-After %q, want 503 with Retry-After", r.method, r.path, res.StatusCode, res.Header.Get("Retry-After"))
		}
	}
	// Without a session, pages that need no database still work; none is a 500.
	anonReqs := []req{
		{"GET", "/", nil, nil}, {"GET", "/market", nil, nil}, {"GET", "/items/" + id, nil, nil},
		{"POST", "/login", url.Values{"username": {"henry"}, "password": {"correct horse"}, "csrf_token": {anonTok}}, nil},
		{"POST", "/register", signupFormWith("ivy", anonTok), nil},
	}
	for _, r := range anonReqs {
		res := anon.do(r.method, r.path, r.form, r.headers)
		if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("anonymous %s %s: %d, want no 5xx but 503", r.method, r.path, res.StatusCode)
		}
	}
}

func signupFormWith(name, tok string) url.Values {
	f := signupForm(name, name+"@example.com")
	f.Set("csrf_token", tok)
	return f
}

// A trade whose commit was cut off (on PostgreSQL, market_trade sent and no answer) says the
// outcome is unknown, and is not tried again.
func TestTradeWithUnknownOutcome(t *testing.T) {
	storetest.RequirePostgres(t)
	st, proxy := storeBehindProxy(t)
	app := serveApp(t, st)
	phone := app.item("Phone")
	c := app.signUp("jack")
	tok := c.token()
	for _, htmx := range []bool{false, true} {
		proxy.mu.Lock()
		proxy.dropCommit, proxy.commitsSeen = true, 0
		proxy.mu.Unlock()
		var res response
		if htmx {
			res = c.do(http.MethodPost, "/market", url.Values{"purchase_item": {fmt.Sprint(phone.ID)}},
				map[string]string{"HX-Request": "true", "X-CSRF-Token": tok})
		} else {
			res = c.do(http.MethodPost, "/market", url.Values{"purchase_item": {fmt.Sprint(phone.ID)}, "csrf_token": {tok}}, nil)
		}
		proxy.mu.Lock()
		seen := proxy.commitsSeen
		proxy.mu.Unlock()
		if !htmx {
			res = c.get("/market")
		}
		want := "We could not confirm the purchase of Phone; see Your trades."
		if got := messages(res.doc(t)); got != want {
			t.Errorf("htmx %v: %d says %q, want %q", htmx, res.StatusCode, got, want)
		}
		if seen != 1 {
			t.Errorf("htmx %v: %d trades sent, want 1: a trade of unknown outcome is never retried", htmx, seen)
		}
		if owner := app.owner(phone.ID); owner != 0 {
			t.Fatalf("the phone is owned by %d after a commit that never reached the database", owner)
		}
	}
}

// A database that hangs holds no request past its budget: pages, trades and logins answer 503
// with Retry-After within it (here 400 ms), and once the database answers again, so does the
// market, with nothing lost.
func TestHungDatabaseAnswersWithinBudget(t *testing.T) {
	storetest.RequirePostgres(t)
	st, proxy := storeBehindProxy(t)
	const budget = 400 * time.Millisecond
	app := serveApp(t, st, handlers.Config{RequestBudget: budget})
	phone := app.item("Phone")
	c := app.signUp("kate")
	tok := c.token()
	before := app.totals()

	resume := proxy.hang()
	defer resume()
	id := fmt.Sprint(phone.ID)
	htmx := map[string]string{"HX-Request": "true", "X-CSRF-Token": tok}
	reqs := []struct {
		method, path string
		form         url.Values
		headers      map[string]string
		limit        time.Duration
	}{
		{"GET", "/market", nil, nil, budget},
		{"GET", "/market/events", nil, nil, budget}, // its opening: the stream itself has none
		{"GET", "/items/" + id, nil, htmx, budget},
		{"POST", "/market", url.Values{"purchase_item": {id}}, htmx, budget},
		{"POST", "/market", url.Values{"purchase_item": {id}, "csrf_token": {tok}}, nil, budget},
		{"POST", "/login", url.Values{"username": {"kate"}, "password": {"correct horse"}, "csrf_token": {tok}}, nil, 2 * budget},
	}
	for _, r := range reqs {
		start := time.Now()
		res := c.do(r.method, r.path, r.form, r.headers)
		took := time.Since(start)
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s with the database hung: %d Retry-After %q, want 503 with Retry-After",
				r.method, r.path, res.StatusCode, res.Header.Get("Retry-After"))
		}
		// The budget, and a margin for a loaded machine: a hang is otherwise endless.
		if took > r.limit+time.Second {
			t.Errorf("%s %s took %v with the database hung, over its budget of %v", r.method, r.path, took, r.limit)
		}
	}

	resume()
	deadline := time.Now().Add(10 * time.Second)
	for res := c.get("/market"); res.StatusCode != http.StatusOK; res = c.get("/market") {
		if time.Now().After(deadline) {
			t.Fatalf("the market still answers %d 10 s after the database came back", res.StatusCode)
		}
		time.Sleep(50 * time.Millisecond) // a poll, with the deadline above
	}
	after := app.totals()
	if before.Budgets+before.Owned-before.Granted != after.Budgets+after.Owned-after.Granted {
		t.Errorf("money before the hang %+v, after %+v: some was made or lost", before, after)
	}
}

// A database that hangs while a trade's statement is on its way: the trade is answered within
// the request's budget, as of unknown outcome and naming its item, and is not tried again.
func TestTradeHungAtCommit(t *testing.T) {
	storetest.RequirePostgres(t)
	st, proxy := storeBehindProxy(t)
	const budget = 400 * time.Millisecond
	app := serveApp(t, st, handlers.Config{RequestBudget: budget})
	phone := app.item("Phone")
	c := app.signUp("liam")
	tok := c.token()
	proxy.mu.Lock()
	proxy.hangAtTrade, proxy.commitsSeen = true, 0
	proxy.mu.Unlock()
	start := time.Now()
	res := c.do(http.MethodPost, "/market", url.Values{"purchase_item": {fmt.Sprint(phone.ID)}},
		map[string]string{"HX-Request": "true", "X-CSRF-Token": tok})
	took := time.Since(start)
	proxy.mu.Lock()
	seen, resume := proxy.commitsSeen, proxy.resume
	proxy.mu.Unlock()
	if resume != nil {
		resume()
	}
	want := "We could not confirm the purchase of Phone; see Your trades."
	if got := messages(res.doc(t)); res.StatusCode != http.StatusOK || got != want {
		t.Errorf("a trade hung at its commit: %d %q, want 200 %q", res.StatusCode, got, want)
	}
	if took > budget+time.Second {
		t.Errorf("a trade hung at its commit took %v, over its budget of %v", took, budget)
	}
	if seen != 1 {
		t.Errorf("%d trades sent, want 1: a trade of unknown outcome is never retried", seen)
	}
}
