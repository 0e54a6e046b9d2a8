package live

import (
	"bufio"
	"context"
	"strings"
	"testing"
	"time"
)

// The ping wheel finds each stream once an interval, never before its ping is due and less than
// a slot after, and never a stream taken off it; it holds each stream on one spoke of 16, so a
// look for the streams due visits a sixteenth of them, not all. A pinger that falls behind
// finds what came due meanwhile at its next look.
func TestPingWheel(t *testing.T) {
	const ping, n = 16 * time.Second, 1600
	w := newWheel(ping)
	start := time.Unix(1_000_000, 0)
	streams := make([]*subscription, n)
	for i := range streams {
		streams[i] = &subscription{due: start.Add(ping * time.Duration(i) / n)}
		w.add(streams[i])
	}
	gone := streams[7]
	w.remove(gone)
	for i, spoke := range w.spokes {
		if len(spoke) > 2*n/wheelSpokes {
			t.Errorf("spoke %d holds %d of %d streams", i, len(spoke), n)
		}
	}
	pinged := map[*subscription][]time.Time{}
	end := start.Add(3 * ping)
	for now := start; now.Before(end); now = now.Add(w.slot) {
		if now.After(start.Add(ping)) && now.Before(start.Add(ping+5*w.slot)) {
			continue // the pinger was busy for 5 slots
		}
		for _, s := range w.due(now, ping) {
			pinged[s] = append(pinged[s], now)
		}
	}
	if len(pinged[gone]) > 0 {
		t.Errorf("a stream taken off the wheel was pinged at %v", pinged[gone])
	}
	for i, s := range streams {
		if s == gone {
			continue
		}
		at := pinged[s]
		if len(at) < 2 {
			t.Fatalf("stream %d: pinged at %v over three intervals", i, at)
		}
		due := start.Add(ping * time.Duration(i) / n)
		if late := at[0].Sub(due); late < 0 || late >= w.slot {
			t.Errorf("stream %d: first ping %s after it was due, want within [0, %s)", i, late, w.slot)
		}
		for j := 1; j < len(at); j++ {
			if gap := at[j].Sub(at[j-1]); gap < ping || gap > ping+6*w.slot {
				t.Errorf("stream %d: pings %s apart, want %s (and the pinger's 5 busy slots)", i, gap, ping)
			}
		}
	}
}

// A check of the sessions that fails (the database is down) and answers for no stream ends
// none: the streams keep their pings, and stay open.
func TestFailedSessionCheckEndsNoStream(t *testing.T) {
	checks := make(chan int, 100)
	b, _ := newTestBrokerConfig(t, Config{Ping: 20 * time.Millisecond, PerUser: 4,
		SignedIn: func(_ context.Context, who []Viewer) []bool {
			select {
			case checks <- len(who):
			default:
			}
			return nil
		}})
	client := openPiped(t, b, 1)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(client)
	for pings := 0; pings < 3; {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d pings: %v", pings, err)
		}
		if strings.HasPrefix(line, "event: close") {
			t.Fatalf("the stream was closed: %q", line)
		}
		if line == string(pingLine[:len(pingLine)-1]) {
			pings++
		}
	}
	if len(checks) == 0 {
		t.Error("no session was checked")
	}
	if n := b.Count(); n != 1 {
		t.Errorf("%d streams open, want 1", n)
	}
}

// BenchmarkPingWheel is one look of the pinger for the streams due, at 10,000 streams: it
// visits the sixteenth of them on the slot's spoke.
func BenchmarkPingWheel(b *testing.B) {
	const ping, n = 15 * time.Second, 10_000
	w := newWheel(ping)
	now := time.Unix(1_000_000, 0)
	for i := range n {
		w.add(&subscription{due: now.Add(ping * time.Duration(i) / n)})
	}
	due := 0
	for b.Loop() {
		now = now.Add(w.slot)
		due += len(w.due(now, ping))
	}
	b.ReportMetric(float64(due)/float64(b.N), "due/op")
}
