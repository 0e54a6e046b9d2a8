// Helpers of the tests of the binary: building it, starting the server (as its own process or
// in this process), running its commands, signing people up, and waiting with a deadline.

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
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"market/handlers/webtest"
)

// buildBinary compiles the command into a temporary directory, as it would be deployed.
func buildBinary(t testing.TB) string {
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

// process is the server binary, running, its log read by the test.
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

// serverProc is a server process started by startProc, its log written to a file as in
// production (a pipe the test drains, or /dev/null, would measure something else).
type serverProc struct {
	cmd  *exec.Cmd
	base string
}

// startProc runs cmd and waits until base answers /healthz; the test's end stops it.
func startProc(t testing.TB, cmd *exec.Cmd, base string) *serverProc {
	t.Helper()
	if cmd.Stderr == nil {
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
	p := &serverProc{cmd: cmd, base: base}
	t.Cleanup(p.stop)
	waitFor(t, cmd.Path+" to answer /healthz", 20*time.Second, func() bool {
		res, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return p
}

// stop interrupts the process and waits for it, killing it after 10 s.
func (p *serverProc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
	}
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runAdmin runs an admin subcommand of the binary and returns its output and exit status.
func runAdmin(t *testing.T, bin, db string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-db", db}, args...)...)
	cmd.Env = []string{"TZ=UTC"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// adminRun runs one command of the binary in-process, as `market -db db args...`.
func adminRun(t *testing.T, db string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"-db", db}, args...), func(string) string { return "" }, &out, io.Discard)
	return out.String(), err
}

// inProcess is the server started by run in this process.
type inProcess struct {
	base string
	addr string
	log  string // the log file's path
}

// serveInProcess runs the server on a fresh database and waits until it serves. The test's
// end stops it as SIGTERM would, and waits for it to return.
func serveInProcess(t *testing.T, env map[string]string) *inProcess {
	t.Helper()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "market.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	getenv := func(k string) string { return env[k] }
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-db", filepath.Join(dir, "market.db")}, getenv, io.Discard, logFile)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("the server did not stop")
		}
		logFile.Close()
	})
	var srv *inProcess
	waitFor(t, "the server to serve", 30*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		if m := servingURL.FindSubmatch(b); m != nil {
			srv = &inProcess{base: string(m[1]), addr: strings.TrimPrefix(string(m[1]), "http://"), log: logPath}
			return true
		}
		select {
		case err := <-done:
			t.Fatalf("the server stopped before serving: %v\n%s", err, b)
		default:
		}
		return false
	})
	return srv
}

// signUp registers name through the form and returns the signed-in browser. The session
// cookie of the real server must be HttpOnly, SameSite=Lax, and last an absolute 12 hours.
func signUp(t testing.TB, base, name string) *webtest.Client {
	t.Helper()
	c := webtest.New(base, name)
	res, err := c.SignUp()
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/market" {
		t.Fatalf("sign up %s: %d → %q", name, res.StatusCode, res.Header.Get("Location"))
	}
	for _, k := range res.Cookies() {
		if k.Name == "session" && (!k.HttpOnly || k.SameSite != http.SameSiteLaxMode || k.MaxAge < 43200-60 || k.MaxAge > 43201) {
			t.Errorf("session cookie HttpOnly=%v SameSite=%v Max-Age=%d, want HttpOnly, Lax and 12 hours",
				k.HttpOnly, k.SameSite, k.MaxAge)
		}
	}
	return c
}

// cookieHeader is the Cookie header a browser that signed up as name would send.
func cookieHeader(t *testing.T, base, name string) string {
	t.Helper()
	return signUp(t, base, name).CookieHeader()
}

// get sends one request on a new connection and returns the status.
func get(t *testing.T, base, path, cookie string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("Cookie", cookie)
	req.Close = true
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// fetch is a GET of url: its status and body.
func fetch(t testing.TB, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// waitFor polls cond every 10 ms until it holds, and fails the test when it does not hold
// within the bound.
func waitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	if !eventually(within, cond) {
		t.Fatalf("waiting for %s: not within %s", what, within)
	}
}

// eventually polls cond every 10 ms until it holds or the bound has passed, and reports
// whether it held.
func eventually(within time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(within); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
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
