package main

// Clients that reset their connections mid-request: the server keeps nothing of them.

import (
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// rssMiB is this process's resident memory.
func rssMiB(t *testing.T) float64 {
	t.Helper()
	mib, err := procMiB("self", "VmRSS")
	if err != nil {
		t.Skip(err)
	}
	return mib
}

// settleGoroutines waits until the goroutine count is back to at most want, and returns it.
func settleGoroutines(want int, within time.Duration) int {
	n := runtime.NumGoroutine()
	eventually(within, func() bool { n = runtime.NumGoroutine(); return n <= want })
	return n
}

// resetStorm opens n connections that each send a logged-in GET /market and reset at once
// (SO_LINGER 0), some before the answer starts, some while it is being written.
func resetStorm(t *testing.T, addr, cookie string, n int) {
	t.Helper()
	request := "GET /market HTTP/1.1\r\nHost: " + addr + "\r\nCookie: " + cookie + "\r\nAccept-Encoding: gzip\r\n\r\n"
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return // the backlog is full for a moment: that client simply never got in
			}
			c.Write([]byte(request))
			if i%2 == 1 { // let the handler get going, then hang up under it
				time.Sleep(time.Duration(i%7) * 100 * time.Microsecond)
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		})
	}
	wg.Wait()
}

// hangUpStorm serves the market in this process, signs a user in, and sends 3,000 requests
// that reset mid-way; it returns once the goroutines are back to their count before the storm, with the
// goroutines, resident memory and live heap from before it.
func hangUpStorm(t *testing.T) (srv *inProcess, cookie string, goroutines int, rss, heap float64) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: 3,000 connections")
	}
	srv = serveInProcess(t, nil)
	cookie = cookieHeader(t, srv.base, "hangup")
	if got := get(t, srv.base, "/market", cookie); got != http.StatusOK {
		t.Fatalf("GET /market before: %d", got)
	}
	http.DefaultClient.CloseIdleConnections()
	goroutines = settleGoroutines(0, 500*time.Millisecond)
	heap = liveHeapMiB()
	rss = rssMiB(t)

	resetStorm(t, srv.addr, cookie, 3000)

	if n := settleGoroutines(goroutines, 10*time.Second); n > goroutines {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before the storm, %d ten seconds after it\n%s",
			goroutines, n, buf[:runtime.Stack(buf, true)])
	}
	return srv, cookie, goroutines, rss, heap
}

// liveHeapMiB is the heap that survives collections: what the process still holds. (Two: the
// first only moves what sync.Pools keep to their victim caches.)
func liveHeapMiB() float64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// Clients that reset mid-request leave nothing behind: no goroutine, no live memory, no error in
// the log (a cancelled request is not a server error), and the next user is served. (That the
// server then idles and gives its memory back is TestIdleCPUAfterHangUps, under the load tag.)
func TestClientsThatHangUp(t *testing.T) {
	srv, cookie, baseGoroutines, _, heapBefore := hangUpStorm(t)
	// Nothing the storm allocated is still held: after a collection the live heap is back within
	// 4 MiB of where it started. (Resident memory, which also depends on when the runtime
	// returns pages, is checked under the load tag: TestIdleCPUAfterHangUps.)
	heap := liveHeapMiB()
	if heap > heapBefore+4 {
		t.Errorf("live heap %.1f MiB after the storm, %.1f MiB before: want within 4 MiB", heap, heapBefore)
	}
	if got := get(t, srv.base, "/market", cookie); got != http.StatusOK {
		t.Errorf("GET /market after the storm: %d", got)
	}

	log, _ := os.ReadFile(srv.log)
	if bytes := strings.Count(string(log), "level=ERROR"); bytes > 0 {
		t.Errorf("%d errors logged for clients that hung up, want none:\n%.2000s", bytes, log)
	}
	cancelled := strings.Count(string(log), `msg="request cancelled"`)
	if cancelled > 3000 {
		t.Errorf("%d 'request cancelled' lines for 3,000 reset requests, want at most one each", cancelled)
	}
	t.Logf("goroutines %d → %d; live heap %.1f → %.1f MiB; %d cancelled requests logged",
		baseGoroutines, runtime.NumGoroutine(), heapBefore, heap, cancelled)
}
