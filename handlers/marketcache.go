package handlers

import (
	"context"
	"strings"
	"sync"

	"github.com/a-h/templ"

	"market/components"
	"market/store"
)

// marketCache keeps market pages, with their rows rendered, at the newest catalogue version.
// Between trades a page then costs one primary-key read (the version) instead of a query and
// rendering every row; the first trade after moves the version on and empties the cache, so
// no answer is ever staler than the database.
type marketCache struct {
	mu      sync.Mutex
	version int64
	pages   map[store.MarketQuery]cachedMarket
}

type cachedMarket struct {
	page store.MarketPage
	rows string // the rendered rows of #item-rows
}

// maxCachedPages bounds the memory a flood of distinct searches can take (~20 KB a page).
const maxCachedPages = 256

func newMarketCache() *marketCache {
	return &marketCache{pages: make(map[store.MarketQuery]cachedMarket)}
}

func (c *marketCache) get(version int64, q store.MarketQuery) (cachedMarket, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if version != c.version {
		return cachedMarket{}, false
	}
	m, ok := c.pages[q]
	return m, ok
}

func (c *marketCache) put(version int64, q store.MarketQuery, m cachedMarket) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case version < c.version:
		return
	case version > c.version || len(c.pages) >= maxCachedPages:
		c.version = version
		clear(c.pages)
	}
	c.pages[q] = m
}

// market returns a page of the market and its rendered rows, from the cache when the
// catalogue has not changed since they were made.
func (h *Handler) market(ctx context.Context, q store.MarketQuery) (store.MarketPage, templ.Component, error) {
	version, err := h.store.CatalogueVersion(ctx)
	if err != nil {
		return store.MarketPage{}, nil, err
	}
	if m, ok := h.marketCache.get(version, q); ok {
		return m.page, templ.Raw(m.rows), nil
	}
	page, err := h.store.Market(ctx, q)
	if err != nil {
		return store.MarketPage{}, nil, err
	}
	var b strings.Builder
	if err := components.ItemRows(page.Items).Render(ctx, &b); err != nil {
		return store.MarketPage{}, nil, err
	}
	rows := b.String()
	if page.Version != 0 {
		h.marketCache.put(page.Version, q, cachedMarket{page: page, rows: rows})
	}
	return page, templ.Raw(rows), nil
}
