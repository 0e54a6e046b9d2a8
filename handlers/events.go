package handlers

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"

	"market/components"
	"market/store"
)

// Live updates: GET /market/events is a Server-Sent Events stream of the market as one viewer
// sees it (DESIGN.md, "Live updates"). One broker per process wakes on store.Changed, reads the
// new events once, and hands the group to every stream; each stream renders it for its viewer
// (their page of the market, their items and budget) and writes one event whose id is the
// market version.

// maxReplay is the most events one group carries; more, and the streams refresh instead.
const maxReplay = 1000

// streamWriteTimeout bounds each write to a stream: a client that stops reading is dropped.
const streamWriteTimeout = 10 * time.Second

// liveGroup is what one wake-up of the broker found, read in one snapshot: the version now,
// the events since the previous wake-up, and the page of the market at that version of each
// query the streams follow, rendered once per query.
type liveGroup struct {
	version int64
	events  []store.MarketEvent
	refresh bool // events were lost (pruned, or too many): every stream refreshes

	mu    sync.Mutex
	pages map[store.MarketQuery]*livePage
}

// newGroup is the group of c, with the pages c read.
func (h *Handler) newGroup(c store.Changes) *liveGroup {
	g := &liveGroup{
		version: c.Version, events: c.Events,
		refresh: !c.Complete || len(c.Events) >= maxReplay,
		pages:   make(map[store.MarketQuery]*livePage, len(c.Pages)),
	}
	for q, page := range c.Pages {
		p := &livePage{shared: map[string]*sharedEvent{}}
		p.once.Do(func() { p.page, p.ids = page, pageIDs(page) })
		g.pages[q] = p
	}
	return g
}

// allRows is the page's rows, rendered once.
func (p *livePage) allRows() (templ.Component, error) {
	p.rowsOnce.Do(func() {
		m, err := renderMarket(context.Background(), p.page)
		p.rows, p.rowsErr = templ.Raw(m.rows), err
	})
	return p.rows, p.rowsErr
}

// livePage is one page of the market at a group's version, and the events rendered for the
// viewers of that page who took no part in the group's trades: they all see the same bytes.
type livePage struct {
	once sync.Once
	page store.MarketPage
	ids  []int64 // of the page's rows, in order; shared, never changed
	err  error

	rowsOnce sync.Once // the rows are rendered when an event needs them all
	rows     templ.Component
	rowsErr  error

	mu     sync.Mutex
	shared map[string]*sharedEvent // by the version and rows the viewer's page was at
}

type sharedEvent struct {
	once sync.Once
	data []byte // the whole event, ready to write; nil when it changes nothing the viewer sees
	err  error
}

// page is the viewer's page of the market at the group's version, read with the group, or
// else (a stream that came after the group was read) read once for all the streams that show
// it, then perhaps a little newer than the group.
func (g *liveGroup) page(h *Handler, q store.MarketQuery) (*livePage, error) {
	q = q.Normalize()
	g.mu.Lock()
	p := g.pages[q]
	if p == nil {
		p = &livePage{shared: map[string]*sharedEvent{}}
		g.pages[q] = p
	}
	g.mu.Unlock()
	p.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var rows templ.Component
		p.page, rows, p.err = h.market(context.WithValue(ctx, versionKey, g.version), q)
		p.ids = pageIDs(p.page)
		p.rowsOnce.Do(func() { p.rows = rows })
	})
	return p, p.err
}

// sharedEvent renders an event once for every viewer whose page was at version cursor with the
// rows shown: render's result is theirs too.
func (p *livePage) sharedEvent(cursor int64, shown []int64, render func() ([]byte, error)) ([]byte, error) {
	key := make([]byte, 0, 8*(len(shown)+1))
	if shown == nil { // rows unknown: every change counts as shown
		key = append(key, '?')
	}
	key = strconv.AppendInt(key, cursor, 10)
	for _, id := range shown {
		key = append(key, ',')
		key = strconv.AppendInt(key, id, 10)
	}
	p.mu.Lock()
	e := p.shared[string(key)]
	if e == nil {
		e = &sharedEvent{}
		p.shared[string(key)] = e
	}
	p.mu.Unlock()
	e.once.Do(func() { e.data, e.err = render() })
	return e.data, e.err
}

// stream is one open GET /market/events.
type stream struct {
	user    int64
	query   store.MarketQuery
	wake    chan struct{} // a group is waiting (capacity 1)
	evicted chan struct{} // closed when a newer stream of the same user took its place

	mu      sync.Mutex
	pending []*liveGroup
}

func (s *stream) take() []*liveGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.pending
	s.pending = nil
	return g
}

// broker fans the market's changes out to the streams of this process.
type broker struct {
	h       *Handler
	mu      sync.Mutex
	streams map[int64][]*stream // by user, oldest first
	started bool
	quit    chan struct{} // closed by StopStreams
	stop    sync.Once
}

func newBroker(h *Handler) *broker {
	return &broker{h: h, streams: map[int64][]*stream{}, quit: make(chan struct{})}
}

// StopStreams ends every live stream at once and refuses new ones; register it with
// http.Server.RegisterOnShutdown, since Shutdown waits for requests, and a stream never ends.
func (h *Handler) StopStreams() {
	h.live.stop.Do(func() { close(h.live.quit) })
}

// subscribe adds a stream. A user over the limit loses their oldest stream: at once beyond
// one over, else after evictGrace (a search opens its page's new stream before the old one is
// seen to close, and that one should go, not another tab's).
func (b *broker) subscribe(ctx context.Context, user int64, q store.MarketQuery, limit int) (*stream, error) {
	if err := b.start(ctx); err != nil {
		return nil, err
	}
	s := &stream{user: user, query: q, wake: make(chan struct{}, 1), evicted: make(chan struct{})}
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

// evictGrace is how long a user may have one stream over the limit.
const evictGrace = time.Second

// trim closes the user's oldest streams beyond keep; b.mu is held.
func (b *broker) trim(user int64, keep int) {
	list := b.streams[user]
	for len(list) > keep {
		close(list[0].evicted)
		list = list[1:]
	}
	if len(list) > 0 {
		b.streams[user] = list
	}
}

// start starts the broker, once, from a version read before any stream reads its own: a
// change committed between the two reads reaches the stream in the broker's first group.
func (b *broker) start(ctx context.Context) error {
	b.mu.Lock()
	started := b.started
	b.mu.Unlock()
	if started {
		return nil
	}
	changed := b.h.store.Changed() // before the read: a commit after it rings this bell
	last, err := b.h.store.Version(ctx)
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

func (b *broker) unsubscribe(s *stream) {
	b.mu.Lock()
	defer b.mu.Unlock()
	list := slices.DeleteFunc(b.streams[s.user], func(o *stream) bool { return o == s })
	if len(list) == 0 {
		delete(b.streams, s.user)
	} else {
		b.streams[s.user] = list
	}
}

// queries are the queries the open streams follow, each once.
func (b *broker) queries() []store.MarketQuery {
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

// OpenStreams is the number of live streams open in this process.
func (h *Handler) OpenStreams() int { return h.live.count() }

// count is the number of open streams.
func (b *broker) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, l := range b.streams {
		n += len(l)
	}
	return n
}

// loop wakes on each change of the market after version last, reads what happened once, and
// hands it out.
func (b *broker) loop(changed <-chan struct{}, last int64) {
	st := b.h.store
	ctx := context.Background()
	for {
		select {
		case <-b.quit:
			return
		case <-changed:
		}
		// The next doorbell before the reads: a trade committed while this group is read and
		// handed out rings it, and is not left waiting for the trade after it.
		changed = st.Changed()
		c, err := st.ChangesSince(ctx, last, maxReplay, b.queries())
		if err != nil {
			// Nothing is lost: the next try reads everything after last.
			b.h.logger.Error("live events", "err", err)
			changed = after(time.Second)
			continue
		}
		if c.Version == last {
			continue
		}
		g := b.h.newGroup(c)
		last = c.Version
		b.mu.Lock()
		for _, list := range b.streams {
			for _, s := range list {
				s.mu.Lock()
				s.pending = append(s.pending, g)
				s.mu.Unlock()
				select {
				case s.wake <- struct{}{}:
				default:
				}
			}
		}
		b.mu.Unlock()
	}
}

// liveURL is the address of a page's stream: its version and query.
func (h *Handler) liveURL(r *http.Request, q store.MarketQuery) (string, error) {
	version, err := h.requestVersion(r.Context())
	if err != nil {
		return "", err
	}
	v := url.Values{"since": {strconv.FormatInt(version, 10)}}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	if q.Sort != "" && q.Sort != store.SortName {
		v.Set("sort", q.Sort)
	}
	if q.Page > 1 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	return "/market/events?" + v.Encode(), nil
}

// marketEvents is GET /market/events: the live stream of one market page.
func (h *Handler) marketEvents(w http.ResponseWriter, r *http.Request) {
	user, ok := currentUser(r)
	if !ok {
		h.clientError(w, r, http.StatusUnauthorized, "Please log in to follow the market.")
		return
	}
	select {
	case <-h.live.quit:
		h.clientError(w, r, http.StatusServiceUnavailable, "The server is restarting. Reload the page in a moment.")
		return
	default:
	}
	query := r.URL.Query()
	q := store.MarketQuery{Q: query.Get("q"), Sort: query.Get("sort")}
	q.Page, _ = strconv.Atoi(query.Get("page"))
	q = q.Normalize()
	since, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
	if err != nil {
		since, err = strconv.ParseInt(query.Get("since"), 10, 64)
	}
	hasSince := err == nil && since > 0

	// The server's read and write timeouts are for requests, not streams: each write gets its
	// own deadline instead, and a read deadline would cancel the request's context.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})

	ctx := r.Context()
	s, err := h.live.subscribe(ctx, user.ID, q, h.cfg.StreamsPerUser)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	defer h.live.unsubscribe(s)
	// After subscribing, so that no group between is lost: the version, what was missed since
	// the page's version, and the page now, in one snapshot.
	limit := 0
	if hasSince {
		limit = maxReplay
	}
	c, err := h.store.ChangesSince(ctx, since, limit, []store.MarketQuery{q})
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	g := h.newGroup(c)

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	sw := &streamWriter{w: w, rc: rc}
	sw.buf.WriteString("retry: 1000\n\n") // reconnect after a second, not three
	ls := &liveStream{h: h, s: s, cursor: c.Version}
	if hasSince && since < c.Version {
		ls.cursor = since
		if err := ls.send(sw, g, true); err != nil {
			return
		}
	} else if err := ls.remember(g); err != nil {
		return
	}
	if sw.flush() != nil {
		return
	}

	ping := time.NewTicker(h.cfg.StreamPing)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.live.quit:
			return
		case <-s.evicted:
			// The user opened a newer stream: this one ends, and says so, so that the page
			// does not reconnect and take the newer one's place in turn.
			sw.buf.WriteString("event: close\ndata: another tab follows the market\n\n")
			sw.flush()
			return
		case <-ping.C:
			// A session ended meanwhile (logout, in another tab) ends the stream for good.
			if h.streamEnded(ctx, user.ID) { // see account.go
				sw.buf.WriteString("event: close\ndata: signed out\n\n")
				sw.flush()
				return
			}
			sw.buf.WriteString(": ping\n\n")
		case <-s.wake:
			for _, g := range s.take() {
				if err := ls.send(sw, g, false); err != nil {
					return
				}
			}
		}
		if sw.flush() != nil {
			return
		}
	}
}

// after is a channel closed after d.
func after(d time.Duration) <-chan struct{} {
	c := make(chan struct{})
	time.AfterFunc(d, func() { close(c) })
	return c
}

// streamWriter writes events with a deadline each, and flushes them.
type streamWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf bytes.Buffer
}

func (sw *streamWriter) flush() error {
	if sw.buf.Len() == 0 {
		return nil
	}
	sw.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	_, err := sw.w.Write(sw.buf.Bytes())
	sw.buf.Reset()
	if err == nil {
		err = sw.rc.Flush()
	}
	return err
}

// event appends one event: its id, name and data, each line of data on a data: line.
func (sw *streamWriter) event(id int64, name, data string) {
	sw.buf.WriteString("id: ")
	sw.buf.WriteString(strconv.FormatInt(id, 10))
	sw.buf.WriteString("\nevent: ")
	sw.buf.WriteString(name)
	sw.buf.WriteByte('\n')
	data = strings.ReplaceAll(strings.ReplaceAll(data, "\r\n", "\n"), "\r", "\n")
	for line := range strings.SplitSeq(data, "\n") {
		sw.buf.WriteString("data: ")
		sw.buf.WriteString(line)
		sw.buf.WriteByte('\n')
	}
	sw.buf.WriteByte('\n')
}

// liveStream is a stream's view of the market: what its page shows, and up to which version.
type liveStream struct {
	h      *Handler
	s      *stream
	cursor int64   // the version the page is up to
	shown  []int64 // the ids of the rows on its page of the market
}

func pageIDs(p store.MarketPage) []int64 {
	ids := make([]int64, len(p.Items))
	for i, it := range p.Items {
		ids[i] = it.ID
	}
	return ids
}

// remember takes the page at g's version as what the viewer's page shows.
func (ls *liveStream) remember(g *liveGroup) error {
	p, err := g.page(ls.h, ls.s.query)
	if err != nil {
		return err
	}
	ls.shown = p.ids
	return nil
}

// send appends the group's event for this stream's viewer; nothing when nothing the viewer
// sees changed. full sends the rows, items and budget whatever changed (a replay). A viewer who
// took no part in the group's trades gets the event rendered once for every viewer whose page
// was where theirs was.
func (ls *liveStream) send(sw *streamWriter, g *liveGroup, full bool) error {
	if g.version <= ls.cursor {
		return nil
	}
	var events []store.MarketEvent
	for _, e := range g.events {
		if e.Version > ls.cursor {
			events = append(events, e)
		}
	}
	p, err := g.page(ls.h, ls.s.query)
	if err != nil {
		ls.h.logger.Error("live page", "err", err)
		return err
	}
	full = full || g.refresh
	mine := full || slices.ContainsFunc(events, func(e store.MarketEvent) bool { return e.UserID == ls.s.user })
	render := func() ([]byte, error) { return ls.render(g, p, events, full, mine) }
	var data []byte
	if mine {
		data, err = render()
	} else {
		data, err = p.sharedEvent(ls.cursor, ls.shown, render)
	}
	if err != nil {
		return err
	}
	ls.cursor, ls.shown = g.version, p.ids
	sw.buf.Write(data)
	return nil
}

// render is the event of group g for this stream's viewer, whose page shows p after it: the
// changes, the rows that moved (all of them when full) and, when mine, the viewer's items and
// budget; nil when nothing the viewer sees changed.
func (ls *liveStream) render(g *liveGroup, p *livePage, events []store.MarketEvent, full, mine bool) ([]byte, error) {
	ids := p.ids
	edited := editedShown(events, ls.shown) // admin changes: see admin_live.go
	changes := make([]components.LiveChange, 0, len(events))
	for _, e := range events {
		if !isTrade(e) {
			continue
		}
		changes = append(changes, components.LiveChange{
			Row: "item-" + strconv.FormatInt(e.ItemID, 10), Bought: e.Kind == "buy", Name: e.ItemName,
			Mine: e.UserID == ls.s.user,
			// A replay does not know the page's rows: it counts every change as seen.
			Shown: ls.shown == nil || slices.Contains(ls.shown, e.ItemID) || slices.Contains(ids, e.ItemID),
		})
	}
	pageChanged := full || edited || !slices.Equal(ids, ls.shown)
	if !pageChanged && !mine && len(changes) == 0 {
		return nil, nil
	}
	var (
		owned  []store.Item
		budget *int64
	)
	if mine {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ctx = context.WithValue(ctx, versionKey, g.version)
		var err error
		if owned, err = ls.h.ownedItems(ctx, ls.s.user); err != nil {
			return nil, err
		}
		u, err := ls.h.user(ctx, g.version, ls.s.user)
		if err != nil {
			return nil, err
		}
		budget = &u.Budget
	}
	// The rows in full for a replay, else what changed: the page's rows keep their order, so
	// each new row goes before the next row that stays.
	var (
		rows templ.Component
		diff *components.LiveDiff
	)
	if !full && !edited && pageChanged {
		diff = rowDiff(ls.shown, p.page.Items)
	}
	if full || edited || (pageChanged && diff == nil) { // a replay, or no row stays: all of them
		var err error
		if rows, err = p.allRows(); err != nil {
			return nil, err
		}
	}
	var b strings.Builder
	if err := components.LiveUpdate(changes, g.refresh, &p.page, rows, diff, owned, budget).Render(context.Background(), &b); err != nil {
		return nil, err
	}
	var sw streamWriter
	sw.event(g.version, "market", b.String())
	return sw.buf.Bytes(), nil
}

// rowDiff is what turns the rows shown into items: the rows that left, and the new ones, each
// placed before the next row that stays, or after the row before it; nil when no row stays.
func rowDiff(shown []int64, items []store.Item) *components.LiveDiff {
	d := &components.LiveDiff{}
	stays := false
	now := make(map[int64]bool, len(items))
	for _, it := range items {
		now[it.ID] = true
	}
	was := make(map[int64]bool, len(shown))
	for _, id := range shown {
		was[id] = true
		stays = stays || now[id]
		if !now[id] {
			d.Removed = append(d.Removed, id)
		}
	}
	for i, it := range items {
		if was[it.ID] {
			continue
		}
		in := components.LiveInsert{Item: it}
		for _, after := range items[i+1:] {
			if was[after.ID] {
				in.Before = after.ID
				break
			}
		}
		if in.Before == 0 {
			if i == 0 {
				return nil
			}
			in.After = items[i-1].ID
		}
		d.Added = append(d.Added, in)
	}
	if !stays {
		return nil
	}
	return d
}
