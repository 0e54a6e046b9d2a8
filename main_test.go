// The binary's contract: its flags and environment, its metrics on their own address, and a
// graceful shutdown.

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"market/handlers/webtest"
	"market/store/storetest"
)

// The settings come from flags, then the environment, then the defaults; a database URL names
// its engine.
func TestFlagsAndEnvironment(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantAddr string
		wantDB   string
		secure   bool
	}{
		{"defaults", nil, nil, "127.0.0.1:5000", "instance/market.db", false},
		{"environment", nil, map[string]string{"ADDR": ":8080", "DATABASE_URL": "sqlite:///rel.db", "SECURE": "1",
			"TRUSTED_ORIGINS": "http://127.0.0.1:7331,http://localhost:7331"}, ":8080", "rel.db", true},
		{"absolute URL", nil, map[string]string{"DATABASE_URL": "sqlite:////abs/m.db"}, "127.0.0.1:5000", "/abs/m.db", false},
		{"flags win", []string{"-addr", "127.0.0.1:9", "-db", "f.db", "-secure=false"},
			map[string]string{"ADDR": ":8080", "DATABASE_URL": "e.db", "SECURE": "1"}, "127.0.0.1:9", "f.db", false},
		{"postgres", nil, map[string]string{"DATABASE_URL": "postgres://u@h:5432/market"}, "127.0.0.1:5000", "postgres://u@h:5432/market", false},
		{"postgresql flag", []string{"-db", "postgresql://u@h/m?sslmode=disable"}, nil, "127.0.0.1:5000", "postgresql://u@h/m?sslmode=disable", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := parseFlags(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if tt.env["TRUSTED_ORIGINS"] != "" && len(cfg.trustedOrigins) != 2 {
				t.Errorf("trusted origins %q", cfg.trustedOrigins)
			}
			if cfg.addr != tt.wantAddr || cfg.db != tt.wantDB || cfg.secure != tt.secure {
				t.Errorf("got %+v, want addr %s db %s secure %v", cfg, tt.wantAddr, tt.wantDB, tt.secure)
			}
		})
	}
}

// /metrics is served on the metrics address, in Prometheus's format, counting the public
// requests by route, method and status; the public address has no /metrics.
func TestMetricsOnTheirOwnAddress(t *testing.T) {
	public, private := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", public, "-metrics-addr", private, "-db", storetest.URL(t)},
			func(string) string { return "" }, io.Discard, io.Discard)
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the server to answer /healthz", 20*time.Second, func() bool {
		res, err := http.Get("http://" + public + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err == nil
	})
	for range 2 {
		fetch(t, "http://"+public+"/healthz")
	}
	if code, _ := fetch(t, "http://"+public+"/metrics"); code != http.StatusNotFound {
		t.Errorf("public /metrics: status %d, want 404", code)
	}
	code, body := fetch(t, "http://"+private+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("metrics: status %d", code)
	}
	for _, want := range []string{
		`market_http_requests_total{method="GET",route="GET /healthz",status="200"} 3`,
		`market_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`market_http_request_duration_seconds_bucket{route="GET /healthz",le="+Inf"} 3`,
		`market_trades_total 0`,
		`market_trade_refusals_total{reason="unavailable"} 0`,
		`go_sql_open_connections{db_name="market"}`,
		`market_db_commit_seconds_count`,
		`market_live_streams 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if storetest.Postgres() && !strings.Contains(body, "market_pgxpool_total_conns") {
		t.Error("metrics lack the pgx pool on PostgreSQL")
	}
}

// SIGTERM lets a request in flight finish, refuses new connections, and exits 0.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server")
	}
	bin := buildBinary(t)
	db := filepath.Join(t.TempDir(), "market.db")
	srv := startServer(t, bin, db)
	b := webtest.New(srv.url, "patience")
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
	checkStoppedCleanly(t, srv, bin, db, b.Name)
}

// startSlowSignUp starts a sign-up whose body arrives slowly: it sends half of it, once the
// server has said a handler reads it, and returns the connection, its reader and the body.
func startSlowSignUp(t *testing.T, srv *process, b *webtest.Client) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	if err := b.LoadToken("/register"); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.url)
	body := url.Values{"username": {b.Name}, "email": {b.Name + "@example.com"}, "password": {webtest.Password},
		"confirm_password": {webtest.Password}, "csrf_token": {b.Token}}.Encode()

	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// Expect: 100-continue makes the server say when a handler starts reading the body: then the
	// request is in flight for certain.
	fmt.Fprintf(conn, "POST /register HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nCookie: %s\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		u.Host, srv.url, b.CookieHeader(), len(body))
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
	waitFor(t, "the log to say it is shutting down", 5*time.Second, func() bool {
		return strings.Contains(srv.log.String(), "shutting down")
	})
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
