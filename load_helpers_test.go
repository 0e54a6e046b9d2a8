//go:build load

// Helpers of the load runs (the load tag): the knobs, logging the seeded users in, driving a
// server with many connections, and reading what a process costs.

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"market/handlers/webtest"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
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

// The knobs of the load runs: environment variables, read here only, and listed with their
// defaults in docs/PERFORMANCE.md. Everything else a load test does is in its code.
var knobs = struct {
	soakDuration  func() time.Duration
	abuseDuration func() time.Duration
	abuseFloor    func() time.Duration
	abuseItems    func() int
	streams       func(t *testing.T) []int
	streamsBase   func() string
	streamsCPU    func() string
	loadBase      func() string
	loadPerf      func() string
}{
	soakDuration:  func() time.Duration { return knobDuration("MARKET_SOAK_DURATION", 3*time.Minute) },
	abuseDuration: func() time.Duration { return time.Duration(knobInt("MARKET_ABUSE_SECONDS", 20)) * time.Second },
	abuseFloor:    func() time.Duration { return time.Duration(knobInt("MARKET_ABUSE_FLOOR_MS", 25)) * time.Millisecond },
	abuseItems:    func() int { return knobInt("MARKET_ABUSE_ITEMS", 0) },
	streams:       knobStreams,
	streamsBase:   func() string { return os.Getenv("MARKET_STREAMS_BASE") },
	streamsCPU:    func() string { return os.Getenv("MARKET_STREAMS_CPU") },
	loadBase:      func() string { return os.Getenv("MARKET_LOAD_BASE") },
	loadPerf:      func() string { return os.Getenv("MARKET_LOAD_PERF") },
}

// knobStreams is the numbers of live streams TestLoadStreamsAtScale opens, one run each.
func knobStreams(t *testing.T) []int {
	s := os.Getenv("MARKET_STREAMS")
	if s == "" {
		return []int{1000, 5000, 10000}
	}
	var sizes []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < scaleTabs {
			t.Fatalf("MARKET_STREAMS: %q is not a number of streams", f)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// knobInt is the whole number the variable holds, or def when it holds none (or a negative one).
func knobInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n >= 0 {
		return n
	}
	return def
}

// knobDuration is the duration the variable holds (such as 90s or 5m), or def.
func knobDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

// perfRecord samples p's stacks with perf into $MARKET_LOAD_PERF/name.perf.data until the
// returned function is called; it does nothing when the knob is unset.
func perfRecord(t testing.TB, p *serverProc, name string) (stop func()) {
	t.Helper()
	dir := knobs.loadPerf()
	if dir == "" {
		return func() {}
	}
	out := filepath.Join(dir, name+".perf.data")
	cmd := exec.Command("perf", "record", "-F", "999", "-g", "-o", out, "-p", strconv.Itoa(p.cmd.Process.Pid))
	if err := cmd.Start(); err != nil {
		t.Fatalf("perf: %v", err)
	}
	return func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		t.Logf("perf report -i %s --no-children", out)
	}
}

// peakRSS is the process's high-water mark of resident memory, in MiB (0 if unknown).
func (p *serverProc) peakRSS() float64 {
	mib, _ := procMiB(strconv.Itoa(p.cmd.Process.Pid), "VmHWM")
	return mib
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

// loadLogin logs in through the real forms (GET /login for the token, POST /login) and reads
// the htmx token from the market page, as the browser's hx-headers carries it.
func loadLogin(t testing.TB, base, username, password string) loadUser {
	t.Helper()
	c := webtest.New(base, username)
	var res webtest.Answer
	// Logins at once past the server's hashing slots get 503: as a browser would, try again
	// after the Retry-After the answer names, 30 times at most.
	for attempt := 0; ; attempt++ {
		var err error
		if res, err = c.LogIn(password); err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusServiceUnavailable || attempt == 30 {
			break
		}
		wait, _ := strconv.Atoi(res.Header.Get("Retry-After"))
		time.Sleep(time.Duration(max(wait, 1)) * time.Second) // what the server asked for
	}
	if res.StatusCode != http.StatusFound {
		t.Fatalf("login %s: %d", username, res.StatusCode)
	}
	if err := c.LoadToken("/market"); err != nil {
		t.Fatalf("%s: %v", username, err)
	}
	return loadUser{cookies: c.CookieHeader(), token: c.Token}
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
	cpu      time.Duration // the server's CPU time per request (serverRun)
}

// serverRun is loadRun against the server p, with p's CPU time per request; when perfName is
// not empty, p's stacks are sampled meanwhile (perfRecord).
func serverRun(t *testing.T, p *serverProc, perfName, name string, next func(worker, n int) *http.Request, check func(status int, body []byte) bool) loadResult {
	t.Helper()
	stop := func() {}
	if perfName != "" {
		stop = perfRecord(t, p, perfName)
	}
	before := procCPU(t, p.cmd.Process.Pid)
	r := loadRun(t, name, next, check)
	if r.requests > 0 {
		r.cpu = (procCPU(t, p.cmd.Process.Pid) - before) / time.Duration(r.requests)
	}
	stop()
	return r
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

// ceilingFlag is set by TestLoad only, when it starts this test binary again as the ceiling:
// the address to serve and the file of the bytes to serve.
var ceilingFlag = flag.String("ceiling", "", "internal to TestLoad: ADDR,FILE to serve as the ceiling")

// TestLoadCeilingServer is not a test: the load test starts this test binary with it, as a
// separate process serving fixed bytes, so that its memory is measured apart from the client's.
func TestLoadCeilingServer(t *testing.T) {
	addr, bodyFile, ok := strings.Cut(*ceilingFlag, ",")
	if !ok {
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
