package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"market/store"
	"market/store/driver/drivertest"
	"market/store/storetest"
)

// feedTrade is one purchase or sale as its writer saw it succeed, or as the feed told it.
type feedTrade struct {
	item, user int64
	kind       string
}

// The change feed on PostgreSQL, as a property: writers on three instances of one database
// trade a few items as fast as they can (most attempts are refused: the items are contended),
// transactions that change an item roll back, and a long transaction holds the horizon back
// for a while; a reader on a fourth instance tails ChangesSince. Every trade that committed is
// read exactly once, each item's trades in the order they committed (an item's trades can only
// alternate: a purchase, then the sale by the same user), nothing that rolled back is read,
// and the long transaction delays the feed without losing anything.
func TestFeedTailsEveryCommitOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("trades for seconds")
	}
	ctx := context.Background()
	st := storetest.OpenAt(t, drivertest.PostgresURL(t))
	stores := []*store.Store{st, storetest.OpenAt(t, st.Path()), storetest.OpenAt(t, st.Path())}
	reader := storetest.OpenAt(t, st.Path())
	items := []store.Item{storetest.AddItem(t, st, "Ant", 1), storetest.AddItem(t, st, "Bee", 2), storetest.AddItem(t, st, "Cat", 3)}
	untouched := storetest.AddItem(t, st, "Rolled back", 4)
	const writers = 8
	users := make([]store.User, writers)
	for i := range users {
		users[i] = storetest.CreateUser(t, st, fmt.Sprintf("writer%d", i))
	}
	start, err := reader.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}

	tail := newFeedTail(reader, start)
	go tail.run(t)
	defer tail.stop()

	w := startFeedWriters(stores, items, users)
	ok := &w.ok
	rollBack(t, st, untouched.ID, users[0].ID)
	holdHorizon(t, st, untouched.ID, ok, tail)
	rollBack(t, st, untouched.ID, users[1].ID)
	storetest.WaitFor(t, func() bool { return ok.Load() > 2000 })
	committed := w.stop()
	total := ok.Load()
	// A last purchase: the feed is in order, so once it is read, so is everything before it.
	sentinel := storetest.AddItem(t, st, "Sentinel", 5)
	if _, err := st.Buy(ctx, users[0].ID, sentinel.ID); err != nil {
		t.Fatal(err)
	}
	storetest.WaitFor(t, func() bool { return tail.count() > total })
	read := tail.take()
	if e := read[len(read)-1]; e.ItemID != sentinel.ID || int64(len(read)) != total+1 {
		t.Fatalf("%d events read, the last %+v; want %d trades, then the sentinel", len(read), e, total)
	}
	checkFeed(t, read[:len(read)-1], committed, untouched.ID)
}

// feedWriters trade, each as one user, until stopped: a purchase of a random item, or its sale
// when the writer owns it, on each instance in turn.
type feedWriters struct {
	ok   atomic.Int64 // trades committed
	done chan struct{}
	wg   sync.WaitGroup

	mu        sync.Mutex
	committed map[feedTrade]int
}

func startFeedWriters(stores []*store.Store, items []store.Item, users []store.User) *feedWriters {
	f := &feedWriters{done: make(chan struct{}), committed: map[feedTrade]int{}}
	for w, u := range users {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 16))
			owned := map[int64]bool{}
			for n := 0; ; n++ {
				select {
				case <-f.done:
					return
				default:
				}
				it := items[rng.IntN(len(items))].ID
				s := stores[(w+n)%len(stores)]
				kind, trade := "buy", s.Buy
				if owned[it] {
					kind, trade = "sell", s.Sell
				}
				if _, err := trade(context.Background(), u.ID, it); err != nil {
					continue
				}
				owned[it] = kind == "buy"
				f.mu.Lock()
				f.committed[feedTrade{it, u.ID, kind}]++
				f.mu.Unlock()
				f.ok.Add(1)
			}
		}()
	}
	return f
}

// stop ends the writers and returns the trades they committed.
func (f *feedWriters) stop() map[feedTrade]int {
	close(f.done)
	f.wg.Wait()
	return f.committed
}

// checkFeed compares the events read with the trades that committed.
func checkFeed(t *testing.T, read []store.MarketEvent, committed map[feedTrade]int, untouched int64) {
	t.Helper()
	seen := map[feedTrade]int{}
	last := map[int64]store.MarketEvent{} // each item's last event
	for i, e := range read {
		if i > 0 && e.Version < read[i-1].Version {
			t.Fatalf("event %d at version %d after one at %d", i, e.Version, read[i-1].Version)
		}
		if e.ItemID == untouched {
			t.Fatalf("a rolled back change was read: %+v", e)
		}
		prev, ok := last[e.ItemID]
		wantKind := "buy"
		if ok && prev.Kind == "buy" {
			wantKind = "sell"
		}
		if e.Kind != wantKind || (e.Kind == "sell" && e.UserID != prev.UserID) {
			t.Fatalf("item %d: %s by %d after %+v: out of commit order", e.ItemID, e.Kind, e.UserID, prev)
		}
		last[e.ItemID] = e
		seen[feedTrade{e.ItemID, e.UserID, e.Kind}]++
	}
	for k, n := range committed {
		if seen[k] != n {
			t.Errorf("%+v committed %d times, read %d times", k, n, seen[k])
		}
	}
	for k, n := range seen {
		if committed[k] == 0 {
			t.Errorf("%+v read %d times, never committed", k, n)
		}
	}
	t.Logf("%d trades read once each, in commit order per item", len(read))
}

// rollBack changes an item (its owner, as a purchase would) in a transaction that rolls back.
func rollBack(t *testing.T, st *store.Store, item, user int64) {
	t.Helper()
	tx, err := st.DB().Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE items SET owner_id = ? WHERE id = ?`, user, item); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
}

// holdHorizon keeps a writing transaction open while 300 more trades commit: the reader must
// not get past the trades that were in flight when it began (one per writer at most), and
// gets everything once it ends.
func holdHorizon(t *testing.T, st *store.Store, item int64, ok *atomic.Int64, tail *feedTail) {
	t.Helper()
	tx, err := st.DB().Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`UPDATE items SET description = 'held' WHERE id = ?`, item); err != nil {
		t.Fatal(err)
	}
	began := ok.Load()
	storetest.WaitFor(t, func() bool { return ok.Load() > began+300 })
	if n := tail.count(); n > began+8 {
		t.Errorf("the feed went past a running transaction: %d events read, %d trades had committed when it began", n, began)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	storetest.WaitFor(t, func() bool { return tail.count() > began+300 })
}

// feedTail follows ChangesSince from a version, as the live streams' broker does.
type feedTail struct {
	st     *store.Store
	cursor int64
	quit   chan struct{}
	ended  chan struct{}

	mu     sync.Mutex
	events []store.MarketEvent
}

func newFeedTail(st *store.Store, from int64) *feedTail {
	return &feedTail{st: st, cursor: from, quit: make(chan struct{}), ended: make(chan struct{})}
}

func (f *feedTail) run(t *testing.T) {
	defer close(f.ended)
	for {
		changed := f.st.Changed()
		c, err := f.st.ChangesSince(context.Background(), f.cursor, store.EventsKept, nil, store.AllPages)
		if err != nil || !c.Complete {
			t.Errorf("tail: %v, complete %v", err, c.Complete)
			return
		}
		f.mu.Lock()
		f.events = append(f.events, c.Events...)
		f.mu.Unlock()
		f.cursor = c.Version
		select {
		case <-f.quit:
			return
		case <-changed:
		}
	}
}

func (f *feedTail) stop() {
	close(f.quit)
	<-f.ended
}

func (f *feedTail) count() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int64(len(f.events))
}

func (f *feedTail) take() []store.MarketEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.MarketEvent(nil), f.events...)
}
