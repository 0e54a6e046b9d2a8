package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/crypto/bcrypt"

	"market/store"
	"market/store/storetest"
)

// buildBinary compiles the command into a temporary directory, as it would be deployed.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the binary with")
	}
	bin := filepath.Join(t.TempDir(), "market")
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer collects a process's log while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is the server binary, running.
type process struct {
	cmd  *exec.Cmd
	url  string
	log  *syncBuffer
	done chan struct{} // closed when it has exited; err is then its exit status
	err  error
}

var servingURL = regexp.MustCompile(`msg=serving url=(\S+)`)

// startServer runs the binary on db, on a free port, and waits until it serves.
func startServer(t *testing.T, bin, db string) *process {
	t.Helper()
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-db", db)
	cmd.Env = []string{"TZ=UTC"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, log: &syncBuffer{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.log, line)
			if m := servingURL.FindStringSubmatch(line); m != nil {
				urls <- m[1]
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	select {
	case p.url = <-urls:
		return p
	case <-p.done:
		t.Fatalf("the server exited before serving: %v\n%s", p.err, p.log)
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not start\n%s", p.log)
	}
	return nil
}

// runAdmin runs an admin subcommand of the binary and returns its output and exit status.
func runAdmin(t *testing.T, bin, db string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-db", db}, args...)...)
	cmd.Env = []string{"TZ=UTC"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// browser is one person with a cookie jar, following no redirects.
type browser struct {
	name  string
	hc    *http.Client
	token string
}

func newBrowser(name string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{name: name, hc: &http.Client{
		Jar:           jar,
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// loadToken reads the CSRF token from a page's form, as a browser submits it.
func (b *browser) loadToken(base, path string) error {
	res, err := b.hc.Get(base + path)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	doc, err := goquery.NewDocumentFromReader(res.Body)
	if err != nil {
		return err
	}
	tok, ok := doc.Find(`input[name="csrf_token"]`).Attr("value")
	if !ok || tok == "" {
		return fmt.Errorf("no csrf_token on %s", path)
	}
	b.token = tok
	return nil
}

func (b *browser) post(base, path string, form url.Values, headers map[string]string) (*http.Response, string, error) {
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := b.hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res, string(body), err
}

func (b *browser) register(t *testing.T, base string) {
	t.Helper()
	if err := b.loadToken(base, "/register"); err != nil {
		t.Fatal(err)
	}
	res, _, err := b.post(base, "/register", url.Values{"username": {b.name}, "email": {b.name + "@example.com"},
		"password": {"correct horse"}, "confirm_password": {"correct horse"}, "csrf_token": {b.token}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/market" {
		t.Fatalf("sign up %s: %d → %q", b.name, res.StatusCode, res.Header.Get("Location"))
	}
	// The session cookie of the real server: HttpOnly, SameSite=Lax, and an absolute 12 hours.
	for _, c := range res.Cookies() {
		if c.Name != "session" {
			continue
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.MaxAge < 43200-60 || c.MaxAge > 43201 {
			t.Errorf("session cookie HttpOnly=%v SameSite=%v Max-Age=%d, want HttpOnly, Lax and 12 hours",
				c.HttpOnly, c.SameSite, c.MaxAge)
		}
	}
}

// trader buys and sells only its own items, so that every answer it gets says exactly what
// the database must now hold for them.
type trader struct {
	*browser
	id    int64
	items []store.Item
	owned map[int64]bool // what the answers so far say this trader owns
	// pending is the trade in flight when the server died: it may or may not have happened.
	pending *store.Item
	acked   int
}

// trade runs until stop is closed or the server stops answering. Every answer must be the
// success message: the trader only buys what is on sale and sells what it owns.
func (tr *trader) trade(base string, rng *rand.Rand, stop <-chan struct{}) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		it := tr.items[rng.IntN(len(tr.items))]
		field, want := "purchase_item", "Purchased "+it.Name+"!"
		if tr.owned[it.ID] {
			field, want = "sold_item", "Sold "+it.Name+" back to the market!"
		}
		tr.pending = &it
		res, body, err := tr.post(base, "/market", url.Values{field: {strconv.FormatInt(it.ID, 10)}},
			map[string]string{"HX-Request": "true", "X-CSRF-Token": tr.token})
		if err != nil {
			return nil // the server is gone; the trade in flight is pending
		}
		tr.pending = nil
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "<p>"+want+"</p>") {
			return fmt.Errorf("%s %s %s: %d %.300s", tr.name, field, it.Name, res.StatusCode, body)
		}
		tr.owned[it.ID] = !tr.owned[it.ID]
		tr.acked++
	}
}

// Kill the server at random moments under a trading load and start it again on the same
// database: every trade that was answered as done is still done, and check passes each time.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the server")
	}
	const rounds = 8
	bin := buildBinary(t)
	db := storetest.URL(t) // SQLite, or PostgreSQL when MARKET_TEST_POSTGRES says so
	srv := startServer(t, bin, db)

	// Four traders, three cheap items each: together they can always afford all of them.
	st, err := store.Open(context.Background(), db, store.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	page, err := st.Market(context.Background(), store.MarketQuery{Sort: store.SortPrice})
	st.Close()
	if err != nil || len(page.Items) < 12 {
		t.Fatalf("market: %d items, %v", len(page.Items), err)
	}
	traders := make([]*trader, 4)
	for i := range traders {
		traders[i] = &trader{browser: newBrowser(fmt.Sprintf("trader%d", i)), owned: map[int64]bool{}}
		traders[i].register(t, srv.url)
		if err := traders[i].loadToken(srv.url, "/market"); err != nil {
			t.Fatal(err)
		}
		for j := i; j < 12; j += 4 {
			traders[i].items = append(traders[i].items, page.Items[j])
		}
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	totalAcked := 0
	for round := 1; round <= rounds; round++ {
		if round > 1 {
			srv = startServer(t, bin, db)
		}
		stop := make(chan struct{})
		errs := make(chan error, len(traders))
		var wg sync.WaitGroup
		for _, tr := range traders {
			tr.acked = 0
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- tr.trade(srv.url, rand.New(rand.NewPCG(rng.Uint64(), 1)), stop)
			}()
		}
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-srv.done
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("round %d: %v", round, err)
			}
		}

		out, err := runAdmin(t, bin, db, "check")
		if err != nil || !strings.HasPrefix(out, "ok:") {
			t.Fatalf("round %d: check after SIGKILL: %v\n%s", round, err, out)
		}

		// Every answered trade is in the database; the one in flight went one way or the other.
		st, err := store.Open(context.Background(), db, store.Options{BcryptCost: bcrypt.MinCost})
		if err != nil {
			t.Fatal(err)
		}
		acked, pending := 0, 0
		for _, tr := range traders {
			acked += tr.acked
			if tr.id == 0 {
				u, err := st.Authenticate(context.Background(), tr.name, "correct horse")
				if err != nil {
					t.Fatal(err)
				}
				tr.id = u.ID
			}
			var spent int64
			for _, it := range tr.items {
				got, err := st.Item(context.Background(), it.ID)
				if err != nil {
					t.Fatal(err)
				}
				owns := got.OwnerID == tr.id
				if owns != tr.owned[it.ID] {
					if tr.pending == nil || tr.pending.ID != it.ID {
						t.Errorf("round %d: %s was told it owns %s: %v, but the database says owner %d",
							round, tr.name, it.Name, tr.owned[it.ID], got.OwnerID)
					}
					tr.owned[it.ID] = owns // the trade in flight did happen
				}
				if got.OwnerID != 0 && got.OwnerID != tr.id {
					t.Errorf("round %d: %s belongs to user %d, who never traded it", round, it.Name, got.OwnerID)
				}
				if owns {
					spent += it.Price
				}
			}
			if tr.pending != nil {
				pending++
			}
			tr.pending = nil
			u, err := st.User(context.Background(), tr.id)
			if err != nil {
				t.Fatal(err)
			}
			if u.Budget != store.StartingBudget-spent {
				t.Errorf("round %d: %s has %d, but owns items worth %d of its %d", round, tr.name, u.Budget, spent, store.StartingBudget)
			}
		}
		st.Close()
		totalAcked += acked
		t.Logf("round %d: killed after %d answered trades (%d in flight); check: %s", round, acked, pending, strings.TrimSpace(out))
	}
	if totalAcked < rounds {
		t.Errorf("only %d trades were answered in %d rounds: the load did not run", totalAcked, rounds)
	}
}

// SIGTERM lets a request in flight finish, refuses new connections, and exits 0.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server")
	}
	bin := buildBinary(t)
	db := filepath.Join(t.TempDir(), "market.db")
	srv := startServer(t, bin, db)
	b := newBrowser("patience")
	if err := b.loadToken(srv.url, "/register"); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.url)
	var cookies []string
	for _, c := range b.hc.Jar.Cookies(u) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	body := url.Values{"username": {b.name}, "email": {b.name + "@example.com"}, "password": {"correct horse"},
		"confirm_password": {"correct horse"}, "csrf_token": {b.token}}.Encode()

	// A sign-up whose body arrives slowly: half of it before SIGTERM, the rest after.
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Expect: 100-continue makes the server say when a handler starts reading the body: then the
	// request is in flight for certain.
	fmt.Fprintf(conn, "POST /register HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nCookie: %s\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		u.Host, srv.url, strings.Join(cookies, "; "), len(body))
	answer := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := answer.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("want 100 Continue, got %q %v", line, err)
	}
	if line, err := answer.ReadString('\n'); err != nil || line != "\r\n" {
		t.Fatalf("want the end of 100 Continue, got %q %v", line, err)
	}
	io.WriteString(conn, body[:len(body)/2])

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(srv.log.String(), "shutting down") {
		if time.Now().After(deadline) {
			t.Fatalf("no sign of shutting down\n%s", srv.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Shutdown closes the listener first: once a new connection is refused, it is waiting for
	// the request in flight, and the server must still be running.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", u.Host, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("a new connection was accepted after SIGTERM")
		}
	}
	select {
	case <-srv.done:
		t.Fatalf("the server exited with a request in flight: %v", srv.err)
	default:
	}

	if _, err := io.WriteString(conn, body[len(body)/2:]); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(answer, nil)
	if err != nil {
		t.Fatalf("the request in flight got no answer: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/market" {
		t.Errorf("the request in flight: %d → %q, want the sign-up to complete", res.StatusCode, res.Header.Get("Location"))
	}

	select {
	case <-srv.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not exit after SIGTERM")
	}
	if srv.err != nil {
		t.Errorf("exit status: %v, want 0\n%s", srv.err, srv.log)
	}
	if !strings.Contains(srv.log.String(), "msg=stopped") {
		t.Errorf("no clean stop in the log:\n%s", srv.log)
	}
	if out, err := runAdmin(t, bin, db, "users"); err != nil || !strings.Contains(out, b.name) {
		t.Errorf("the sign-up finished during shutdown is not stored: %v\n%s", err, out)
	}
	if out, err := runAdmin(t, bin, db, "check"); err != nil {
		t.Errorf("check after shutdown: %v\n%s", err, out)
	}
}
