package handlers_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"market/handlers"
)

// TestLiveStreamsLoad opens 1,000 live streams (250 users, 4 each), then makes trades, and
// reports what the streams cost in memory and the delay from each trade's commit to the last
// stream's receipt of its event. MARKET_LIVE_LOAD=1 runs it (README.md, "Live updates").
func TestLiveStreamsLoad(t *testing.T) {
	if os.Getenv("MARKET_LIVE_LOAD") != "1" {
		t.Skip("set MARKET_LIVE_LOAD=1 to run the live streams benchmark")
	}
	const users, perUser, trades = 250, 4, 100
	app := newTestApp(t, handlers.Config{SignupsPerHour: 1000})
	var clients []*client
	for i := range users {
		clients = append(clients, app.signUp(fmt.Sprintf("u%04d", i)))
	}
	app.signUp("trader") // trades straight through the store below
	ctx := context.Background()
	traderID := int64(0)
	app.store.DB().QueryRow(`SELECT id FROM users WHERE username = 'trader'`).Scan(&traderID)
	mouse := app.item("Mouse").ID

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()

	type receipt struct {
		id int64
		at time.Time
	}
	var mu sync.Mutex
	got := make([][]receipt, 0, users*perUser)
	for _, c := range clients {
		for range perUser {
			ls := c.stream("/market/events", nil)
			mu.Lock()
			i := len(got)
			got = append(got, nil)
			mu.Unlock()
			go func() {
				for ev := range ls.events {
					if ev.comment || ev.name != "market" {
						continue
					}
					id, _ := strconv.ParseInt(ev.id, 10, 64)
					at := time.Now()
					mu.Lock()
					got[i] = append(got[i], receipt{id, at})
					mu.Unlock()
				}
			}()
		}
	}
	waitUntil(t, "1,000 streams", 30*time.Second, func() bool { return app.handler.OpenStreams() == users*perUser })
	time.Sleep(500 * time.Millisecond)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	g1 := runtime.NumGoroutine()

	type commit struct {
		version int64
		at      time.Time
	}
	var commits []commit
	for i := range trades {
		var err error
		if i%2 == 0 {
			_, err = app.store.Buy(ctx, traderID, mouse)
		} else {
			_, err = app.store.Sell(ctx, traderID, mouse)
		}
		at := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		v, _ := app.store.Version(ctx)
		commits = append(commits, commit{v, at})
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)

	var delays []time.Duration
	missing := 0
	mu.Lock()
	for _, c := range commits {
		var last time.Duration
		for _, rs := range got {
			i := slices.IndexFunc(rs, func(r receipt) bool { return r.id >= c.version })
			if i < 0 {
				missing++
				continue
			}
			last = max(last, rs[i].at.Sub(c.at))
		}
		delays = append(delays, last)
	}
	mu.Unlock()
	if missing > 0 {
		t.Errorf("%d (trade, stream) pairs never received", missing)
	}
	slices.Sort(delays)
	p := func(q float64) time.Duration {
		return delays[int(q*float64(len(delays)-1))].Round(100 * time.Microsecond)
	}
	heap := float64(after.HeapInuse-before.HeapInuse) / float64(users*perUser)
	sys := float64(after.Sys-before.Sys) / (1 << 20)
	t.Logf("%d streams: %.1f KiB of heap each (client and server in this process), %d goroutines each, process memory +%.1f MiB",
		users*perUser, heap/1024, (g1-g0)/(users*perUser), sys)
	t.Logf("%d trades, 50 ms apart: commit to the last of %d streams p50 %s, p99 %s, max %s",
		trades, users*perUser, p(0.5), p(0.99), delays[len(delays)-1].Round(100*time.Microsecond))
}
