package live

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"market/store"
)

// openPiped opens a stream of user on the whole market as Serve does, its connection one end of
// an in-memory pipe (which takes a write only as the other end reads it); the other end is the
// client's.
func openPiped(t *testing.T, b *Broker, user int64) net.Conn {
	t.Helper()
	q := store.MarketQuery{}.Normalize()
	s := b.mustSubscribe(t, user, q)
	c, err := b.feed.ChangesSince(context.Background(), 0, 0, []store.MarketQuery{q}, store.AllPages)
	if err != nil {
		t.Fatal(err)
	}
	v := &view{b: b, s: s, cursor: c.Version}
	if err := v.remember(newGroup(0, c, nil)); err != nil {
		t.Fatal(err)
	}
	server, client := net.Pipe()
	t.Cleanup(func() { client.Close() })
	s.attach(v, newConnWire(server), nil)
	s.work(false) // the opener lets the workers have it
	return client
}

// Clients that stop reading hold no other stream back: with more of them than the broker has
// workers, a stream whose client reads still gets a trade's event at once, and the stalled ones
// are still open (their writes wait on goroutines of their own, up to writeTimeout).
func TestStalledClientsHoldNoOneBack(t *testing.T) {
	b, st := newTestBroker(t, 4)
	ctx := context.Background()
	stalled := 2 * workers()
	for i := range stalled {
		openPiped(t, b, int64(1000+i)) // never read
	}
	reader := openPiped(t, b, 999)
	ann, err := st.CreateUser(ctx, "ann", "ann@example.com", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	page, err := st.Market(ctx, store.MarketQuery{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := st.Buy(ctx, ann.ID, page.Items[0].ID); err != nil {
		t.Fatal(err)
	}
	version, err := st.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reader.SetReadDeadline(time.Now().Add(writeTimeout / 2)) // a worker stuck on a stalled client waits writeTimeout
	r := bufio.NewReader(reader)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("no event for the reading client beside %d stalled ones: %v", stalled, err)
		}
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			if v, _ := strconv.ParseInt(strings.TrimSpace(id), 10, 64); v >= version {
				break
			}
		}
	}
	t.Logf("the event reached the reading client %s after the trade", time.Since(start))
	if n := b.Count(); n != stalled+1 {
		t.Errorf("%d streams open, want the %d stalled ones and the reader", n, stalled)
	}
}

// A client too slow to take its groups as they come holds at most maxPending of them: the
// older ones collapse into the newest as a refresh, so when the client reads again it gets its
// page's rows whole at that version, then the groups after it, and no event in between.
func TestSlowClientGroupsCollapse(t *testing.T) {
	b, st := newTestBroker(t, 4)
	ctx := context.Background()
	q := store.MarketQuery{}.Normalize()
	ann, err := st.CreateUser(ctx, "ann", "ann@example.com", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	s := b.mustSubscribe(t, ann.ID, q) // its opener holds it: groups wait, as for a writer stuck on a slow client
	c, err := st.ChangesSince(ctx, 0, 0, []store.MarketQuery{q}, store.AllPages)
	if err != nil {
		t.Fatal(err)
	}
	v := &view{b: b, s: s, cursor: c.Version}
	if err := v.remember(newGroup(0, c, nil)); err != nil {
		t.Fatal(err)
	}
	item := c.Pages[q].Items[0]
	const n = maxPending + 10
	for i := range int64(n) {
		version := c.Version + i + 1
		b.handOut(newGroup(version-1, store.Changes{Version: version, Complete: true,
			Events: []store.MarketEvent{{Version: version, ItemID: item.ID, ItemName: item.Name, Kind: "buy", UserID: ann.ID + 1}}}, nil))
		s.mu.Lock()
		held := len(s.pending)
		s.mu.Unlock()
		if held > maxPending {
			t.Fatalf("%d groups held for a stream that does not read", held)
		}
	}
	server, client := net.Pipe()
	t.Cleanup(func() { client.Close() })
	s.attach(v, newConnWire(server), nil)
	go s.work(false)

	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(client)
	var ids []int64
	refreshAt := int64(0)
	for last := c.Version + n; len(ids) == 0 || ids[len(ids)-1] < last; {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after events %v: %v", ids, err)
		}
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			v, _ := strconv.ParseInt(strings.TrimSpace(id), 10, 64)
			ids = append(ids, v)
		}
		if strings.Contains(line, `data-refresh="true"`) {
			refreshAt = ids[len(ids)-1]
		}
	}
	first := c.Version + maxPending + 1 // the group that found maxPending waiting
	if refreshAt != first || ids[0] != first || len(ids) != n-maxPending {
		t.Errorf("events %v, refresh at %d: want a refresh at %d, then one event a group after it", ids, refreshAt, first)
	}
}
