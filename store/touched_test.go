package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"market/store"
	"market/store/storetest"
)

// With TouchedPages, a trade's snapshot reads the page of every search its item matches, as
// the search matches (name or description, any letter case, % and _ literal), and of no other:
// every page not read is the same after the trade as before it.
func TestChangesSinceReadsTheTouchedPages(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := storetest.Open(t) // SQLite, or PostgreSQL when MARKET_TEST_POSTGRES says so
		if _, err := st.Seed(ctx); err != nil {
			t.Fatal(err)
		}
		u, err := st.CreateUser(ctx, "ann", "ann@example.com", "correct horse")
		if err != nil {
			t.Fatal(err)
		}
		mouse := itemNamed(t, st, "Mouse")
		queries := []store.MarketQuery{
			{}, {Sort: store.SortPrice}, // every item matches the empty search
			{Q: "mOUSE"}, {Q: "SILENT scroll", Sort: store.SortPriceDesc}, {Q: "wire"}, // the mouse's name, description
			{Q: "zebra"}, {Q: "%"}, {Q: "_"}, {Q: "m%e"}, {Q: "mous_"}, {Q: "kettle", Page: 2},
		}
		want := map[string]bool{"": true, "mOUSE": true, "SILENT scroll": true, "wire": true}
		before := pages(t, st, queries)
		since, _ := st.Version(ctx)
		if _, err := st.Buy(ctx, u.ID, mouse.ID); err != nil {
			t.Fatal(err)
		}
		c := exactChanges(t, st, since, store.EventsKept, queries)
		after := pages(t, st, queries)
		for i, q := range queries {
			_, read := c.Pages[q.Normalize()]
			untouched := slices.Contains(c.Untouched, q.Normalize())
			if read != want[q.Q] || untouched == read {
				t.Errorf("search %q: page read %v, untouched %v; want read %v", q.Q, read, untouched, want[q.Q])
			}
			if !read && !slices.Equal(before[i], after[i]) {
				t.Errorf("search %q: not read, but its page changed from %v to %v", q.Q, before[i], after[i])
			}
		}
		// A version that did not move (a second wake-up for one change) touches no page.
		same := exactChanges(t, st, c.Version, store.EventsKept, queries)
		if len(same.Pages) != 0 || len(same.Untouched) != len(queries) {
			t.Errorf("no change: %d pages read, %d untouched; want none read", len(same.Pages), len(same.Untouched))
		}
		// With no event to tell what changed (the version moved for something else), every page is read.
		c = exactChanges(t, st, c.Version-1, 0, queries)
		if len(c.Untouched) != 0 || len(c.Pages) != len(queries) {
			t.Errorf("no events: %d pages read, %d untouched; want all read", len(c.Pages), len(c.Untouched))
		}
	})
}

// exactChanges is ChangesSince with TouchedPages at an exact version, as the live broker takes
// them: on PostgreSQL a read while an older transaction of the store's database runs (a trade
// in flight) is not exact for a moment, and reads no page.
func exactChanges(t *testing.T, st *store.Store, since int64, limit int, queries []store.MarketQuery) store.Changes {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) { // polling
		c, err := st.ChangesSince(context.Background(), since, limit, queries, store.TouchedPages)
		if err != nil {
			t.Fatal(err)
		}
		if st.Exact(c.Version) || time.Now().After(end) {
			return c
		}
	}
}

// pages are the ids of each query's page now.
func pages(t *testing.T, st *store.Store, queries []store.MarketQuery) [][]int64 {
	t.Helper()
	var ids [][]int64
	for _, q := range queries {
		p, err := st.Market(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		var page []int64
		for _, it := range p.Items {
			page = append(page, it.ID)
		}
		ids = append(ids, page)
	}
	return ids
}

// itemNamed is the demo catalogue's item of that name.
func itemNamed(t *testing.T, st *store.Store, name string) store.Item {
	t.Helper()
	p, err := st.Market(context.Background(), store.MarketQuery{Q: name})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range p.Items {
		if it.Name == name {
			return it
		}
	}
	t.Fatalf("no item %q", name)
	return store.Item{}
}
