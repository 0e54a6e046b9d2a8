package live

import (
	"context"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/a-h/templ"

	"market/store"
)

// group is what one wake-up of the broker found, read in one snapshot: the version now, the
// events since the previous wake-up, and the page of the market at that version of each query
// the streams follow that the events may have changed. Every stream shares it.
type group struct {
	from    int64 // the version of the group before
	version int64
	events  []store.MarketEvent
	refresh bool // events were lost (pruned, or too many): every stream refreshes

	// untouched are the queries whose page is the same as at from: the events cannot have
	// changed it, so it was not read. Their viewers who took no part share quiet's events.
	untouched map[store.MarketQuery]bool
	quiet     *page

	reads *atomic.Int64 // counts the pages read for the group; nil: not counted

	mu    sync.Mutex
	pages map[store.MarketQuery]*page

	refreshOnce sync.Once
	refreshed   *group // g as a refresh, see asRefresh
}

// newGroup is the group of c, read after version from, with the pages c read; reads, if not
// nil, counts the pages read for it later.
func newGroup(from int64, c store.Changes, reads *atomic.Int64) *group {
	g := &group{
		from: from, version: c.Version, events: c.Events,
		refresh:   !c.Complete || len(c.Events) >= maxReplay,
		untouched: make(map[store.MarketQuery]bool, len(c.Untouched)),
		quiet:     newPage(),
		reads:     reads,
		pages:     make(map[store.MarketQuery]*page, len(c.Pages)),
	}
	for _, q := range c.Untouched {
		g.untouched[q.Normalize()] = true
	}
	for q, mp := range c.Pages {
		p := newPage()
		p.once.Do(func() { p.page, p.ids = mp, pageIDs(mp) })
		g.pages[q] = p
	}
	return g
}

// asRefresh is g for the streams that fell too far behind to be told what happened (give): at
// its version, with no events, it takes every viewer's page whole. Its pages are g's, and the
// ones g did not read it reads as a stream asks for them.
func (g *group) asRefresh() *group {
	g.refreshOnce.Do(func() {
		r := &group{from: g.from, version: g.version, refresh: true, untouched: map[store.MarketQuery]bool{},
			quiet: newPage(), reads: g.reads, pages: map[store.MarketQuery]*page{}}
		g.mu.Lock()
		maps.Copy(r.pages, g.pages)
		g.mu.Unlock()
		g.refreshed = r
	})
	return g.refreshed
}

// page is one page of the market at a group's version, and the events rendered for the
// viewers of that page who took no part in the group's trades: they all see the same bytes.
type page struct {
	once sync.Once
	page store.MarketPage
	ids  []int64 // of the page's rows, in order; shared, never changed

	keyOnce sync.Once
	key     string // rowsKey of ids, see idsKey
	err     error

	rowsOnce sync.Once // the rows are rendered when an event needs them all
	rows     templ.Component
	rowsErr  error

	mu     sync.RWMutex
	shared map[sharedKey]*sharedEvent // by the version and rows the viewer's page was at
}

func newPage() *page { return &page{shared: map[sharedKey]*sharedEvent{}} }

// sharedEvent is an event rendered once for several viewers.
type sharedEvent struct {
	once sync.Once
	data []byte // the whole event, ready to write; nil when it changes nothing the viewer sees
	err  error
}

// page is the viewer's page of the market at the group's version, read with the group, or
// else (a stream that came after the group was read) read once for all the streams that show
// it, then perhaps a little newer than the group.
func (g *group) page(views Renderer, q store.MarketQuery) (*page, error) {
	q = q.Normalize()
	g.mu.Lock()
	p := g.pages[q]
	if p == nil {
		p = newPage()
		g.pages[q] = p
	}
	g.mu.Unlock()
	p.once.Do(func() {
		if g.reads != nil {
			g.reads.Add(1)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var rows templ.Component
		p.page, rows, p.err = views.Market(ctx, g.version, q)
		p.ids = pageIDs(p.page)
		p.rowsOnce.Do(func() { p.rows = rows })
	})
	return p, p.err
}

// allRows is the page's rows, rendered once.
func (p *page) allRows(views Renderer) (templ.Component, error) {
	p.rowsOnce.Do(func() {
		p.rows, p.rowsErr = views.Rows(context.Background(), p.page)
	})
	return p.rows, p.rowsErr
}

// sharedEvent renders an event once for every viewer whose page was at version cursor with the
// rows shown (nil: unknown), whose key is shownKey: render's result is theirs too.
func (p *page) sharedEvent(cursor int64, shown []int64, shownKey string, render func() ([]byte, error)) ([]byte, error) {
	key := sharedKey{cursor, shown != nil, shownKey}
	p.mu.RLock()
	e := p.shared[key]
	p.mu.RUnlock()
	if e == nil {
		p.mu.Lock()
		if e = p.shared[key]; e == nil {
			e = &sharedEvent{}
			p.shared[key] = e
		}
		p.mu.Unlock()
	}
	e.once.Do(func() { e.data, e.err = render() })
	return e.data, e.err
}

// sharedKey names the viewers who share an event: their page's version and rows.
type sharedKey struct {
	cursor int64
	known  bool   // the rows shown are known
	shown  string // their ids, see rowsKey
}

// idsKey is rowsKey of the page's rows, built once (for the viewers who take the page as theirs),
// not at each event of each viewer.
func (p *page) idsKey() string {
	p.keyOnce.Do(func() { p.key = rowsKey(p.ids) })
	return p.key
}

// rowsKey is the ids of a page's rows as one string, a key of a map.
func rowsKey(ids []int64) string {
	key := make([]byte, 0, 8*len(ids))
	for _, id := range ids {
		key = strconv.AppendInt(key, id, 10)
		key = append(key, ',')
	}
	return string(key)
}
