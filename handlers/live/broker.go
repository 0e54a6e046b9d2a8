package live

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/a-h/templ"

	"market/store"
)

// Feed is the market's change feed: *store.Store is one.
type Feed interface {
	// Changed is closed when the market version may have moved; fetch it again after each.
	Changed() <-chan struct{}
	// Version is the market version now.
	Version(ctx context.Context) (int64, error)
	// ChangesSince reads in one snapshot the version, up to limit events after since, and
	// the page of each query.
	ChangesSince(ctx context.Context, since int64, limit int, queries []store.MarketQuery) (store.Changes, error)
}

// Renderer is what the streams take from the rest of the application: pages, rows and
// accounts, from its caches where it keeps them.
type Renderer interface {
	// Market is the page of the market q asks for, as of version, and its rows rendered.
	Market(ctx context.Context, version int64, q store.MarketQuery) (store.MarketPage, templ.Component, error)
	// Rows renders the rows of a page (the content of #item-rows).
	Rows(ctx context.Context, page store.MarketPage) (templ.Component, error)
	// Account is a user's items and budget as of version.
	Account(ctx context.Context, version, user int64) (owned []store.Item, budget int64, err error)
}

// Config tunes the streams; every field is needed.
type Config struct {
	// Ping is how often an idle stream gets a ": ping" comment.
	Ping time.Duration
	// PerUser is how many streams one user may have open; one more closes the oldest after
	// a second's grace, unless one closes meanwhile.
	PerUser int
	// SignedIn reports whether the session of a stream's request still exists (asked at each
	// ping): when it does not, the stream ends for good. An error should count as signed in.
	SignedIn func(ctx context.Context) bool
}

// maxReplay is the most events one group carries; more, and the streams refresh instead.
const maxReplay = 1000

// evictGrace is how long a user may have one stream over the limit.
const evictGrace = time.Second

// Broker fans the market's changes out to the streams of this process: one per process.
type Broker struct {
	feed   Feed
	views  Renderer
	logger *slog.Logger
	cfg    Config

	mu      sync.Mutex
	streams map[int64][]*subscription // by user, oldest first
	started bool
	quit    chan struct{} // closed by Stop
	stop    sync.Once
}

// NewBroker is a broker with no streams yet; the first stream starts it.
func NewBroker(feed Feed, views Renderer, logger *slog.Logger, cfg Config) *Broker {
	return &Broker{feed: feed, views: views, logger: logger, cfg: cfg,
		streams: map[int64][]*subscription{}, quit: make(chan struct{})}
}

// Stop ends every stream at once and refuses new ones; register it with
// http.Server.RegisterOnShutdown, since Shutdown waits for requests, and a stream never ends.
func (b *Broker) Stop() {
	b.stop.Do(func() { close(b.quit) })
}

// stopped reports whether Stop was called.
func (b *Broker) stopped() bool {
	select {
	case <-b.quit:
		return true
	default:
		return false
	}
}

// Count is the number of streams open.
func (b *Broker) Count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, l := range b.streams {
		n += len(l)
	}
	return n
}

// subscription is one open stream, as the broker knows it.
type subscription struct {
	user    int64
	query   store.MarketQuery // normalized
	wake    chan struct{}     // a group is waiting (capacity 1)
	evicted chan struct{}     // closed when a newer stream of the same user took its place

	mu      sync.Mutex
	pending []*group
}

// take is the groups waiting for the stream, oldest first.
func (s *subscription) take() []*group {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.pending
	s.pending = nil
	return g
}

// give queues a group for the stream, and wakes it.
func (s *subscription) give(g *group) {
	s.mu.Lock()
	s.pending = append(s.pending, g)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// subscribe adds a stream. A user over the limit loses their oldest stream: at once beyond
// one over, else after evictGrace (a search opens its page's new stream before the old one is
// seen to close, and that one should go, not another tab's).
func (b *Broker) subscribe(ctx context.Context, user int64, q store.MarketQuery) (*subscription, error) {
	if err := b.start(ctx); err != nil {
		return nil, err
	}
	s := &subscription{user: user, query: q, wake: make(chan struct{}, 1), evicted: make(chan struct{})}
	limit := b.cfg.PerUser
	b.mu.Lock()
	defer b.mu.Unlock()
	b.streams[user] = append(b.streams[user], s)
	b.trim(user, limit+1)
	if len(b.streams[user]) > limit {
		time.AfterFunc(evictGrace, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.trim(user, limit)
		})
	}
	return s, nil
}

// trim closes the user's oldest streams beyond keep; b.mu is held.
func (b *Broker) trim(user int64, keep int) {
	list := b.streams[user]
	for len(list) > keep {
		close(list[0].evicted)
		list = list[1:]
	}
	if len(list) > 0 {
		b.streams[user] = list
	}
}

func (b *Broker) unsubscribe(s *subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	list := slices.DeleteFunc(b.streams[s.user], func(o *subscription) bool { return o == s })
	if len(list) == 0 {
		delete(b.streams, s.user)
	} else {
		b.streams[s.user] = list
	}
}

// queries are the queries the open streams follow, each once.
func (b *Broker) queries() []store.MarketQuery {
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := map[store.MarketQuery]bool{}
	var qs []store.MarketQuery
	for _, list := range b.streams {
		for _, s := range list {
			if !seen[s.query] {
				seen[s.query] = true
				qs = append(qs, s.query)
			}
		}
	}
	return qs
}

// start starts the broker, once, from a version read before any stream reads its own: a
// change committed between the two reads reaches the stream in the broker's first group.
func (b *Broker) start(ctx context.Context) error {
	b.mu.Lock()
	started := b.started
	b.mu.Unlock()
	if started {
		return nil
	}
	changed := b.feed.Changed() // before the read: a commit after it rings this bell
	last, err := b.feed.Version(ctx)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.started { // else another stream started it, from a version read earlier still
		b.started = true
		go b.loop(changed, last)
	}
	return nil
}

// loop wakes on each change of the market after version last, reads what happened once, and
// hands it to every stream.
func (b *Broker) loop(changed <-chan struct{}, last int64) {
	ctx := context.Background()
	for {
		select {
		case <-b.quit:
			return
		case <-changed:
		}
		// The next doorbell before the reads: a trade committed while this group is read and
		// handed out rings it, and is not left waiting for the trade after it.
		changed = b.feed.Changed()
		c, err := b.feed.ChangesSince(ctx, last, maxReplay, b.queries())
		if err != nil {
			// Nothing is lost: the next try reads everything after last.
			b.logger.Error("live events", "err", err)
			changed = after(time.Second)
			continue
		}
		if c.Version == last {
			continue
		}
		last = c.Version
		g := newGroup(c)
		b.mu.Lock()
		for _, list := range b.streams {
			for _, s := range list {
				s.give(g)
			}
		}
		b.mu.Unlock()
	}
}

// after is a channel closed after d.
func after(d time.Duration) <-chan struct{} {
	c := make(chan struct{})
	time.AfterFunc(d, func() { close(c) })
	return c
}
