package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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

// SIGTERM lets a request in flight finish, refuses new connections, and exits 0.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server")
	}
	bin := buildBinary(t)
	db := filepath.Join(t.TempDir(), "market.db")
	srv := startServer(t, bin, db)
	b := newBrowser("patience")
	conn, answer, body := startSlowSignUp(t, srv, b)

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitDraining(t, srv)

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
	checkStoppedCleanly(t, srv, bin, db, b.name)
}

// startSlowSignUp starts a sign-up whose body arrives slowly: it sends half of it, once the
// server has said a handler reads it, and returns the connection, its reader and the body.
func startSlowSignUp(t *testing.T, srv *process, b *browser) (net.Conn, *bufio.Reader, string) {
	t.Helper()
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

	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
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
	return conn, answer, body
}

// waitDraining waits until the server, told to stop, refuses new connections while still
// running for the request in flight.
func waitDraining(t *testing.T, srv *process) {
	t.Helper()
	u, _ := url.Parse(srv.url)
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
}

// checkStoppedCleanly waits for the server to exit 0 after SIGTERM, with a clean stop in its
// log, the sign-up finished during shutdown stored, and the database checked.
func checkStoppedCleanly(t *testing.T, srv *process, bin, db, name string) {
	t.Helper()
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
	if out, err := runAdmin(t, bin, db, "users"); err != nil || !strings.Contains(out, name) {
		t.Errorf("the sign-up finished during shutdown is not stored: %v\n%s", err, out)
	}
	if out, err := runAdmin(t, bin, db, "check"); err != nil {
		t.Errorf("check after shutdown: %v\n%s", err, out)
	}
}
