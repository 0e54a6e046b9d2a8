package live

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/a-h/templ"

	"market/components"
	"market/store"
	"market/store/storetest"
)

// testViews renders straight from the store, without the application's caches.
type testViews struct{ st *store.Store }

func (v testViews) Market(ctx context.Context, _ int64, q store.MarketQuery) (store.MarketPage, templ.Component, error) {
	p, err := v.st.Market(ctx, q)
	return p, components.ItemRows(p.Items, components.NoBudget), err
}

func (v testViews) Rows(_ context.Context, p store.MarketPage) (templ.Component, error) {
	return components.ItemRows(p.Items, components.NoBudget), nil
}

func (v testViews) Account(ctx context.Context, _, user int64) ([]store.Item, int64, error) {
	owned, err := v.st.OwnedItems(ctx, user)
	if err != nil {
		return nil, 0, err
	}
	u, err := v.st.User(ctx, user)
	return owned, u.Budget, err
}

// newTestBroker is a broker over a seeded store (SQLite, or PostgreSQL when the tests ask).
func newTestBroker(t *testing.T, perUser int) (*Broker, *store.Store) {
	t.Helper()
	return newTestBrokerConfig(t, Config{Ping: time.Minute, PerUser: perUser, SignedIn: func(_ context.Context, who []Viewer) []bool {
		in := make([]bool, len(who))
		for i := range in {
			in[i] = true
		}
		return in
	}})
}

// newTestBrokerConfig is a broker of cfg over a seeded store.
func newTestBrokerConfig(t *testing.T, cfg Config) (*Broker, *store.Store) {
	t.Helper()
	st := storetest.Open(t)
	if _, err := st.Seed(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := NewBroker(st, testViews{st}, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	t.Cleanup(b.Stop)
	return b, st
}

func (b *Broker) mustSubscribe(t *testing.T, user int64, q store.MarketQuery) *subscription {
	t.Helper()
	s, err := b.subscribe(context.Background(), Viewer{User: user}, q.Normalize())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// nextGroup is the newest group handed to s (a stream with no connection: its groups wait),
// waiting up to a few seconds for one.
func nextGroup(t *testing.T, s *subscription) *group {
	t.Helper()
	var gs []*group
	waitFor(t, "a group for the stream", 3*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		gs, s.pending = s.pending, nil
		return len(gs) > 0
	})
	return gs[len(gs)-1]
}

// told reports whether s was asked to close.
func told(s *subscription) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leaving
}

// waitFor waits up to wait for cond.
func waitFor(t *testing.T, what string, wait time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(wait); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, wait)
		}
	}
}

// A trade wakes the broker, which reads once and hands every stream the same group: the
// version after the trade, its event, and the page of each query followed that the trade can
// change, as of that version.
func TestBrokerHandsEachTradeToEveryStream(t *testing.T) {
	b, st := newTestBroker(t, 4)
	ctx := context.Background()
	ann, err := st.CreateUser(ctx, "ann", "ann@example.com", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	all, lamps := store.MarketQuery{}.Normalize(), store.MarketQuery{Q: "lamp"}.Normalize()
	sa, sl := b.mustSubscribe(t, ann.ID, all), b.mustSubscribe(t, ann.ID+1, lamps)
	before, err := st.Market(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	mouse := before.Items[slices.IndexFunc(before.Items, func(it store.Item) bool { return it.Name == "Mouse" })]
	if _, err := st.Buy(ctx, ann.ID, mouse.ID); err != nil {
		t.Fatal(err)
	}
	g, gl := nextGroup(t, sa), nextGroup(t, sl)
	version, err := st.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g != gl || g.version != version || g.refresh {
		t.Fatalf("groups %p and %p at version %d (refresh %v), want one group at %d", g, gl, g.version, g.refresh, version)
	}
	if n := len(g.events); n != 1 || g.events[0].ItemID != mouse.ID || g.events[0].Kind != "buy" || g.events[0].UserID != ann.ID {
		t.Fatalf("events %+v, want ann's purchase of item %d", g.events, mouse.ID)
	}
	// The mouse matches no lamp search: that page is not read, its streams know it as it was.
	if len(g.pages) != 1 || g.pages[all] == nil || !g.untouched[lamps] {
		t.Fatalf("pages read %v, untouched %v: want the whole market's only, the lamps' untouched", g.pages, g.untouched)
	}
	p, err := g.page(b.views, all)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(p.ids, mouse.ID) || len(p.ids) != len(before.Items)-1 {
		t.Errorf("the page after the purchase shows %v, want the rows but the mouse", p.ids)
	}
}

// One stream over a user's limit closes their oldest after the grace, two over close one at
// once; the newest stay.
func TestBrokerCapsStreamsPerUser(t *testing.T) {
	b, _ := newTestBroker(t, 2)
	s1, s2 := b.mustSubscribe(t, 7, store.MarketQuery{}), b.mustSubscribe(t, 7, store.MarketQuery{})
	opened := time.Now()
	s3 := b.mustSubscribe(t, 7, store.MarketQuery{})
	other := b.mustSubscribe(t, 8, store.MarketQuery{}) // another user's count is their own
	s4 := b.mustSubscribe(t, 7, store.MarketQuery{})
	if !told(s1) {
		t.Fatal("two streams over the limit: the oldest still open")
	}
	waitFor(t, "one over the limit: the oldest to close after the grace", 3*evictGrace, func() bool { return told(s2) })
	if waited := time.Since(opened); waited < evictGrace {
		t.Errorf("one over the limit closed after %s, within the grace", waited)
	}
	for _, s := range []*subscription{s3, s4, other} {
		if told(s) {
			t.Fatal("a stream within the limit was closed")
		}
	}
	for _, s := range []*subscription{s1, s2} {
		b.unsubscribe(s) // as Serve does when its stream ends
	}
	if n := b.Count(); n != 3 {
		t.Errorf("%d streams open, want 3", n)
	}
}

// The process's cap and an address's refuse a stream past them, and one that ends makes
// room; a user whose closed streams have not ended yet is refused at twice their limit.
func TestBrokerCapsStreams(t *testing.T) {
	b, _ := newTestBroker(t, 2)
	b.cfg.MaxStreams, b.cfg.PerAddr = 4, 2
	ctx, q := context.Background(), store.MarketQuery{}.Normalize()
	subscribe := func(user int64, addr string) (*subscription, error) {
		return b.subscribe(ctx, Viewer{User: user, Addr: addr}, q)
	}
	first, _ := subscribe(1, "192.0.2.1")
	subscribe(2, "192.0.2.1")
	if _, err := subscribe(3, "192.0.2.1"); err != ErrTooManyFromAddr {
		t.Fatalf("a third stream from one address: %v, want ErrTooManyFromAddr", err)
	}
	b.unsubscribe(first)
	if _, err := subscribe(3, "192.0.2.1"); err != nil {
		t.Fatalf("after one ended: %v", err)
	}
	subscribe(5, "192.0.2.5")
	subscribe(6, "192.0.2.6")
	if _, err := subscribe(7, "192.0.2.7"); err != ErrTooManyStreams {
		t.Fatalf("a fifth stream of the process: %v, want ErrTooManyStreams", err)
	}
	// The user's third and fourth streams close the oldest two, which have not ended yet.
	b.cfg.MaxStreams = 100
	for i := range 4 {
		if _, err := subscribe(8, fmt.Sprintf("198.51.100.%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := subscribe(8, "198.51.100.9"); err != ErrTooManyForUser {
		t.Fatalf("a fifth stream while two closed ones linger: %v, want ErrTooManyForUser", err)
	}
}
