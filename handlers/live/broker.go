package live

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
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
	// the page of each query (or of each query the events may have changed).
	ChangesSince(ctx context.Context, since int64, limit int, queries []store.MarketQuery, pages store.Pages) (store.Changes, error)
	// Exact reports whether a version names one state of the market (see store.Store.Exact).
	Exact(version int64) bool
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
	// SignedIn reports, for each viewer, whether the session its stream was opened with still
	// signs it in: asked at each ping, in one call for all the streams whose ping is due. A
	// stream whose viewer is not ends for good; a failed read should count as signed in.
	SignedIn func(ctx context.Context, who []Viewer) []bool
	// MaxStreams is how many streams the process serves at most, and PerAddr how many from
	// one address (as the rate limits see it): past either a new stream is refused.
	MaxStreams int
	PerAddr    int
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

	run *runQueue // the streams with something to write, for the workers

	mu      sync.Mutex
	streams map[int64][]*subscription // by user, oldest first, less those told to close
	all     map[*subscription]bool    // every stream subscribed
	open    int                       // streams subscribed
	byAddr  map[string]int            // streams subscribed, by address
	byUser  map[int64]int             // streams subscribed, by user, closed or not
	byQuery map[store.MarketQuery]int // streams subscribed, by query
	wheel   wheel                     // the streams to ping, but those told to close
	started bool
	quit    chan struct{} // closed by Stop
	stop    sync.Once

	pagesRead atomic.Int64 // pages of the market read for the groups, see PagesRead
}

// NewBroker is a broker with no streams yet; the first stream starts it.
func NewBroker(feed Feed, views Renderer, logger *slog.Logger, cfg Config) *Broker {
	return &Broker{feed: feed, views: views, logger: logger, cfg: cfg,
		run: newRunQueue(), streams: map[int64][]*subscription{}, all: map[*subscription]bool{}, byAddr: map[string]int{}, byUser: map[int64]int{}, byQuery: map[store.MarketQuery]int{}, wheel: newWheel(cfg.Ping), quit: make(chan struct{})}
}

// Stop ends every stream at once and refuses new ones; register it with
// http.Server.RegisterOnShutdown: Shutdown neither waits for nor closes a connection a stream
// took over.
func (b *Broker) Stop() {
	b.stop.Do(func() { close(b.quit) })
	b.mu.Lock()
	all := make([]*subscription, 0, len(b.all))
	for s := range b.all {
		all = append(all, s)
	}
	b.mu.Unlock()
	for _, s := range all {
		s.finish()
	}
	b.run.close()
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
	return b.open
}

// PagesRead is how many pages of the market the broker has read to follow the trades: in the
// snapshot of each change, and for a stream that came after the snapshot. It grows with the
// pages the trades can change, not with the searches the streams follow.
func (b *Broker) PagesRead() int64 { return b.pagesRead.Load() }

// queries are the queries the open streams follow, each once.
func (b *Broker) queries() []store.MarketQuery {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Collect(maps.Keys(b.byQuery))
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
		go b.pings()
		for range workers() {
			go b.run.work()
		}
	}
	return nil
}

// loop wakes on each change of the market after version last, reads what happened once, and
// hands it to every stream.
func (b *Broker) loop(changed <-chan struct{}, last int64) {
	ctx := context.Background()
	var inexact time.Time // since when the reads have found no exact version
	for {
		select {
		case <-b.quit:
			return
		case <-changed:
		}
		// The next doorbell before the reads: a trade committed while this group is read and
		// handed out rings it, and is not left waiting for the trade after it.
		changed = b.feed.Changed()
		c, err := b.read(ctx, last, &inexact)
		if err != nil {
			// Nothing is lost: the next try reads everything after last.
			b.logger.Error("live events", "err", err)
			changed = after(time.Second)
			continue
		}
		if c.Version == last {
			continue
		}
		b.pagesRead.Add(int64(len(c.Pages)))
		g := newGroup(last, c, &b.pagesRead)
		last = c.Version
		b.handOut(g)
	}
}

// maxInexact is how long the broker waits for an exact version (PostgreSQL: no transaction of
// the market's database older than the newest change still running; each ChangesSince looks
// for one for a while itself) before it hands out what a snapshot shows.
const maxInexact = 2 * time.Second

// read is the changes after version last, as of an exact version: the pages of an inexact
// one may already show changes whose events are not final yet, and their rows would move
// before the trades that moved them are told. So an inexact read is not handed out (its
// version is last: nothing happens, and the store rings again in a moment), unless the reads
// have been inexact for maxInexact (a long transaction of the market's database holds the
// horizon back; another database's does not): then the group is what the snapshot shows,
// every page read, and the trades' markers follow later.
func (b *Broker) read(ctx context.Context, last int64, inexact *time.Time) (store.Changes, error) {
	c, err := b.feed.ChangesSince(ctx, last, maxReplay, b.queries(), store.TouchedPages)
	if err != nil || b.feed.Exact(c.Version) {
		*inexact = time.Time{}
		return c, err
	}
	if inexact.IsZero() {
		*inexact = time.Now()
	}
	if time.Since(*inexact) < maxInexact {
		return store.Changes{Version: last}, nil
	}
	*inexact = time.Time{}
	return b.feed.ChangesSince(ctx, last, maxReplay, b.queries(), store.AllPages)
}

// handOut gives g to every stream: first to those whose page it changed, whose viewers see
// rows move, then to those that get the markers alone. It holds the broker's lock only to list
// them: a stream that subscribes after the list reads its page after g was read, and needs
// nothing of g.
func (b *Broker) handOut(g *group) {
	b.mu.Lock()
	touched, quiet := make([]*subscription, 0, b.open), []*subscription(nil)
	for _, list := range b.streams {
		for _, s := range list {
			if g.untouched[s.query] {
				quiet = append(quiet, s)
			} else {
				touched = append(touched, s)
			}
		}
	}
	b.mu.Unlock()
	// The streams go on the run queue a few at a time, the workers starting on the first while
	// the rest are given theirs.
	ready := make([]*subscription, 0, handOutBatch)
	for _, list := range [][]*subscription{touched, quiet} {
		for _, s := range list {
			if s.give(g) {
				ready = append(ready, s)
			}
			if len(ready) == handOutBatch {
				b.run.pushAll(ready)
				ready = ready[:0]
			}
		}
	}
	b.run.pushAll(ready)
}

// handOutBatch is how many streams handOut puts on the run queue at once.
const handOutBatch = 64

// after is a channel closed after d.
func after(d time.Duration) <-chan struct{} {
	c := make(chan struct{})
	time.AfterFunc(d, func() { close(c) })
	return c
}
