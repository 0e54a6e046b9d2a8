//go:build load

package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"market/store"
	"market/store/storetest"
)

// TestLoadEngines is the load benchmark's market page and trades (each user buying and
// selling back an item of their own) on SQLite, on PostgreSQL with one instance, the same with
// each flush 1 ms longer (commit_delay = 1000, what a networked disk costs), and on PostgreSQL
// with three instances behind a round-robin reverse proxy (in this process), in one run:
// `task bench-pg` (and `task bench`), which start a throwaway cluster.
func TestLoadEngines(t *testing.T) {
	storetest.RequirePostgres(t)
	bin := buildBinary(t)
	type setup struct {
		name        string
		db          string
		instances   int
		commitDelay int // the cluster's commit_delay, in microseconds
	}
	setups := []setup{
		{"SQLite, 1 instance", filepath.Join(t.TempDir(), "market.db"), 1, 0},
		{"PostgreSQL, 1 instance", storetest.NewPostgres(t), 1, 0},
		{"PostgreSQL, 1 ms flush", storetest.NewPostgres(t), 1, 1000},
		{"PostgreSQL, 3 instances", storetest.NewPostgres(t), 3, 0},
	}
	var b strings.Builder
	w := bufio.NewWriter(&b)
	fmt.Fprintf(w, "\nload: %d connections, %s each, loopback\n", loadConns, loadDuration)
	fmt.Fprintf(w, "%-26s %-30s %9s %9s %9s %7s\n", "engine", "scenario", "req/s", "p50", "p99", "errors")
	for _, s := range setups {
		if store.IsPostgres(s.db) {
			setCommitDelay(t, s.commitDelay)
		}
		// The demo's items and cheap generated ones: every user trades an item of their own.
		if out, err := exec.Command(bin, "-db", s.db, "seed", "-items", "10", "-users", strconv.Itoa(loadConns), "-password", "password").CombinedOutput(); err != nil {
			t.Fatalf("seed: %v\n%s", err, out)
		}
		items := affordable(t, s.db, loadConns)
		var backends []*url.URL
		var procs []*serverProc
		for range s.instances {
			addr := freeAddr(t)
			procs = append(procs, startProc(t, exec.Command(bin, "-db", s.db, "-addr", addr), "http://"+addr))
			u, _ := url.Parse("http://" + addr)
			backends = append(backends, u)
		}
		base := backends[0].String()
		if s.instances > 1 {
			var next atomic.Uint64
			proxy := httptest.NewServer(&httputil.ReverseProxy{
				Rewrite: func(r *httputil.ProxyRequest) {
					r.SetURL(backends[next.Add(1)%uint64(len(backends))])
					r.Out.Host = r.In.Host
				},
				Transport: &http.Transport{MaxIdleConnsPerHost: loadConns},
			})
			base = proxy.URL
			defer proxy.Close()
		}
		users := loadLogins(t, loadConns, func(int) string { return base })
		page := func(w, n int) *http.Request { return users[w].get(base, "/market", false) }
		var trades atomic.Int64
		trade := func(w, n int) *http.Request { return users[w].trade(base, items[w], n%2 == 1) }
		ok := func(status int, body []byte) bool { return status == http.StatusOK }
		tradeOK := func(status int, body []byte) bool {
			if strings.Contains(string(body), "Purchased") || strings.Contains(string(body), "Sold") {
				trades.Add(1)
			}
			return status == http.StatusOK
		}
		for _, r := range []loadResult{
			loadRun(t, "GET /market", page, ok),
			loadRun(t, "POST /market (htmx buy/sell)", trade, tradeOK),
		} {
			fmt.Fprintf(w, "%-26s %-30s %9.0f %9s %9s %7d\n", s.name, r.name, r.rps,
				r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond), r.errors)
			if r.errors > 0 {
				t.Errorf("%s, %s: %d errors", s.name, r.name, r.errors)
			}
		}
		fmt.Fprintf(w, "%-26s successful trades: %d (%.0f/s)\n", s.name, trades.Load(), float64(trades.Load())/loadDuration.Seconds())
		for _, p := range procs {
			p.stop()
		}
		if out, err := exec.Command(bin, "-db", s.db, "check").CombinedOutput(); err != nil {
			t.Errorf("%s: check after the load: %v\n%s", s.name, err, out)
		}
	}
	setCommitDelay(t, 0)
	w.Flush()
	t.Log(b.String())
}

// affordable is the ids of n items that a new account's budget can buy.
func affordable(t *testing.T, db string, n int) []int {
	t.Helper()
	st, err := store.Open(context.Background(), db, store.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.DB().Query(`SELECT id FROM items WHERE price <= ? ORDER BY id LIMIT ?`, store.StartingBudget, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if len(ids) < n {
		t.Fatalf("%d affordable items, want %d", len(ids), n)
	}
	return ids
}
