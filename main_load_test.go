package main

// The load benchmark: the real server (its own process, a real SQLite file, real sessions and
// CSRF) against a bare net/http handler writing the same bytes as the market page, both driven
// over loopback by 32 keep-alive connections. Run it with `task bench`, or:
//
//	MARKET_LOAD=1 go test -run '^TestLoad$' -count=1 -v .

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	loadConns    = 32
	loadDuration = 5 * time.Second
)

// loadProc is a server process under load.
type loadProc struct {
	cmd  *exec.Cmd
	base string
}

// peakRSS is the process's high-water mark of resident memory, in MiB (0 if unknown).
func (p *loadProc) peakRSS() float64 {
	mib, _ := procMiB(strconv.Itoa(p.cmd.Process.Pid), "VmHWM")
	return mib
}

// procMiB reads a memory field of /proc/PID/status (pid may be "self"), in MiB.
func procMiB(pid, field string) (float64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("no %s in /proc/%s/status", field, pid)
	}
	kb, _ := strconv.Atoi(string(m[1]))
	return float64(kb) / 1024, nil
}

func (p *loadProc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
	}
}

func loadFreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// loadBuild builds the server's binary for the test.
func loadBuild(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "market")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// loadStart runs cmd and waits until base answers /healthz.
func loadStart(t testing.TB, cmd *exec.Cmd, base string) *loadProc {
	t.Helper()
	// The request log is on and written to a file, as in production (a pipe the test drains,
	// or /dev/null, would measure something else); MARKET_LOAD_LOG=1 shows it instead.
	if os.Getenv("MARKET_LOAD_LOG") != "" {
		cmd.Stderr = os.Stderr
	} else if cmd.Stderr == nil {
		f, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		cmd.Stderr = f
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &loadProc{cmd: cmd, base: base}
	t.Cleanup(p.stop)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if res, err := http.Get(base + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
	}
	t.Fatalf("%s did not start", cmd.Path)
	return nil
}

// loadLogins logs the seeded users user00001 to user0000n in, 16 at a time (an attempt counts
// against the client's address until its password is checked, and all come from one), user i
// through base(i).
func loadLogins(t testing.TB, n int, base func(i int) string) []loadUser {
	t.Helper()
	users := make([]loadUser, n)
	var wg sync.WaitGroup
	slots := make(chan struct{}, 16)
	for i := range users {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			users[i] = loadLogin(t, base(i), fmt.Sprintf("user%05d", i+1), "password")
		})
	}
	wg.Wait()
	return users
}

// loadUser is a logged-in browser: its cookies and CSRF token.
type loadUser struct {
	cookies string
	token   string
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// loadLogin logs in through the real forms: GET /login for the token, POST /login.
func loadLogin(t testing.TB, base, username, password string) loadUser {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfField.FindSubmatch(body)
	if m == nil {
		t.Fatal("no csrf_token on /login")
	}
	jar := map[string]string{}
	keep := func(res *http.Response) {
		for _, c := range res.Cookies() {
			jar[c.Name] = c.Value
		}
	}
	keep(res)
	cookieHeader := func() string {
		var parts []string
		for k, v := range jar {
			parts = append(parts, k+"="+v)
		}
		slices.Sort(parts)
		return strings.Join(parts, "; ")
	}
	form := url.Values{"username": {username}, "password": {password}, "csrf_token": {string(m[1])}}
	// Logins at once past the server's hashing slots get 503: as a browser would, try again.
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
		req.Header.Set("Cookie", cookieHeader())
		if res, err = client.Do(req); err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable || attempt == 30 {
			break
		}
		time.Sleep(time.Second)
	}
	if res.StatusCode != http.StatusFound {
		t.Fatalf("login %s: %d", username, res.StatusCode)
	}
	keep(res)
	u := loadUser{cookies: cookieHeader()}
	// The htmx token comes from the page, as the browser's hx-headers carries it.
	req, _ := http.NewRequest(http.MethodGet, base+"/market", nil)
	req.Header.Set("Cookie", u.cookies)
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if m = csrfField.FindSubmatch(body); m == nil {
		t.Fatalf("no token on /market for %s (%d)", username, res.StatusCode)
	}
	u.token = string(m[1])
	return u
}

// get is a GET of path as u; an htmx request when htmx.
func (u loadUser) get(base, path string, htmx bool) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("Cookie", u.cookies)
	if htmx {
		req.Header.Set("HX-Request", "true")
	}
	return req
}

// trade is an htmx purchase of item as u, or a sale when sell.
func (u loadUser) trade(base string, item int, sell bool) *http.Request {
	field := "purchase_item"
	if sell {
		field = "sold_item"
	}
	form := url.Values{field: {strconv.Itoa(item)}}
	req, _ := http.NewRequest(http.MethodPost, base+"/market", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", u.cookies)
	req.Header.Set("Origin", base)
	req.Header.Set("HX-Request", "true")
	req.Header.Set("X-CSRF-Token", u.token)
	return req
}

// loadResult is what one scenario measured.
type loadResult struct {
	name     string
	requests int
	errors   int
	rps      float64
	p50, p99 time.Duration
}

// loadRun drives base with loadConns workers for loadDuration; next builds each request of a
// worker and check judges each response body.
func loadRun(t testing.TB, name string, next func(worker, n int) *http.Request, check func(status int, body []byte) bool) loadResult {
	t.Helper()
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		latencies []time.Duration
		errs      atomic.Int64
	)
	deadline := time.Now().Add(loadDuration)
	start := time.Now()
	for w := range loadConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{
				Transport:     &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true},
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			defer client.CloseIdleConnections()
			local := make([]time.Duration, 0, 4096)
			buf := make([]byte, 64<<10)
			for n := 0; time.Now().Before(deadline); n++ {
				req := next(w, n)
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				k, _ := io.ReadFull(res.Body, buf)
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				local = append(local, time.Since(t0))
				if !check(res.StatusCode, buf[:k]) {
					errs.Add(1)
				}
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(float64(len(latencies))*p))]
	}
	return loadResult{name: name, requests: len(latencies), errors: int(errs.Load()),
		rps: float64(len(latencies)) / elapsed.Seconds(), p50: pct(0.50), p99: pct(0.99)}
}

// TestLoadCeilingServer is not a test: the load test starts this test binary with it, as a
// separate process serving fixed bytes, so that its memory is measured apart from the client's.
func TestLoadCeilingServer(t *testing.T) {
	bodyFile, addr := os.Getenv("MARKET_CEILING_BODY"), os.Getenv("MARKET_CEILING_ADDR")
	if bodyFile == "" {
		t.Skip("started by TestLoad only")
	}
	body, err := os.ReadFile(bodyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})}
	go srv.ListenAndServe()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	<-ctx.Done()
}

// loadServer builds the binary, seeds a fresh database with the given seed arguments (the
// demo catalogue always, and at least loadConns users), starts it and logs loadConns users in
// through the forms. It returns the server, its base URL, the users and how long seeding took.
func loadServer(t *testing.T, seedArgs ...string) (*loadProc, string, []loadUser, time.Duration) {
	return loadServerEnv(t, nil, seedArgs...)
}

// loadServerEnv is loadServer with extra environment for the server.
func loadServerEnv(t *testing.T, env []string, seedArgs ...string) (*loadProc, string, []loadUser, time.Duration) {
	t.Helper()
	if os.Getenv("MARKET_LOAD") == "" {
		t.Skip("the load benchmark runs with MARKET_LOAD=1 (task bench)")
	}
	bin := loadBuild(t)
	db := filepath.Join(t.TempDir(), "market.db")
	start := time.Now()
	if out, err := exec.Command(bin, append([]string{"-db", db, "seed"}, seedArgs...)...).CombinedOutput(); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	seeded := time.Since(start)
	addr := loadFreeAddr(t)
	base := "http://" + addr
	cmd := exec.Command(bin, "-db", db, "-addr", addr)
	cmd.Env = append(os.Environ(), env...)
	app := loadStart(t, cmd, base)
	return app, base, loadLogins(t, loadConns, func(int) string { return base }), seeded
}

func TestLoad(t *testing.T) {
	app, base, users, _ := loadServer(t, "-users", strconv.Itoa(loadConns), "-password", "password")
	dir := t.TempDir()

	get := func(path string, htmx bool) func(w, n int) *http.Request {
		return func(w, n int) *http.Request { return users[w].get(base, path, htmx) }
	}
	ok := func(status int, body []byte) bool { return status == http.StatusOK }
	var trades atomic.Int64
	// Purchase/sale pairs: worker w trades item w (the demo catalogue has 26; some share).
	trade := func(w, n int) *http.Request { return users[w].trade(base, w%26+1, n%2 == 1) }
	tradeOK := func(status int, body []byte) bool {
		if strings.Contains(string(body), "Purchased") || strings.Contains(string(body), "Sold") {
			trades.Add(1)
		}
		return status == http.StatusOK
	}

	// The market page as a logged-in user sees it: the ceiling writes exactly these bytes.
	req := get("/market", false)(0, 0)
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()

	results := []loadResult{
		loadRun(t, "GET /market", get("/market", false), ok),
		loadRun(t, "GET /market?q=lamp (htmx search)", get("/market?q=lamp", true), ok),
		loadRun(t, "POST /market (htmx buy/sell)", trade, tradeOK),
	}
	appRSS := app.peakRSS()
	app.stop()

	// The cost of the request log: the same page from a server that logs warnings only.
	_, quietBase, quietUsers, _ := loadServerEnv(t, []string{"LOG_LEVEL=warn"}, "-users", strconv.Itoa(loadConns), "-password", "password")
	quiet := loadRun(t, "GET /market, request log off", func(w, n int) *http.Request {
		return quietUsers[w].get(quietBase, "/market", false)
	}, ok)

	bodyFile := filepath.Join(dir, "page.html")
	os.WriteFile(bodyFile, page, 0o600)
	self, _ := os.Executable()
	ceilAddr := loadFreeAddr(t)
	ceilCmd := exec.Command(self, "-test.run=^TestLoadCeilingServer$")
	ceilCmd.Env = append(os.Environ(), "MARKET_CEILING_BODY="+bodyFile, "MARKET_CEILING_ADDR="+ceilAddr)
	ceil := loadStart(t, ceilCmd, "http://"+ceilAddr)
	ceilBase := "http://" + ceilAddr
	ceiling := loadRun(t, "ceiling: bare net/http, same bytes", func(w, n int) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, ceilBase+"/market", nil)
		return req
	}, ok)
	ceilRSS := ceil.peakRSS()

	var b strings.Builder
	w := bufio.NewWriter(&b)
	fmt.Fprintf(w, "\nload: %d connections, %s each, loopback, market page %d bytes\n", loadConns, loadDuration, len(page))
	fmt.Fprintf(w, "%-38s %9s %9s %9s %7s\n", "scenario", "req/s", "p50", "p99", "errors")
	for _, r := range append(results, quiet, ceiling) {
		fmt.Fprintf(w, "%-38s %9.0f %9s %9s %7d\n", r.name, r.rps, r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), r.errors)
	}
	fmt.Fprintf(w, "successful trades: %d (%.0f/s)\n", trades.Load(), float64(trades.Load())/loadDuration.Seconds())
	fmt.Fprintf(w, "peak RSS: app %.1f MiB, ceiling %.1f MiB\n", appRSS, ceilRSS)
	fmt.Fprintf(w, "ratio app/ceiling for GET /market: %.2f (request log to a file); the log costs %.0f %% of GET /market's throughput\n",
		results[0].rps/ceiling.rps, 100*(1-results[0].rps/quiet.rps))
	w.Flush()
	t.Log(b.String())
	for _, r := range results {
		if r.errors > 0 {
			t.Errorf("%s: %d errors", r.name, r.errors)
		}
	}
}

// TestLoadScale seeds 100,000 items and 10,000 users with the seed command, then measures the
// first page, a search and the last page of the market over HTTP.
func TestLoadScale(t *testing.T) {
	_, base, users, seeded := loadServer(t, "-items", "100000", "-users", "10000", "-password", "password")
	if seeded > 10*time.Second {
		t.Errorf("seeding 100,000 items and 10,000 users took %s, want under 10 s", seeded)
	}
	ok := func(status int, body []byte) bool { return status == http.StatusOK }
	get := func(path string) func(w, n int) *http.Request {
		return func(w, n int) *http.Request { return users[w].get(base, path, false) }
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nscale: 100,000 items, 10,000 users, seeded in %s\n", seeded.Round(time.Millisecond))
	fmt.Fprintf(&b, "%-38s %9s %9s %9s %7s\n", "scenario", "req/s", "p50", "p99", "errors")
	for _, path := range []string{"/market", "/market?q=vintage+clock", "/market?page=2001"} {
		r := loadRun(t, "GET "+path, get(path), ok)
		fmt.Fprintf(&b, "%-38s %9.0f %9s %9s %7d\n", r.name, r.rps, r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), r.errors)
		if r.errors > 0 {
			t.Errorf("%s: %d errors", r.name, r.errors)
		}
	}
	t.Log(b.String())
}
