package handlers

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/a-h/templ"

	"market/components"
	"market/store"
)

// versionCache keeps what was built from items and budgets at the newest market version (see
// store.Version). Between trades a market page, a user's items or a user's budget then cost no
// query, the version being read once per request anyway; the first trade after moves the
// version on and empties the cache, so no answer is staler than the database, whichever
// process wrote it. A version that is not exact (Store.Exact: PostgreSQL, while an older
// transaction still runs) passes the cache by: the request reads the database.
type versionCache[K comparable, V any] struct {
	mu      sync.Mutex
	version int64
	max     int // entries kept at most, bounding the memory a flood of distinct keys takes
	entries map[K]V
	exact   func(version int64) bool // the store's Exact
	hits    atomic.Int64             // answers given from the cache
}

func newVersionCache[K comparable, V any](max int, exact func(int64) bool) *versionCache[K, V] {
	return &versionCache[K, V]{max: max, entries: make(map[K]V), exact: exact}
}

func (c *versionCache[K, V]) get(version int64, key K) (V, bool) {
	if !c.exact(version) { // data read at it may be newer: it names no one state
		var zero V
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if version != c.version {
		var zero V
		return zero, false
	}
	v, ok := c.entries[key]
	if ok {
		c.hits.Add(1)
	}
	return v, ok
}

func (c *versionCache[K, V]) put(version int64, key K, v V) {
	if !c.exact(version) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case version < c.version:
		return
	case version > c.version || len(c.entries) >= c.max:
		c.version = version
		clear(c.entries)
	}
	c.entries[key] = v
}

// CacheHits is how many pages of the market, lists of a user's items and accounts the caches
// gave without reading the database.
func (h *Handler) CacheHits() int64 {
	return h.marketCache.hits.Load() + h.ownedCache.hits.Load() + h.userCache.hits.Load()
}

// cachedMarket is a market page with its rows rendered for no budget in particular
// (components.SharedRows).
type cachedMarket struct {
	page   store.MarketPage
	rows   string // the rendered rows of #item-rows
	cues   []components.RowCue
	frames *[8]atomic.Pointer[components.MarketFrame] // the full page's, by frameSlot
}

// frameSlot is the place among a page's frames of the one for c: shortcuts on or off, an admin or
// not, an address confirmed or not.
func frameSlot(c components.Chrome) int {
	slot := 0
	if c.Shortcuts {
		slot++
	}
	if c.Admin {
		slot += 2
	}
	if c.Unconfirmed != "" {
		slot += 4
	}
	return slot
}

// pageFor is the full market page of c and v (whose Page is m's), written from m's frame when it
// fits; the frame is made by the first page that needs it.
func (m cachedMarket) pageFor(ctx context.Context, c components.Chrome, v components.MarketView) templ.Component {
	slot := &m.frames[frameSlot(c)]
	f := slot.Load()
	if f == nil {
		var err error
		if f, err = components.NewMarketFrame(ctx, c, m.page); err != nil {
			return components.MarketPage(c, v) // the page says what fails
		}
		slot.Store(f)
	}
	if !f.Fits(c, v) {
		return components.MarketPage(c, v)
	}
	return f.Page(c, v)
}

// rowsFor is the page's rows as a buyer with budget sees them, made from the cached ones.
func (m cachedMarket) rowsFor(budget int64) templ.Component {
	return components.BuyerRows(m.page.Items, m.rows, m.cues, budget)
}

// requestVersion is the market version the request's data is read at (see authenticate), or a
// live stream's (events.go).
func (h *Handler) requestVersion(ctx context.Context) (int64, error) {
	if v, ok := ctx.Value(versionKey).(int64); ok {
		return v, nil
	}
	if s, ok := ctx.Value(userKey).(*signedIn); ok {
		return s.version, nil
	}
	return h.store.Version(ctx)
}

// market returns a page of the market and its rows rendered for no budget in particular, from
// the cache when nothing has changed since they were made.
func (h *Handler) market(ctx context.Context, q store.MarketQuery) (store.MarketPage, templ.Component, error) {
	m, _, err := h.pageData(ctx, &q, 0)
	if err != nil {
		return store.MarketPage{}, nil, err
	}
	return m.page, templ.Raw(m.rows), nil
}

// pageData is the market page q with its rows (when q is not nil) and the items of the user
// owner (when not 0): from the caches at the request's version, else what they lack is read in
// one snapshot with the version it saw (Store.ReadPage), and cached under that version when it
// is exact (the caches' put).
func (h *Handler) pageData(ctx context.Context, q *store.MarketQuery, owner int64) (cachedMarket, []store.Item, error) {
	version, err := h.requestVersion(ctx)
	if err != nil {
		return cachedMarket{}, nil, err
	}
	var (
		want  store.PageReads
		m     cachedMarket
		owned []store.Item
		ok    bool
	)
	if q != nil {
		key := q.Normalize() // the cache key: "?sort=junk" and "?sort=name" share one entry
		if m, ok = h.marketCache.get(version, key); !ok {
			want.Market = &key
		}
	}
	if owner != 0 {
		if owned, ok = h.ownedCache.get(version, owner); !ok {
			want.Owner = owner
		}
	}
	if want.Market == nil && want.Owner == 0 {
		return m, owned, nil
	}
	r, err := h.store.ReadPage(ctx, want)
	if err != nil {
		return cachedMarket{}, nil, err
	}
	if want.Market != nil {
		if m, err = renderMarket(ctx, r.Market); err != nil {
			return cachedMarket{}, nil, err
		}
		h.marketCache.put(r.Version, *want.Market, m)
	}
	if want.Owner != 0 {
		owned = r.Owned
		h.ownedCache.put(r.Version, owner, owned)
	}
	return m, owned, nil
}

// renderMarket renders page's rows for no budget in particular.
func renderMarket(ctx context.Context, page store.MarketPage) (cachedMarket, error) {
	rows, cues, err := components.SharedRows(ctx, page.Items)
	return cachedMarket{page: page, rows: rows, cues: cues, frames: new([8]atomic.Pointer[components.MarketFrame])}, err
}

// cached reads a value through cache: at version, from the cache if there, else by read, kept
// only if the version did not move while it was read (else it may be newer than version).
func cached[K comparable, V any](ctx context.Context, h *Handler, c *versionCache[K, V], version int64, key K, read func() (V, error)) (V, error) {
	if v, ok := c.get(version, key); ok {
		return v, nil
	}
	v, err := read()
	if err != nil {
		return v, err
	}
	if after, err := h.store.Version(ctx); err == nil && after == version {
		c.put(version, key, v)
	}
	return v, nil
}

// ownedItems returns the items a user owns.
func (h *Handler) ownedItems(ctx context.Context, userID int64) ([]store.Item, error) {
	_, owned, err := h.pageData(ctx, nil, userID)
	return owned, err
}

// versionedUser reads the market version and the signed-in user in one round trip, the
// request's first read: the user comes with the version at no cost, cached or not, and goes
// into the cache for the live streams' accounts.
func (h *Handler) versionedUser(ctx context.Context, id int64) (int64, store.User, error) {
	version, u, err := h.store.VersionedUser(ctx, id)
	if err == nil {
		h.userCache.put(version, id, u)
	}
	return version, u, err
}

// sessionUser is the market version and the signed-in user id: as the session's load read
// them, when it did (PostgreSQL) and its row names the same user as its data; else read now.
func (h *Handler) sessionUser(ctx context.Context, id int64) (int64, store.User, error) {
	su := store.SessionUserOf(ctx)
	if su == nil || !su.Read || su.UserID != id {
		return h.versionedUser(ctx, id)
	}
	if su.Err == nil {
		h.userCache.put(su.Version, id, su.User)
	}
	return su.Version, su.User, su.Err
}

// user returns an account, budget included, as of version.
func (h *Handler) user(ctx context.Context, version, id int64) (store.User, error) {
	return cached(ctx, h, h.userCache, version, id, func() (store.User, error) {
		return h.store.User(ctx, id)
	})
}
