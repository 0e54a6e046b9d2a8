//go:build load

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"market/handlers"
	"market/store"
)

const (
	scaleTabs       = 4 // streams a user, the per-user cap
	scaleTrades     = 20
	scaleStep       = 250 * time.Millisecond
	scaleIdle       = 30 * time.Second      // two ping intervals: every stream pings twice
	scaleReaders    = 4                     // clients reading GET /market while the trades go out,
	scaleGetEvery   = 50 * time.Millisecond // each this often
	scaleOpenAtOnce = 64
)

// TestLoadStreamsAtScale measures what open market pages cost one instance on SQLite, at
// 1,000, 5,000 and 10,000 live streams (MARKET_STREAMS="1000,5000,10000"): the resident memory
// and goroutines they add, the CPU the idle streams use over two ping intervals, the delay from
// each of 20 trades to every stream's event (first, p50, p99, last over all pairs), and the
// p99 of GET /market beside the trades. Each user has 4 tabs from an address of their own (the
// client binds 127.1.x.y), so no per-address cap is reached. MARKET_STREAMS_BASE names another
// build of the server, measured in the same run against the same database, before this one:
//
//	git worktree add /tmp/base <commit> && (cd /tmp/base && go build -o /tmp/market-base .)
//	MARKET_STREAMS_BASE=/tmp/market-base go test -tags load -run TestLoadStreamsAtScale -timeout 30m .
func TestLoadStreamsAtScale(t *testing.T) {
	sizes := knobs.streams(t)
	type build struct{ name, bin string }
	builds := []build{{"this build", buildBinary(t)}}
	if base := knobs.streamsBase(); base != "" {
		builds = append([]build{{"base", base}}, builds...)
	}
	db := filepath.Join(t.TempDir(), "market.db")
	users, trader := scaleUsers(t, builds[len(builds)-1].bin, db, slices.Max(sizes)/scaleTabs)
	var b strings.Builder
	fmt.Fprintf(&b, "\nSQLite, %d trades %s apart, %d tabs a user, loopback, %d cores\n", scaleTrades, scaleStep, scaleTabs, runtime.NumCPU())
	fmt.Fprintf(&b, "%-10s %7s %7s %10s %9s %6s %8s %9s %9s %9s %9s %9s %9s %s\n", "build", "streams", "RSS MiB",
		"KiB/stream", "heap KiB", "gor/st", "idle CPU", "first", "p50", "p99", "last", "GET p99", "CPU/event", "load avg")
	for _, n := range sizes {
		for _, bd := range builds {
			r := scaleRun(t, bd.bin, db, users[:n/scaleTabs], trader)
			ms := func(ds []time.Duration, q float64) time.Duration {
				return quantile(ds, q).Round(100 * time.Microsecond)
			}
			fmt.Fprintf(&b, "%-10s %7d %7.0f %10.1f %9.1f %6.2f %7.1f%% %9s %9s %9s %9s %9s %9s %s\n", bd.name, n,
				r.rss/(1<<20), r.perStream/1024, r.heapPerStream/1024, r.goroutines, 100*r.idleCPU,
				ms(r.delays, 0), ms(r.delays, 0.5), ms(r.delays, 0.99), ms(r.delays, 1), ms(r.gets, 0.99),
				r.eventCPU.Round(100*time.Nanosecond), r.load)
			t.Log(strings.TrimSpace(b.String()[strings.LastIndexByte(strings.TrimSuffix(b.String(), "\n"), '\n')+1:]))
		}
	}
	t.Log(b.String())
}

// scaleUsers seeds db with n users and a trader, and gives each user a session, written as a
// login writes it, straight into the database that every server of the run reads (a login
// through the form hashes a password: thousands of them take most of an hour on a busy
// machine). The trader logs in through the form, for the CSRF token its trades need.
func scaleUsers(t *testing.T, bin, db string, n int) ([]loadUser, loadUser) {
	if out, err := exec.Command(bin, "-db", db, "seed", "-users", strconv.Itoa(n+1), "-password", "password").CombinedOutput(); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sm := handlers.NewSessionManager(st.Sessions(), false)
	all, err := st.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]store.User{}
	for _, u := range all {
		byName[u.Username] = u
	}
	users := make([]loadUser, n)
	for i := range users {
		u := byName[fmt.Sprintf("user%05d", i+1)]
		sctx, err := sm.Load(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		sm.Put(sctx, "user_id", u.ID) // as startSession does (handlers/auth.go)
		sm.Put(sctx, "seen", time.Now().Unix())
		sm.Put(sctx, "gen", u.SessionGen)
		token, _, err := sm.Commit(sctx)
		if err != nil {
			t.Fatal(err)
		}
		users[i] = loadUser{cookies: "session=" + token}
	}
	addr := freeAddr(t)
	p := startProc(t, exec.Command(bin, "-db", db, "-addr", addr), "http://"+addr)
	defer p.stop()
	return users, loadLogin(t, p.base, fmt.Sprintf("user%05d", n+1), "password")
}

// scaleResult is one run's measures.
type scaleResult struct {
	rss, perStream, heapPerStream, goroutines float64 // after the streams opened; per stream
	idleCPU                                   float64 // cores, while the streams idle
	eventCPU                                  time.Duration
	delays, gets                              []time.Duration
	load                                      string
}

// scaleRun starts bin on db, opens 4 streams for each user, and measures.
func scaleRun(t *testing.T, bin, db string, users []loadUser, trader loadUser) scaleResult {
	addr, maddr := freeAddr(t), freeAddr(t)
	p := startProc(t, exec.Command(bin, "-db", db, "-addr", addr, "-metrics-addr", maddr,
		"-max-streams", strconv.Itoa(2*len(users)*scaleTabs)), "http://"+addr)
	defer p.stop()
	in := liveInstance{p, "http://" + maddr + "/metrics"}
	settle(t, []liveInstance{in}, "before the streams") // memory still, past releaseWhenQuiet
	g0, rss0 := in.gauges(t), procRSS(t, p)
	v0 := liveVersion(t, p.base, trader)

	streams := scaleOpen(t, addr, users, v0)
	defer streams.close()
	settle(t, []liveInstance{in}, "with the streams open")
	g1, rss1 := in.gauges(t), procRSS(t, p)
	n := float64(len(streams.conns))
	r := scaleResult{rss: rss1, perStream: (rss1 - rss0) / n,
		heapPerStream: (g1["go_memstats_heap_inuse_bytes"] - g0["go_memstats_heap_inuse_bytes"]) / n,
		goroutines:    (g1["go_goroutines"] - g0["go_goroutines"]) / n}
	cpu0 := procCPU(t, p.cmd.Process.Pid)
	time.Sleep(scaleIdle)
	r.idleCPU = float64(procCPU(t, p.cmd.Process.Pid)-cpu0) / float64(scaleIdle)
	r.load = loadAvg()

	stop := make(chan struct{})
	var readers sync.WaitGroup
	gets := make([][]time.Duration, scaleReaders)
	for i := range scaleReaders {
		readers.Go(func() { gets[i] = timeGets(t, p.base, users[i], stop) })
	}
	profiled := profileCPU(t, "http://"+maddr, fmt.Sprintf("%s-%d", filepath.Base(bin), len(streams.conns)))
	cpu1 := procCPU(t, p.cmd.Process.Pid)
	sent, versions := scaleTrade(t, p.base, trader)
	<-profiled
	close(stop)
	readers.Wait()
	streams.await(versions[len(versions)-1], 30*time.Second) // the last events delivered
	r.gets = slices.Concat(gets...)
	r.delays = streams.delays(t, sent, versions)
	// The server's CPU while the trades went out, per event delivered (the trades and the
	// GETs beside them included): close to what an event costs it at this many streams,
	// however busy the machine.
	r.eventCPU = (procCPU(t, p.cmd.Process.Pid) - cpu1) / time.Duration(len(r.delays))
	return r
}

// profileCPU writes the server's CPU profile while the trades go out to the directory
// MARKET_STREAMS_CPU names, if any, as name.pprof; the channel is closed once it is written.
func profileCPU(t *testing.T, metrics, name string) <-chan struct{} {
	done := make(chan struct{})
	dir := knobs.streamsCPU()
	if dir == "" {
		close(done)
		return done
	}
	seconds := int((scaleTrades*scaleStep + time.Second) / time.Second)
	go func() {
		defer close(done)
		res, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", metrics, seconds))
		if err != nil {
			t.Error(err)
			return
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK { // a build that serves no profiles
			t.Logf("%s: no CPU profile: %s", name, res.Status)
			return
		}
		b, err := io.ReadAll(res.Body)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name+".pprof"), b, 0o644)
		}
		if err != nil {
			t.Error(err)
		}
	}()
	return done
}

// scaleTrade buys and sells back item 1, scaleTrades times, and reads the version each made.
func scaleTrade(t *testing.T, base string, trader loadUser) (sent []time.Time, versions []int64) {
	for i := range scaleTrades {
		sell, want := i%2 == 1, "Purchased"
		if sell {
			want = "Sold"
		}
		sent = append(sent, time.Now())
		if body := liveDo(t, trader.trade(base, 1, sell)); !bytes.Contains(body, []byte(want)) {
			t.Fatalf("trade %d: no %q in %.300s", i, want, body)
		}
		versions = append(versions, liveVersion(t, base, trader))
		time.Sleep(scaleStep)
	}
	return sent, versions
}

// timeGets times GET /market as u, one every scaleGetEvery, until stop: a steady reader beside
// the trades, not one that takes a core of its own from the streams.
func timeGets(t *testing.T, base string, u loadUser, stop <-chan struct{}) []time.Duration {
	var ds []time.Duration
	tick := time.NewTicker(scaleGetEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return ds
		case <-tick.C:
		}
		start := time.Now()
		res, err := http.DefaultClient.Do(u.get(base, "/market", false))
		if err != nil {
			t.Error(err)
			return ds
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET /market: %d", res.StatusCode)
			return ds
		}
		ds = append(ds, time.Since(start))
	}
}

// scaleStreams are the open streams and what each received: the id of each event, and when.
type scaleStreams struct {
	conns   []net.Conn
	mu      sync.Mutex
	got     [][]receiptAt
	readers sync.WaitGroup
}

type receiptAt struct {
	version int64
	at      time.Time
}

// scaleOpen opens scaleTabs streams for each user, a few at a time, each user's from an address
// of their own, by hand over TCP (a goroutine and a small buffer each: the client is on the
// same machine).
func scaleOpen(t *testing.T, addr string, users []loadUser, since int64) *scaleStreams {
	ss := &scaleStreams{conns: make([]net.Conn, len(users)*scaleTabs), got: make([][]receiptAt, len(users)*scaleTabs)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	slots := make(chan struct{}, scaleOpenAtOnce)
	var opening sync.WaitGroup
	var failed sync.Once
	var err error
	for i := range ss.conns {
		u := users[i/scaleTabs]
		from := net.IPv4(127, 1, byte(i/scaleTabs/250), byte(i/scaleTabs%250+1))
		opening.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			c, r, e := openRaw(ctx, addr, from, u, since)
			if e != nil {
				failed.Do(func() { err = fmt.Errorf("stream %d: %w", i, e) })
				return
			}
			ss.conns[i] = c
			ss.readers.Go(func() { ss.read(i, r) })
		})
	}
	opening.Wait()
	if err != nil {
		ss.close()
		t.Fatal(err)
	}
	return ss
}

// openRaw sends a stream's request from the address from, and reads its answer's head.
func openRaw(ctx context.Context, addr string, from net.IP, u loadUser, since int64) (net.Conn, *bufio.Reader, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(c, "GET /market/events?since=%d HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\nAccept: text/event-stream\r\n\r\n",
		since, addr, u.cookies)
	r := bufio.NewReaderSize(c, 512)
	status, err := r.ReadString('\n')
	if err == nil && !strings.HasPrefix(status, "HTTP/1.1 200") {
		err = fmt.Errorf("answer %q", strings.TrimSpace(status))
	}
	for err == nil { // the headers
		var line string
		if line, err = r.ReadString('\n'); strings.TrimSpace(line) == "" {
			break
		}
	}
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, r, nil
}

// read records the id of each event of stream i until it ends. The ids are on lines of their
// own whether or not the answer is chunked.
func (ss *scaleStreams) read(i int, r *bufio.Reader) {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
		if id, ok := bytes.CutPrefix(line, []byte("id: ")); ok {
			v, _ := strconv.ParseInt(string(bytes.TrimSpace(id)), 10, 64)
			at := time.Now()
			ss.mu.Lock()
			ss.got[i] = append(ss.got[i], receiptAt{v, at})
			ss.mu.Unlock()
		}
	}
}

// delays is, for every trade and stream, the time from the trade's request to the stream's
// first event at or past its version; a stream that never got it fails the test.
func (ss *scaleStreams) delays(t *testing.T, sent []time.Time, versions []int64) []time.Duration {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var ds []time.Duration
	missing := 0
	for i, at := range sent {
		for _, rs := range ss.got {
			j := slices.IndexFunc(rs, func(r receiptAt) bool { return r.version >= versions[i] })
			if j < 0 {
				missing++
				continue
			}
			ds = append(ds, rs[j].at.Sub(at))
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d (trade, stream) pairs never arrived", missing, len(sent)*len(ss.got))
	}
	return ds
}

// await waits up to wait for every stream to receive an event at or past version.
func (ss *scaleStreams) await(version int64, wait time.Duration) {
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ss.mu.Lock()
		all := !slices.ContainsFunc(ss.got, func(rs []receiptAt) bool { return len(rs) == 0 || rs[len(rs)-1].version < version })
		ss.mu.Unlock()
		if all {
			return
		}
	}
}

func (ss *scaleStreams) close() {
	for _, c := range ss.conns {
		if c != nil {
			c.Close()
		}
	}
	ss.readers.Wait()
}

// procRSS is the process's resident memory, in bytes.
func procRSS(t *testing.T, p *serverProc) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb * 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// loadAvg is the machine's load average (1, 5 and 15 minutes).
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
