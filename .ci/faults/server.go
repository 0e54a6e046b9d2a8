package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// server is the market binary, serving as in production: its log on, to a file.
type server struct {
	bin, db, base string
	cmd           *exec.Cmd
	log           *os.File
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start runs the binary on db and waits (at most 30 s) until it serves.
func start(bin, db, dir string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	log, err := os.OpenFile(filepath.Join(dir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	s := &server{bin: bin, db: db, base: "http://" + addr, log: log}
	s.cmd = exec.Command(bin, "-addr", addr, "-db", db)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if res, err := http.Get(s.base + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("the server did not serve within 30 s (log: %s)", log.Name())
		}
		time.Sleep(100 * time.Millisecond) // a poll, bounded above
	}
}

// kill ends the server at once, as a power cut would.
func (s *server) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
	s.log.Close()
}

// stop ends the server as an operator would, and waits at most 20 s.
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		s.kill()
	}
	s.log.Close()
}

// check runs `market check` on the database.
func check(ctx context.Context, bin, db string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-db", db, "check").CombinedOutput()
	if err != nil {
		return fmt.Errorf("market check: %w\n%s", err, out)
	}
	return nil
}

// crowd is the users of one run, and those who signed up during it without a clear answer.
type crowd struct {
	t       *table
	base    func() string
	users   []*user
	mu      sync.Mutex
	unsure  []*user
	signups int
}

func newCrowd(t *table, base func() string, n int) (*crowd, error) {
	c := &crowd{t: t, base: base}
	t.begin("sign-up")
	for i := range n {
		u := newUser(fmt.Sprintf("u%d_%d", i, rand.IntN(1e6)), base)
		a, created, _ := u.signUp()
		t.record(a)
		if !created {
			return nil, fmt.Errorf("sign up %s: %d", u.name, a.status)
		}
		if err := u.loadToken("/market"); err != nil {
			return nil, err
		}
		c.users = append(c.users, u)
	}
	return c, nil
}

// during runs the crowd for d: every user trading, a stream of sign-ups, and probes of
// /healthz and /readyz, all recorded in the phase that runs.
func (c *crowd) during(d time.Duration) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	loop := func(each func(rng *rand.Rand)) {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
			for {
				select {
				case <-stop:
					return
				default:
					each(rng)
				}
			}
		})
	}
	for _, u := range c.users {
		u.base = c.base()
		loop(func(rng *rand.Rand) { u.trade(c.t, rng) })
	}
	loop(func(*rand.Rand) { c.signUp() })
	loop(func(*rand.Rand) { c.probe() })
	time.Sleep(d) // the phase's length: how long the fault holds, not a wait for anything
	close(stop)
	wg.Wait()
}

func (c *crowd) signUp() {
	c.mu.Lock()
	c.signups++
	u := newUser("s"+strconv.Itoa(c.signups)+"_"+strconv.Itoa(rand.IntN(1e6)), c.base)
	c.mu.Unlock()
	a, _, unsure := u.signUp()
	c.t.record(a)
	if unsure && a.status != 0 {
		c.mu.Lock()
		c.unsure = append(c.unsure, u)
		c.mu.Unlock()
	}
}

// probeClient waits as long as a load balancer's health check would.
var probeClient = &http.Client{Timeout: 5 * time.Second}

func (c *crowd) probe() {
	for _, p := range []string{"/healthz", "/readyz"} {
		start := time.Now()
		kind := map[string]string{"/healthz": "health", "/readyz": "ready"}[p]
		res, err := probeClient.Get(c.base() + p)
		a := answer{kind: kind, took: time.Since(start)}
		if err == nil {
			res.Body.Close()
			a.status = res.StatusCode
		}
		c.t.record(a)
	}
	time.Sleep(200 * time.Millisecond) // probes at a load balancer's pace
}

// recovered runs the crowd until a page is served again (at most 60 s), in a phase of its own,
// and notes how long that took.
func (c *crowd) recovered(name string) {
	p := c.t.begin(name)
	start := time.Now()
	for time.Since(start) < time.Minute {
		c.users[0].base = c.base()
		a, m := c.users[0].market()
		c.t.record(a)
		if m.checked {
			p.recovery = time.Since(start)
			return
		}
		time.Sleep(50 * time.Millisecond) // a poll, bounded above
	}
	c.t.fail("%s: no page served within a minute", name)
}

// verify checks every user's money and trades, and that a sign-up answered with an error
// made no account.
func (c *crowd) verify() {
	for _, u := range c.users {
		u.base = c.base()
		u.verify(c.t, 1000)
	}
	for _, u := range c.unsure {
		u.base = c.base()
		if err := u.loadToken("/login"); err != nil {
			c.t.fail("login page: %v", err)
			continue
		}
		a, _ := u.do("login", http.MethodPost, "/login", map[string][]string{"username": {u.name}, "password": {"correct horse"}}, false)
		if a.status == http.StatusFound {
			c.t.fail("a sign-up of %s was answered with an error, yet made the account", u.name)
		}
	}
}
