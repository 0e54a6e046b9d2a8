//go:build load

package main

// The cost benchmarks of the README's Security section, measured side by side in one run:
//
//	go test -tags load -run '^TestAbuseBench$' -count=1 -v -timeout 30m .

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAbuseBench(t *testing.T) {
	s := startAbuseServer(t, 100, 100_000) // 100 accounts x 4 streams: 400
	anon := func(path string) func(w, n int) *http.Request {
		return func(w, n int) *http.Request { req, _ := http.NewRequest(http.MethodGet, s.base+path, nil); return req }
	}
	home := loadRun(t, "anonymous GET /", anon("/"), func(status int, _ []byte) bool { return status == http.StatusOK })
	market := loadRun(t, "anonymous GET /market", anon("/market"), func(status int, _ []byte) bool { return status == http.StatusFound })
	t.Logf("anonymous GET /market %.0f/s beside GET / %.0f/s: %.2f of it (goal >= 0.5)", market.rps, home.rps, market.rps/home.rps)
	if market.rps < 0.5*home.rps {
		t.Errorf("anonymous GET /market at %.2f of GET /'s rate, want >= 0.5", market.rps/home.rps)
	}

	cpu0 := procCPU(t, s.proc.cmd.Process.Pid)
	statuses := map[int]int{}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i := range 200 {
		res, err := client.Do(s.takenNameSignup(i))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		statuses[res.StatusCode]++
	}
	cpu := procCPU(t, s.proc.cmd.Process.Pid) - cpu0
	t.Logf("200 sign-ups with a taken username: %s of server CPU (goal < 1 s); statuses %v", cpu, statuses)
	if cpu >= time.Second {
		t.Errorf("200 taken-name sign-ups cost %s of server CPU, want < 1 s", cpu)
	}

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { s.searchStreams(t)(stop); close(done) }()
	s.waitStreams(t, 401) // the viewer's and the 400
	s.patience = 30 * time.Second
	delays := s.tradeWhile(t, 15*time.Second)
	close(stop)
	<-done
	p50, p99 := delays[len(delays)/2], delays[min(len(delays)-1, len(delays)*99/100)]
	t.Logf("trade to screen with 400 streams of distinct non-matching searches over 100,000 items: p50 %s, p99 %s over %d trades (goal p99 < 100 ms)",
		p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond), len(delays))
	if p99 >= 100*time.Millisecond {
		t.Errorf("trade-to-screen p99 %s with 400 searching streams, want < 100 ms", p99)
	}
}

// waitStreams waits until the server counts at least n open live streams.
func (s *abuseServer) waitStreams(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, body := fetch(t, s.metrics)
		for line := range strings.Lines(body) {
			if v, ok := strings.CutPrefix(line, "market_live_streams "); ok {
				if open, _ := strconv.ParseFloat(strings.TrimSpace(v), 64); open >= float64(n) {
					return
				}
			}
		}
	}
	t.Fatalf("fewer than %d live streams open after 3 minutes", n)
}
