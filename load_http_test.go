//go:build load

package main

// The load benchmark: the real server (its own process, a real SQLite file, real sessions and
// CSRF) against a bare net/http handler writing the same bytes as the market page, both driven
// over loopback by 32 keep-alive connections. Run it with `task bench`, or:
//
//	go test -tags load -run '^TestLoad$' -count=1 -v .

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// loadServer builds the binary, seeds a fresh database with the given seed arguments (the
// demo catalogue always, and at least loadConns users), starts it and logs loadConns users in
// through the forms. It returns the server, its base URL, the users and how long seeding took.
func loadServer(t *testing.T, seedArgs ...string) (*serverProc, string, []loadUser, time.Duration) {
	return loadServerEnv(t, nil, seedArgs...)
}

// loadServerEnv is loadServer with extra environment for the server.
func loadServerEnv(t *testing.T, env []string, seedArgs ...string) (*serverProc, string, []loadUser, time.Duration) {
	t.Helper()
	return loadServerBin(t, buildBinary(t), env, seedArgs...)
}

// loadServerBin is loadServerEnv with the server binary bin.
func loadServerBin(t *testing.T, bin string, env []string, seedArgs ...string) (*serverProc, string, []loadUser, time.Duration) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "market.db")
	start := time.Now()
	if out, err := exec.Command(bin, append([]string{"-db", db, "seed"}, seedArgs...)...).CombinedOutput(); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	seeded := time.Since(start)
	addr := freeAddr(t)
	base := "http://" + addr
	cmd := exec.Command(bin, "-db", db, "-addr", addr)
	cmd.Env = append(os.Environ(), env...)
	app := startProc(t, cmd, base)
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
		serverRun(t, app, "market", "GET /market", get("/market", false), ok),
		serverRun(t, app, "", "GET /market?q=lamp (htmx search)", get("/market?q=lamp", true), ok),
		serverRun(t, app, "", "POST /market (htmx buy/sell)", trade, tradeOK),
	}
	appRSS := app.peakRSS()
	app.stop()

	// Another build's GET /market, measured in the same run against the same ceiling.
	var baseline []loadResult
	if bin := knobs.loadBase(); bin != "" {
		baseApp, baseBase, baseUsers, _ := loadServerBin(t, bin, nil, "-users", strconv.Itoa(loadConns), "-password", "password")
		baseline = append(baseline, serverRun(t, baseApp, "base", "GET /market, base build", func(w, n int) *http.Request {
			return baseUsers[w].get(baseBase, "/market", false)
		}, ok))
		baseApp.stop()
	}

	// The cost of the request log: the same page from a server that logs warnings only.
	quietApp, quietBase, quietUsers, _ := loadServerEnv(t, []string{"LOG_LEVEL=warn"}, "-users", strconv.Itoa(loadConns), "-password", "password")
	quiet := serverRun(t, quietApp, "", "GET /market, request log off", func(w, n int) *http.Request {
		return quietUsers[w].get(quietBase, "/market", false)
	}, ok)

	bodyFile := filepath.Join(dir, "page.html")
	os.WriteFile(bodyFile, page, 0o600)
	self, _ := os.Executable()
	ceilAddr := freeAddr(t)
	ceilCmd := exec.Command(self, "-test.run=^TestLoadCeilingServer$", "-ceiling="+ceilAddr+","+bodyFile)
	ceil := startProc(t, ceilCmd, "http://"+ceilAddr)
	ceilBase := "http://" + ceilAddr
	ceiling := serverRun(t, ceil, "ceiling", "ceiling: bare net/http, same bytes", func(w, n int) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, ceilBase+"/market", nil)
		return req
	}, ok)
	ceilRSS := ceil.peakRSS()

	var b strings.Builder
	w := bufio.NewWriter(&b)
	fmt.Fprintf(w, "\nload: %d connections, %s each, loopback, market page %d bytes\n", loadConns, loadDuration, len(page))
	fmt.Fprintf(w, "%-38s %9s %9s %9s %7s %12s\n", "scenario", "req/s", "p50", "p99", "errors", "server CPU")
	for _, r := range append(append(results, baseline...), quiet, ceiling) {
		fmt.Fprintf(w, "%-38s %9.0f %9s %9s %7d %9.0f µs\n", r.name, r.rps, r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), r.errors,
			float64(r.cpu)/float64(time.Microsecond))
	}
	fmt.Fprintf(w, "successful trades: %d (%.0f/s)\n", trades.Load(), float64(trades.Load())/loadDuration.Seconds())
	fmt.Fprintf(w, "peak RSS: app %.1f MiB, ceiling %.1f MiB\n", appRSS, ceilRSS)
	fmt.Fprintf(w, "ratio app/ceiling for GET /market: %.2f (request log to a file); the log costs %.0f %% of GET /market's throughput\n",
		results[0].rps/ceiling.rps, 100*(1-results[0].rps/quiet.rps))
	for _, r := range baseline {
		fmt.Fprintf(w, "ratio of the base build (%s): %.2f; this build does %.2f times its req/s\n", knobs.loadBase(), r.rps/ceiling.rps, results[0].rps/r.rps)
	}
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
