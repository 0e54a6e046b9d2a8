//go:build load

package main

// The abuse checks: each cheap attack of one address runs for a while beside a normal user, on
// the real binary with the request log on, written to a file. Run them with `task abuse`, or
// briefly (CI):
//
//	MARKET_ABUSE_SECONDS=3 go test -tags load -run '^TestAbuse$' -count=1 -v .

import (
	"bufio"
	"bytes"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// abuseStreamUsers x 4 live streams, each with its own search: the pattern.
const abuseStreamUsers = 15

// abuseServer is the real binary under attack, and the accounts the test uses.
type abuseServer struct {
	proc           *serverProc
	base, metrics  string
	db, log        string
	viewer, trader loadUser
	streamers      []loadUser
	signupToken    string // the attacker's, with its cookies
	signupCookies  string
	stream         chan time.Time // when each event reached the viewer's stream
	trades         int            // the trader's so far: even, it buys; odd, it sells
	patience       time.Duration  // how long a trade's event is waited for
}

// The least quiet p99 the doubling rule starts from (knobs.abuseFloor, default 25 ms): on a
// shared machine of two cores a few milliseconds of scheduling noise would otherwise decide.

// startAbuseServer seeds items (0: the demo catalogue) and streamUsers+3 accounts, serves
// them, and logs in the viewer, the trader, the streaming accounts and the attacker.
func startAbuseServer(t *testing.T, streamUsers, items int) *abuseServer {
	t.Helper()
	bin, dir := buildBinary(t), t.TempDir()
	db := filepath.Join(dir, "market.db")
	seed := []string{"-db", db, "seed", "-users", strconv.Itoa(streamUsers + 3), "-password", "password"}
	if items > 0 {
		seed = append(seed, "-items", strconv.Itoa(items))
	}
	if out, err := exec.Command(bin, seed...).CombinedOutput(); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	addr, maddr := freeAddr(t), freeAddr(t)
	s := &abuseServer{base: "http://" + addr, metrics: "http://" + maddr + "/metrics", db: db,
		log: filepath.Join(dir, "server.log"), stream: make(chan time.Time, 1024), patience: 3 * time.Second}
	logFile, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	cmd := exec.Command(bin, "-db", db, "-addr", addr, "-metrics-addr", maddr)
	cmd.Stderr = logFile
	s.proc = startProc(t, cmd, s.base)
	users := loadLogins(t, streamUsers+2, func(int) string { return s.base })
	s.viewer, s.trader, s.streamers = users[0], users[1], users[2:]
	attacker := loadLogin(t, s.base, fmt.Sprintf("user%05d", streamUsers+3), "password")
	s.signupToken, s.signupCookies = attacker.token, attacker.cookies
	s.openViewerStream(t)
	return s
}

// openViewerStream follows the viewer's market page; each event's arrival goes to s.stream.
func (s *abuseServer) openViewerStream(t *testing.T) {
	t.Helper()
	req := s.viewer.get(s.base, "/market/events", false)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("viewer's stream: %v %v", res, err)
	}
	t.Cleanup(func() { res.Body.Close() })
	go func() {
		r := bufio.NewReader(res.Body)
		for {
			line, err := r.ReadBytes('\n') // an event's data line may be longer than a buffer
			if err != nil {
				return
			}
			if bytes.HasPrefix(line, []byte("id: ")) {
				select {
				case s.stream <- time.Now():
				default:
				}
			}
		}
	}()
}

// watched is what the normal user saw: GET /market's latencies, each trade's time to reach
// the viewer's screen, and the server's CPU time meanwhile.
type watched struct {
	pages, trades []time.Duration
	cpu           time.Duration
}

func (w watched) add(o watched) watched {
	return watched{append(w.pages, o.pages...), append(w.trades, o.trades...), w.cpu + o.cpu}
}

// p99 is the 99th percentile of the page loads; live the slowest trade.
func (w watched) p99() time.Duration  { return quantile(w.pages, 0.99) }
func (w watched) live() time.Duration { return quantile(w.trades, 1) }

// quantile is the q-quantile of ds (in any order).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Sorted(slices.Values(ds))
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

// compare watches the normal user for d with attack and d without, in alternating seconds, so
// that the machine's other work (other processes come and go) weighs on both alike.
func (s *abuseServer) compare(t *testing.T, d time.Duration, attack func(stop <-chan struct{})) (quiet, attacked watched) {
	for range max(1, int(d/time.Second)) {
		quiet = quiet.add(s.watch(t, time.Second, nil))
		attacked = attacked.add(s.watch(t, time.Second, attack))
	}
	return quiet, attacked
}

// watch runs attack (nil: none) for d, while the viewer loads the market page every 20 ms and
// the trader buys and sells an item every 250 ms.
func (s *abuseServer) watch(t *testing.T, d time.Duration, attack func(stop <-chan struct{})) watched {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	cpu0 := procCPU(t, s.proc.cmd.Process.Pid)
	if attack != nil {
		wg.Go(func() { attack(stop) })
	}
	var w watched
	wg.Go(func() {
		for deadline := time.Now().Add(d); time.Now().Before(deadline); {
			t0 := time.Now()
			if body := liveDo(t, s.viewer.get(s.base, "/market", false)); !bytes.Contains(body, []byte(`id="budget"`)) {
				t.Errorf("the viewer's market page: %.200s", body)
				return
			}
			w.pages = append(w.pages, time.Since(t0))
			time.Sleep(20 * time.Millisecond) // a person's pace, not a benchmark's
		}
	})
	w.trades = s.tradeWhile(t, d)
	close(stop)
	wg.Wait()
	w.cpu = procCPU(t, s.proc.cmd.Process.Pid) - cpu0
	return w
}

// tradeWhile buys and sells item 1 as the trader for d, and returns the times from sending
// each trade to its event on the viewer's stream, sorted (s.patience for one that never came).
func (s *abuseServer) tradeWhile(t *testing.T, d time.Duration) []time.Duration {
	var delays []time.Duration
	for deadline := time.Now().Add(d); time.Now().Before(deadline); s.trades++ {
		for len(s.stream) > 0 {
			<-s.stream
		}
		sent := time.Now()
		liveDo(t, s.trader.trade(s.base, 1, s.trades%2 == 1))
		select {
		case at := <-s.stream:
			delays = append(delays, at.Sub(sent))
		case <-time.After(s.patience):
			delays = append(delays, s.patience)
		}
		time.Sleep(250 * time.Millisecond) // a person's pace, not a wait for anything
	}
	slices.Sort(delays)
	return delays
}

// procCPU is the process's user and system CPU time so far, from /proc/PID/stat.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// rows counts the tables that grow with requests.
func (s *abuseServer) rows(t *testing.T) (sessions int) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+s.db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT count(*) FROM sessions`).Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	return sessions
}

// series counts the market's metric series.
func (s *abuseServer) series(t *testing.T) int {
	t.Helper()
	_, body := fetch(t, s.metrics)
	n := 0
	for line := range strings.Lines(body) {
		if strings.HasPrefix(line, "market_") {
			n++
		}
	}
	return n
}

func TestAbuse(t *testing.T) {
	d := knobs.abuseDuration()
	s := startAbuseServer(t, abuseStreamUsers, knobs.abuseItems())
	// Each attack briefly first: every series it can make (OTHER, 405, 429...) exists from here on.
	for _, warm := range []func(<-chan struct{}){s.takenNameSignups, s.cookielessViews, s.madeUpMethods} {
		warm(closedAfter(300 * time.Millisecond))
	}
	sessions, series := s.rows(t), s.series(t)
	t.Logf("each attack: %d requests a second for %s, in seconds alternating with quiet ones, beside a viewer (a page every 20 ms) and a trader", abuseRate(), d)
	t.Logf("%-38s %9s %9s %9s %9s %7s", "attack", "quiet p99", "p99", "live max", "+CPU", "pages")
	for _, a := range []struct {
		name   string
		attack func(<-chan struct{})
	}{
		{"sign-ups with a taken username", s.takenNameSignups},
		{"cookieless page views", s.cookielessViews},
		{"made-up methods, long URIs and agents", s.madeUpMethods},
		{"60 streams with distinct searches", s.searchStreams(t)},
	} {
		before := s.series(t)
		quiet, w := s.compare(t, d, a.attack)
		if n := s.series(t); strings.HasPrefix(a.name, "made-up") && n != before {
			t.Errorf("%s: %d metric series, were %d", a.name, n, before)
		}
		t.Logf("%-38s %9s %9s %9s %9s %7d", a.name, quiet.p99().Round(time.Microsecond), w.p99().Round(time.Microsecond),
			w.live().Round(time.Millisecond), (w.cpu - quiet.cpu).Round(10*time.Millisecond), len(w.pages))
		if limit := 2 * max(quiet.p99(), knobs.abuseFloor()); w.p99() > limit {
			t.Errorf("%s: the normal user's GET /market p99 %s, over twice the quiet %s", a.name, w.p99(), quiet.p99())
		}
		if w.live() > time.Second {
			t.Errorf("%s: a trade took %s to reach the viewer's screen, want within 1 s", a.name, w.live())
		}
	}
	if n := s.rows(t); n != sessions {
		t.Errorf("%d session rows after the attacks, want %d: anonymous traffic wrote sessions", n, sessions)
	}
	t.Logf("metric series: %d before the attacks, %d after (new statuses of known routes only)", series, s.series(t))
	checkLogLines(t, s.log)
}

// closedAfter is a channel closed after d.
func closedAfter(d time.Duration) <-chan struct{} {
	c := make(chan struct{})
	time.AfterFunc(d, func() { close(c) })
	return c
}

// checkLogLines: no line of the request log holds more than a few hundred bytes of what a
// client sent.
func checkLogLines(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	longest, lines := 0, 0
	for line := range bytes.Lines(b) {
		longest, lines = max(longest, len(line)), lines+1
	}
	t.Logf("request log: %d lines, %d KiB, longest line %d bytes", lines, len(b)>>10, longest)
	if longest > 2048 {
		t.Errorf("a log line of %d bytes", longest)
	}
}
