package handlers_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"market/assets"
	"market/handlers"
	"market/store"
	"market/store/storetest"
)

// What a request may cost: the tests of each rule, over real HTTP, on the engine the
// environment names (SQLite, or PostgreSQL with MARKET_TEST_POSTGRES).

func signupForm(name, email string) url.Values {
	return url.Values{"username": {name}, "email": {email},
		"password": {"long enough"}, "confirm_password": {"long enough"}}
}

// A sign-up that cannot succeed costs no hash, and still counts against the address's cap, so
// that probing for registered emails is as slow as before.
func TestTakenNameSignupCostsNoHash(t *testing.T) {
	app := newTestApp(t, handlers.Config{SignupsPerHour: 6})
	app.signUp("alice")
	before := app.store.HashesDone()
	c := app.client()
	probes := []url.Values{
		signupForm("alice", "other@example.com"), signupForm("ALICE", "other@example.com"),
		signupForm("bob", "alice@example.com"), signupForm("bob", "ALICE@Example.com"),
		signupForm("Alice", "Alice@example.com"),
	}
	for i, form := range probes {
		res := c.post("/register", form)
		if res.StatusCode != http.StatusOK || !strings.Contains(res.body, "is taken") && !strings.Contains(res.body, "already registered") {
			t.Fatalf("probe %d: %d, want 200 with the form saying what is taken", i, res.StatusCode)
		}
	}
	if n := app.store.HashesDone() - before; n != 0 {
		t.Errorf("%d password hashes for sign-ups that could not succeed, want 0", n)
	}
	// alice's sign-up and five probes: the cap of six is used up.
	res := c.post("/register", signupForm("carol", "carol@example.com"))
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Errorf("sign-up after 6 attempts: %d Retry-After %q, want 429 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
}

// Hashing runs in a bounded number of slots: past them, a request waits briefly, then gets 503
// with Retry-After (a page, or the htmx message in #flash-alert).
func TestHashingBusyIs503(t *testing.T) {
	st, err := store.Open(context.Background(), storetest.URL(t),
		store.Options{BcryptCost: 13, HashSlots: 1, HashWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	app := serveApp(t, st)
	holder, prober := app.client(), app.client()
	form := signupForm("slowpoke", "slowpoke@example.com")
	form.Set("csrf_token", holder.token())
	tok := prober.token()
	var wg sync.WaitGroup
	wg.Go(func() { holder.do(http.MethodPost, "/register", form, nil) })
	defer wg.Wait()
	waitUntil(t, "the sign-up to take the one hashing slot", 10*time.Second, func() bool { return st.HashesInFlight() > 0 })
	login := url.Values{"username": {"slowpoke"}, "password": {"long enough"}, "csrf_token": {tok}}
	res := prober.do(http.MethodPost, "/login", login, nil)
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("login while the one slot hashes: %d Retry-After %q, want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if got := text(res.doc(t).Find("main p").First()); got != "The server is busy. Try again in a moment." {
		t.Errorf("503 page says %q", got)
	}
	res = prober.do(http.MethodPost, "/login", login, map[string]string{"HX-Request": "true", "X-CSRF-Token": tok})
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(res.body, "flash-alert") ||
		messages(res.doc(t)) != "The server is busy. Try again in a moment." {
		t.Errorf("htmx login while busy: %d %q, want 503 and the message for #flash-alert", res.StatusCode, res.body)
	}
}

// sessionRows counts the sessions table.
func sessionRows(t *testing.T, st *store.Store) int64 {
	t.Helper()
	n, _, err := st.Rows(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Anonymous page views write no session; being sent to log in, and logging out, still say so.
func TestAnonymousViewsWriteNothing(t *testing.T) {
	app := newTestApp(t)
	id := fmt.Sprint(app.item("Phone").ID)
	app.signUp("erin")
	before := sessionRows(t, app.store)
	paths := []string{"/", "/market", "/items/" + id, "/login", "/register", "/logout", "/login?next=%2Fmarket", "/nowhere"}
	for range 20 {
		for _, p := range paths {
			app.client().get(p)
			app.client().get(p, map[string]string{"HX-Request": "true"})
		}
	}
	// Anonymous posts: a failed login, a taken name, a refused form.
	c := app.client()
	c.post("/login", url.Values{"username": {"erin"}, "password": {"wrong password"}})
	c.post("/register", signupForm("erin", "new@example.com"))
	c.post("/register", url.Values{"username": {"x"}})
	if after := sessionRows(t, app.store); after != before {
		t.Fatalf("%d session rows after anonymous requests, want %d", after, before)
	}
	res := c.get("/market")
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/login?next=%2Fmarket" {
		t.Fatalf("anonymous /market: %d → %q", res.StatusCode, res.Header.Get("Location"))
	}
	if got := messages(c.get("/login?next=%2Fmarket").doc(t)); got != "Please log in to access this page." {
		t.Errorf("login page says %q", got)
	}
	if got := messages(app.client().get("/login?next=%2Fmarket").doc(t)); got != "Please log in to access this page." {
		t.Errorf("login page without the cookie says %q", got)
	}
	if got := messages(c.get("/login").doc(t)); got != "" {
		t.Errorf("the notice is said twice: %q", got)
	}
	erin := app.client()
	erin.post("/login", url.Values{"username": {"erin"}, "password": {"correct horse"}})
	if n := sessionRows(t, app.store); n != before+1 {
		t.Errorf("%d session rows after a login, want %d", n, before+1)
	}
	erin.get("/logout")
	if n := sessionRows(t, app.store); n != before {
		t.Errorf("%d session rows after logging out, want %d", n, before)
	}
	if got := messages(erin.get("/").doc(t)); got != "You have been logged out." {
		t.Errorf("home after logout says %q", got)
	}
}

// Failed-login counters: a name no account can have never becomes a key (it counts per address
// only), and spellings the database takes for one username share one counter.
func TestLoginKeys(t *testing.T) {
	app := newTestApp(t, handlers.Config{LoginFailures: 3})
	app.signUp("alice")
	c := app.client()
	for _, name := range []string{"Alice", "ALICE", "aLiCe"} {
		if res := c.post("/login", url.Values{"username": {name}, "password": {"wrong password"}}); res.StatusCode != http.StatusOK {
			t.Fatalf("failure as %s: %d", name, res.StatusCode)
		}
	}
	res := c.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse"}})
	if res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("fourth attempt, in another spelling: %d, want 429", res.StatusCode)
	}
	// Full-width letters are one username to PostgreSQL's collation: they cannot log in at all.
	other := app.clientFrom("127.0.0.3")
	res = other.post("/login", url.Values{"username": {"ａｌｉｃｅ"}, "password": {"correct horse"}})
	if res.StatusCode != http.StatusOK || messages(res.doc(t)) != "Login failed. Check username and password." {
		t.Errorf("full-width spelling: %d %q, want the login failure", res.StatusCode, messages(res.doc(t)))
	}
	// Names longer than the form allows: no key each, and no hash; the address's cap still holds
	// (twenty times the per-name limit: 60).
	hashes := app.store.HashesDone()
	_, events, _ := app.store.Rows(context.Background())
	long := app.clientFrom("127.0.0.4")
	for i := range 61 {
		res = long.post("/login", url.Values{"username": {strings.Repeat("x", 1000) + fmt.Sprint(i)}, "password": {"guess"}})
		if res.StatusCode == http.StatusTooManyRequests {
			break
		}
	}
	if res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("61 long names from one address: last %d, want 429 past the address's cap of 60", res.StatusCode)
	}
	if n := app.store.HashesDone() - hashes; n != 0 {
		t.Errorf("%d hashes for names no account can have", n)
	}
	// Counts kept in a table (PostgreSQL's; SQLite's are in memory): one row per attempt.
	if _, after, _ := app.store.Rows(context.Background()); storetest.OnPostgres(t) && after-events != 60 {
		t.Errorf("%d limit rows for 60 attempts from one address, want 60 (per address only)", after-events)
	}
}

// GET /logout from another site asks first; the form it shows posts, with the token.
func TestCrossSiteLogoutAsks(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("frank")
	res := c.get("/logout", map[string]string{"Sec-Fetch-Site": "cross-site"})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("cross-site GET /logout: %d, want 200 (a page asking)", res.StatusCode)
	}
	form := res.doc(t).Find(`form[method="post"][action="/logout"]`)
	tok, ok := form.Find(`input[name="csrf_token"]`).Attr("value")
	if !ok || tok == "" {
		t.Fatalf("no POST form with a token: %s", res.body)
	}
	if res := c.get("/market"); res.StatusCode != http.StatusOK {
		t.Fatalf("still logged in after the question: %d", res.StatusCode)
	}
	if res := c.do(http.MethodPost, "/logout", url.Values{}, nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("POST /logout without the token: %d, want 403", res.StatusCode)
	}
	res = c.do(http.MethodPost, "/logout", url.Values{"csrf_token": {tok}}, nil)
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/" {
		t.Fatalf("confirmed logout: %d → %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res := c.get("/market"); res.StatusCode != http.StatusFound {
		t.Errorf("market after the confirmed logout: %d, want 302", res.StatusCode)
	}
	// Our own link still logs out at once.
	c = app.signUp("grace")
	if res := c.get("/logout", map[string]string{"Sec-Fetch-Site": "same-origin"}); res.StatusCode != http.StatusFound {
		t.Errorf("same-origin GET /logout: %d, want 302", res.StatusCode)
	}
	if res := c.get("/market"); res.StatusCode != http.StatusFound {
		t.Errorf("market after our own logout link: %d, want 302", res.StatusCode)
	}
}

// lockedBuffer is a log destination tests read while the server writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The request log keeps a few hundred bytes of what a client sends, however much it sends.
func TestRequestLogClipsWhatClientsSend(t *testing.T) {
	st := storetest.Open(t)
	as, err := assets.New()
	if err != nil {
		t.Fatal(err)
	}
	var log lockedBuffer
	h := handlers.New(slog.New(slog.NewTextHandler(&log, nil)), st, handlers.NewSessionManager(st.Sessions(), false), as, handlers.Config{})
	ts := httptest.NewServer(h.Routes())
	defer ts.Close()
	defer h.StopStreams()
	req, _ := http.NewRequest("MADEUP"+strings.Repeat("M", 5000), ts.URL+"/market/"+strings.Repeat("a", 30_000)+"?q="+strings.Repeat("é", 5000), nil)
	req.Header.Set("User-Agent", strings.Repeat("agent ", 5000))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for line := range strings.Lines(log.String()) {
		if len(line) > 1500 {
			t.Errorf("a log line of %d bytes: %.200s", len(line), line)
		}
	}
	if !strings.Contains(log.String(), "msg=request") {
		t.Fatalf("no request logged: %s", log.String())
	}
}
