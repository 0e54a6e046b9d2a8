//go:build load

package main

// The soak test: minutes of normal users, trades, aborted requests, slow-header clients and
// idle connections at once, against the server as production runs it (in this process, its
// request log written to a file). Run it with `task soak`, or:
//
//	go test -tags load -run '^TestSoak$' -count=1 -v -timeout 30m .
//
// MARKET_SOAK_DURATION sets its length (default 3m).

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// soakSample is what the server looked like over one stretch of the soak.
type soakSample struct {
	rss        float64 // MiB, this process
	goroutines int
	p99        time.Duration // of the normal users' requests in the stretch
	requests   int
}

func TestSoak(t *testing.T) {
	duration := knobs.soakDuration()
	srv := serveInProcess(t, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}

	// Normal users: 8 of them reading the market and searching, latency recorded.
	var mu sync.Mutex
	var latencies []time.Duration
	var failures atomic.Int64
	for i := range 8 {
		cookie := cookieHeader(t, srv.base, fmt.Sprintf("reader%d", i))
		client := &http.Client{Timeout: 10 * time.Second}
		wg.Go(func() {
			for n := 0; !stopped(); n++ {
				path := "/market"
				if n%3 == 1 {
					path = "/market?q=lamp"
				}
				req, _ := http.NewRequest(http.MethodGet, srv.base+path, nil)
				req.Header.Set("Cookie", cookie)
				start := time.Now()
				res, err := client.Do(req)
				if err != nil {
					failures.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					failures.Add(1)
				}
				mu.Lock()
				latencies = append(latencies, time.Since(start))
				mu.Unlock()
			}
		})
	}

	// Traders: 4 users buying and selling their own item through htmx.
	var trades atomic.Int64
	for i := range 4 {
		b := signUp(t, srv.base, fmt.Sprintf("trader%d", i))
		if err := b.LoadToken("/market"); err != nil {
			t.Fatal(err)
		}
		item := int64(i + 1)
		wg.Go(func() {
			for n := 0; !stopped(); n++ {
				res, err := b.Trade(item, n%2 == 1)
				if err != nil || res.StatusCode != http.StatusOK {
					failures.Add(1)
					continue
				}
				if strings.Contains(res.Body, "Purchased") || strings.Contains(res.Body, "Sold") {
					trades.Add(1)
				}
				time.Sleep(5 * time.Millisecond) // a trader's pace, not a wait for anything
			}
		})
	}

	// Aborted requests: logged-in GET /market reset at once, 100 a second.
	abortCookie := cookieHeader(t, srv.base, "aborter")
	wg.Go(func() {
		for !stopped() {
			resetStorm(t, srv.addr, abortCookie, 10)
			time.Sleep(100 * time.Millisecond) // the pace: 100 a second
		}
	})

	// Slow-header clients (20 at a time, a byte a second) and idle connections (200 at a time,
	// never sending): each is replaced when the server cuts it off.
	hold := func(n int, slow bool) {
		for range n {
			wg.Go(func() {
				for !stopped() {
					c, err := net.Dial("tcp", srv.addr)
					if err != nil {
						time.Sleep(100 * time.Millisecond) // the backlog is full: try again shortly
						continue
					}
					if slow {
						c.Write([]byte("GET /market HTTP/1.1\r\nHost: x\r\n"))
					}
					for !stopped() {
						if slow {
							if _, err := c.Write([]byte("X")); err != nil {
								break
							}
						}
						c.SetReadDeadline(time.Now().Add(time.Second))
						if _, err := c.Read(make([]byte, 1)); err != nil {
							if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
								break // the server closed it
							}
						}
					}
					c.Close()
				}
			})
		}
	}
	hold(20, true)
	hold(200, false)

	// One sample per stretch of 15 s; the first comes after a stretch of warming up.
	const stretch = 15 * time.Second
	sample := func() soakSample {
		time.Sleep(stretch) // the window measured, not a wait for something
		mu.Lock()
		l := latencies
		latencies = nil
		mu.Unlock()
		slices.Sort(l)
		s := soakSample{rss: rssMiB(t), goroutines: runtime.NumGoroutine(), requests: len(l)}
		if len(l) > 0 {
			s.p99 = l[len(l)*99/100]
		}
		t.Logf("%s RSS %.1f MiB, goroutines %d, p99 %s over %d requests, %d trades, %d failures",
			time.Now().Format("15:04:05"), s.rss, s.goroutines, s.p99.Round(10*time.Microsecond), s.requests, trades.Load(), failures.Load())
		return s
	}
	sample() // warming up
	var samples []soakSample
	for start := time.Now(); time.Since(start) < duration; {
		samples = append(samples, sample())
	}
	close(stop)
	wg.Wait()

	// The start and the end are each the median of a quarter of the stretches: one stretch's
	// p99 swings with whatever else the machine is doing.
	k := max(1, len(samples)/4)
	first, last := medianSample(samples[:k]), medianSample(samples[len(samples)-k:])
	t.Logf("start: RSS %.1f MiB, goroutines %d, p99 %s; end: RSS %.1f MiB, goroutines %d, p99 %s; %d trades, %d failures",
		first.rss, first.goroutines, first.p99, last.rss, last.goroutines, last.p99, trades.Load(), failures.Load())
	flat := func(name string, a, b float64) {
		if b > a*1.10 {
			t.Errorf("%s grew from %.2f to %.2f over the soak: more than 10 %%", name, a, b)
		}
	}
	flat("RSS (MiB)", first.rss, last.rss)
	flat("goroutines", float64(first.goroutines), float64(last.goroutines))
	flat("p99 (ms)", float64(first.p99)/1e6, float64(last.p99)/1e6)
	if n := failures.Load(); n > 0 {
		t.Errorf("%d requests of normal users or traders failed", n)
	}
}

// medianSample is the median of each figure of the samples.
func medianSample(ss []soakSample) soakSample {
	mid := func(f func(soakSample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return soakSample{
		rss:        mid(func(s soakSample) float64 { return s.rss }),
		goroutines: int(mid(func(s soakSample) float64 { return float64(s.goroutines) })),
		p99:        time.Duration(mid(func(s soakSample) float64 { return float64(s.p99) })),
	}
}

// After the storm of clients that hung up, the server idles (under 5 % of a core for 3 s) and
// gives back what the storm allocated without the test's help (releaseWhenQuiet: the resident
// memory returns to within 20 MiB of where it started). CPU and resident memory depend on the
// machine's other load, so this runs with the load tests and the soak (the load tag), not in
// every go test.
func TestIdleCPUAfterHangUps(t *testing.T) {
	_, _, _, baseRSS, _ := hangUpStorm(t)
	before := cpuTime(t)
	time.Sleep(3 * time.Second) // the window measured, not a wait for something
	if busy := float64(cpuTime(t)-before) / float64(3*time.Second); busy > 0.05 {
		t.Errorf("the server used %.0f %% of a core in 3 s of quiet after the storm, want under 5 %%", busy*100)
	}
	// releaseWhenQuiet waits for 2 s without a collection, which a busy machine can put off.
	var rss float64
	if !eventually(20*time.Second, func() bool { rss = rssMiB(t); return rss <= baseRSS+20 }) {
		t.Errorf("RSS %.1f MiB twenty seconds after the storm, %.1f MiB before: want within 20 MiB", rss, baseRSS)
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
