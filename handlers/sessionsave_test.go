package handlers_test

import (
	"bytes"
	"context"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"market/store/storetest"
)

// failSessionWrites makes every write of a session fail, as a full disk would, until the
// returned function undoes it; the rest of the database works.
func failSessionWrites(t *testing.T, app *testApp) (undo func()) {
	t.Helper()
	ctx := context.Background()
	install := []string{
		`CREATE TRIGGER fail_session_insert BEFORE INSERT ON sessions BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`,
		`CREATE TRIGGER fail_session_update BEFORE UPDATE ON sessions BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`,
	}
	remove := []string{`DROP TRIGGER fail_session_insert`, `DROP TRIGGER fail_session_update`}
	if storetest.Postgres() {
		install = []string{
			`CREATE FUNCTION fail_session_write() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$`,
			`CREATE TRIGGER fail_session_write BEFORE INSERT OR UPDATE ON sessions
				FOR EACH ROW EXECUTE FUNCTION fail_session_write()`,
		}
		remove = []string{`DROP TRIGGER fail_session_write ON sessions`, `DROP FUNCTION fail_session_write()`}
	}
	for _, q := range install {
		if _, err := app.store.DB().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		for _, q := range remove {
			if _, err := app.store.DB().ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// syncBuffer is a log the server writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A session that cannot be saved gets one answer: the failure's, with nothing of the
// handler's after it (net/http logs a second status as "superfluous"). A sign-up whose account
// was made is never answered with an error: the login form says what happened, and the new
// password logs in once sessions can be saved again.
func TestSessionThatCannotBeSavedGetsOneAnswer(t *testing.T) {
	app := newTestApp(t)
	var serverLog syncBuffer
	ts := httptest.NewUnstartedServer(app.handler.Routes())
	ts.Config.ErrorLog = log.New(&serverLog, "", 0)
	ts.Start()
	t.Cleanup(ts.Close)
	app.server = ts

	c := app.client()
	tok := c.token()
	undo := failSessionWrites(t, app)

	res := c.post("/register", signupFormWith("ivy", tok))
	doc := res.doc(t)
	want := "Your account ivy was created, but we could not log you in just now. Log in to continue."
	if res.StatusCode != http.StatusOK || !strings.Contains(messages(doc), want) {
		t.Errorf("sign-up with sessions failing: %d %q, want 200 saying %q", res.StatusCode, messages(doc), want)
	}
	if got, _ := doc.Find(`input[name="username"]`).Attr("value"); got != "ivy" {
		t.Errorf("the login form's username is %q, want ivy", got)
	}

	res = c.post("/login", url.Values{"username": {"ivy"}, "password": {"long enough"}, "csrf_token": {tok}})
	if res.StatusCode < 500 {
		t.Errorf("login with sessions failing: %d (Location %q), want the failure's 5xx", res.StatusCode, res.Header.Get("Location"))
	}
	if res.Header.Get("Location") != "" {
		t.Errorf("login with sessions failing kept the handler's redirect to %q", res.Header.Get("Location"))
	}
	// A page whose only session change is in passing is served.
	if res := c.get("/login"); res.StatusCode != http.StatusOK {
		t.Errorf("GET /login with sessions failing: %d, want 200", res.StatusCode)
	}

	undo()
	res = c.post("/login", url.Values{"username": {"ivy"}, "password": {"long enough"}, "csrf_token": {tok}})
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/market" {
		t.Errorf("login once sessions work: %d %q, want 302 to /market", res.StatusCode, res.Header.Get("Location"))
	}
	if strings.Contains(serverLog.String(), "superfluous") {
		t.Errorf("the server wrote two statuses for one response:\n%s", serverLog.String())
	}
}
