//go:build load

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"market/store/storetest"
)

const (
	liveUsers     = 250 // each with liveTabs streams open
	liveTabs      = 4
	liveTrades    = 100
	liveTradeStep = 50 * time.Millisecond
)

// TestLoadLiveStreams is the live updates benchmark: 1,000 streams (250 users with 4 tabs
// each) open on the real server, then 100 trades 50 ms apart. It reports what the streams cost
// the servers (resident memory, heap and goroutines, read from each instance's /metrics) and
// the delay from each trade to the last stream's receipt of its event. It runs on SQLite and,
// in the same run, on PostgreSQL with one and with three instances, the streams and the trades
// spread over the instances in turn as a round-robin balancer would: `task bench-live`.
func TestLoadLiveStreams(t *testing.T) {
	bin := buildBinary(t)
	type setup struct {
		name      string
		db        string
		instances int
	}
	setups := []setup{{"SQLite", filepath.Join(t.TempDir(), "market.db"), 1}}
	if storetest.Postgres() {
		setups = append(setups,
			setup{"PostgreSQL", storetest.NewPostgres(t), 1},
			setup{"PostgreSQL", storetest.NewPostgres(t), 3})
	} else {
		t.Log("PostgreSQL not measured: no cluster given (task bench-live starts one)")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d streams (%d users x %d tabs), %d trades %s apart, loopback\n",
		liveUsers*liveTabs, liveUsers, liveTabs, liveTrades, liveTradeStep)
	fmt.Fprintf(&b, "%-11s %9s %15s %15s %12s %11s %9s %9s %9s\n", "engine", "instances",
		"RSS/stream", "after trades", "heap/stream", "goroutines", "p50", "p99", "max")
	for _, s := range setups {
		r := liveLoad(t, bin, s.db, s.instances)
		fmt.Fprintf(&b, "%-11s %9d %11.1f KiB %11.1f KiB %8.1f KiB %11.1f %9s %9s %9s\n", s.name, s.instances,
			r.rss/1024, r.rssAfter/1024, r.heap/1024, r.goroutines, r.p50, r.p99, r.max)
		if out, err := exec.Command(bin, "-db", s.db, "check").CombinedOutput(); err != nil {
			t.Errorf("%s: check after the trades: %v\n%s", s.name, err, out)
		}
	}
	t.Log(b.String())
}

// liveResult is what one setup measured: the cost per stream, summed over the instances, and
// the delay from a trade to the last stream.
type liveResult struct {
	rss, rssAfter, heap float64 // bytes per stream
	goroutines          float64
	p50, p99, max       time.Duration
}

// liveInstance is one server process and the address of its metrics.
type liveInstance struct {
	proc    *serverProc
	metrics string
}

// gauges reads the instance's /metrics: the process's resident memory, heap in use,
// goroutines and open streams.
func (in liveInstance) gauges(t *testing.T) map[string]float64 {
	t.Helper()
	res, err := http.Get(in.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	g := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		switch name {
		case "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes", "go_goroutines", "market_live_streams":
			if ok {
				g[name], _ = strconv.ParseFloat(value, 64)
			}
		}
	}
	return g
}

// sum adds one gauge over the instances.
func sum(t *testing.T, instances []liveInstance, gauge string) float64 {
	total := 0.0
	for _, in := range instances {
		total += in.gauges(t)[gauge]
	}
	return total
}

// settle waits until the servers are quiet: their summed resident memory has not moved by
// more than 1 % for 4.5 s, longer than two periods of releaseWhenQuiet (which gives a burst's
// memory back after 2 s without a collection). It reads /metrics every 500 ms, which
// allocates far less than the release's slack. On a machine too busy for that within 30 s, it
// says so and the figures are read as they are.
func settle(t *testing.T, instances []liveInstance, when string) {
	t.Helper()
	var ref float64
	var since time.Time
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		rss := sum(t, instances, "process_resident_memory_bytes")
		if since.IsZero() || math.Abs(rss-ref) > ref/100 {
			ref, since = rss, time.Now()
			continue
		}
		if time.Since(since) >= 4500*time.Millisecond {
			return
		}
	}
	t.Logf("%s: the servers' memory still moved by more than 1 %% within 4.5 s after 30 s; read as it is", when)
}

var liveSince = regexp.MustCompile(`/market/events\?since=(\d+)`)

// liveLoad runs the benchmark on one database with n instances.
func liveLoad(t *testing.T, bin, db string, n int) liveResult {
	t.Helper()
	if out, err := exec.Command(bin, "-db", db, "seed", "-users", strconv.Itoa(liveUsers+1), "-password", "password").CombinedOutput(); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	var instances []liveInstance
	for range n {
		addr, maddr := freeAddr(t), freeAddr(t)
		// Behind a trusted proxy, as the users' addresses below say: the streams of one
		// address are capped.
		p := startProc(t, exec.Command(bin, "-db", db, "-addr", addr, "-metrics-addr", maddr, "-trust-proxy"), "http://"+addr)
		instances = append(instances, liveInstance{p, "http://" + maddr + "/metrics"})
		defer p.stop()
	}
	base := func(i int) string { return instances[i%n].proc.base }

	users := loadLogins(t, liveUsers, base)
	trader := loadLogin(t, base(0), fmt.Sprintf("user%05d", liveUsers+1), "password")
	v0 := liveVersion(t, base(0), trader)

	settle(t, instances, "before the streams")
	rss0, heap0, g0 := sum(t, instances, "process_resident_memory_bytes"),
		sum(t, instances, "go_memstats_heap_inuse_bytes"), sum(t, instances, "go_goroutines")

	ctx, cancel := context.WithCancel(context.Background())
	streams := liveUsers * liveTabs
	got := &receipts{of: make([][]receipt, streams)}
	var readers sync.WaitGroup
	defer readers.Wait()
	defer cancel()
	openLiveStreams(t, ctx, &readers, users, base, v0, got)
	if open := sum(t, instances, "market_live_streams"); open != float64(streams) {
		t.Fatalf("%v streams open on the servers, want %d", open, streams)
	}
	settle(t, instances, "with the streams open")
	rss1, heap1, g1 := sum(t, instances, "process_resident_memory_bytes"),
		sum(t, instances, "go_memstats_heap_inuse_bytes"), sum(t, instances, "go_goroutines")

	// The trades: buy and sell back one item, each through the next instance, then read the
	// version it made. A trade's clock starts when its request is sent (its commit is a little
	// later, so the delays below are upper bounds).
	sent, versions := liveTradeRun(t, trader, base)
	// The last events delivered (a stream that misses one is counted below), and what they
	// allocated collected.
	eventually(10*time.Second, func() bool { return got.allHave(versions[liveTrades-1]) })
	settle(t, instances, "after the trades")
	rss2 := sum(t, instances, "process_resident_memory_bytes")

	delays, missing := got.delays(sent, versions)
	if missing > 0 {
		t.Errorf("%d of %d (trade, stream) pairs never arrived", missing, liveTrades*streams)
	}
	slices.Sort(delays)
	q := func(f float64) time.Duration {
		return delays[int(f*float64(len(delays)-1))].Round(100 * time.Microsecond)
	}
	return liveResult{
		rss: (rss1 - rss0) / float64(streams), rssAfter: (rss2 - rss0) / float64(streams),
		heap: (heap1 - heap0) / float64(streams), goroutines: (g1 - g0) / float64(streams),
		p50: q(0.5), p99: q(0.99), max: q(1),
	}
}

// liveTradeRun buys and sells back one item liveTrades times as trader, each through the next
// instance, and returns when each was sent and the version each made.
func liveTradeRun(t *testing.T, trader loadUser, base func(int) string) (sent []time.Time, versions []int64) {
	t.Helper()
	sent = make([]time.Time, liveTrades)
	versions = make([]int64, liveTrades)
	for i := range liveTrades {
		sell, want := i%2 == 1, "Purchased"
		if sell {
			want = "Sold"
		}
		sent[i] = time.Now()
		if body := liveDo(t, trader.trade(base(i), 1, sell)); !bytes.Contains(body, []byte(want)) {
			t.Fatalf("trade %d: no %q in %.300s", i, want, body)
		}
		versions[i] = liveVersion(t, base(i), trader)
		time.Sleep(liveTradeStep) // the pace of the trades, not a wait for anything
	}
	return sent, versions
}

// receipt is an event's arrival on a stream: its id, the market version, and when.
type receipt struct {
	version int64
	at      time.Time
}

// receipts are the events each stream received, as they arrive.
type receipts struct {
	mu sync.Mutex
	of [][]receipt // by stream
}

func (r *receipts) add(stream int, version int64) {
	at := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.of[stream] = append(r.of[stream], receipt{version, at})
}

// allHave reports whether every stream has received version v.
func (r *receipts) allHave(v int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range r.of {
		if len(rs) == 0 || rs[len(rs)-1].version < v {
			return false
		}
	}
	return true
}

// delays are, for each trade sent at sent[i] that made versions[i], the time until the last
// stream received it, and how many (trade, stream) pairs never arrived.
func (r *receipts) delays(sent []time.Time, versions []int64) (delays []time.Duration, missing int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, at := range sent {
		var last time.Duration
		for _, rs := range r.of {
			j := slices.IndexFunc(rs, func(x receipt) bool { return x.version >= versions[i] })
			if j < 0 {
				missing++
				continue
			}
			last = max(last, rs[j].at.Sub(at))
		}
		delays = append(delays, last)
	}
	return delays, missing
}

// openLiveStreams opens liveTabs streams for each user from version v0, each through the next
// instance and from the user's own address, and reads each into got until ctx ends.
func openLiveStreams(t *testing.T, ctx context.Context, readers *sync.WaitGroup, users []loadUser, base func(int) string, v0 int64, got *receipts) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for i := range len(users) * liveTabs {
		u := users[i/liveTabs]
		req := u.get(base(i), "/market/events?since="+strconv.FormatInt(v0, 10), false).WithContext(ctx)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.3.%d.%d", i/liveTabs/250, i/liveTabs%250+1)) // one address a user
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		if res.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: status %d", i, res.StatusCode)
		}
		readers.Go(func() { readIDs(res, func(v int64) { got.add(i, v) }) })
	}
}

// liveVersion is the market version the trader's market page was rendered at (its stream's
// since=).
func liveVersion(t *testing.T, base string, u loadUser) int64 {
	t.Helper()
	m := liveSince.FindSubmatch(liveDo(t, u.get(base, "/market", false)))
	if m == nil {
		t.Fatal("no stream address on /market")
	}
	v, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return v
}

// liveDo sends req and returns the answer's body.
func liveDo(t *testing.T, req *http.Request) []byte {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return body
}
