package handlers

import (
	"context"
	"strings"
	"sync"

	"github.com/a-h/templ"

	"market/components"
	"market/store"
)

// versionCache keeps what was built from the catalogue at its newest version. Between trades a
// market page or a user's list then costs one primary-key read (the version) instead of queries
// and rendering; the first trade after moves the version on and empties the cache, so no answer
// is ever staler than the database, whichever process wrote it.
type versionCache[K comparable, V any] struct {
	mu      sync.Mutex
	version int64
	max     int // entries kept at most, bounding the memory a flood of distinct keys takes
	entries map[K]V
}

func newVersionCache[K comparable, V any](max int) *versionCache[K, V] {
	return &versionCache[K, V]{max: max, entries: make(map[K]V)}
}

func (c *versionCache[K, V]) get(version int64, key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if version != c.version {
		var zero V
		return zero, false
	}
	v, ok := c.entries[key]
	return v, ok
}

func (c *versionCache[K, V]) put(version int64, key K, v V) {
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

// cachedMarket is a market page with its rows rendered.
type cachedMarket struct {
	page store.MarketPage
	rows string // the rendered rows of #item-rows
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

// ownedItems returns the items a user owns, from the cache when the catalogue has not changed.
func (h *Handler) ownedItems(ctx context.Context, userID int64) ([]store.Item, error) {
	version, err := h.store.CatalogueVersion(ctx)
	if err != nil {
		return nil, err
	}
	if items, ok := h.ownedCache.get(version, userID); ok {
		return items, nil
	}
	items, err := h.store.OwnedItems(ctx, userID)
	if err != nil {
		return nil, err
	}
	// Read afterwards, the version proves no trade landed in between; else the list is newer
	// than version, and is not cached under it.
	if after, err := h.store.CatalogueVersion(ctx); err == nil && after == version {
		h.ownedCache.put(version, userID, items)
	}
	return items, nil
}
