package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"market/store/storetest"
)

func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// /metrics is served on the metrics address, in Prometheus's format, counting the public
// requests by route, method and status; the public address has no /metrics.
func TestMetricsOnTheirOwnAddress(t *testing.T) {
	public, private := loadFreeAddr(t), loadFreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", public, "-metrics-addr", private, "-db", storetest.URL(t)},
			func(string) string { return "" }, io.Discard, io.Discard)
	}()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if res, err := http.Get("http://" + public + "/healthz"); err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
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
