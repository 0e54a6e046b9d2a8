package store_test

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"testing"

	"market/store"
	"market/store/storetest"
)

func names(items []store.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Name)
	}
	return out
}

func TestMarketQuery(t *testing.T) { storetest.Each(t, testMarketQuery) }

func testMarketQuery(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	if _, err := st.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	all, err := st.Market(ctx, store.MarketQuery{})
	if err != nil {
		t.Fatal(err)
	}
	byName, byPrice, reverse := itemsByName, itemsByPrice, reverseOrder
	tests := []struct {
		name      string
		q         store.MarketQuery
		wantSort  string
		wantOrder func(a, b store.Item) int
		wantNames []string // nil: every item on sale
	}{
		{name: "default is by name", q: store.MarketQuery{}, wantSort: store.SortName, wantOrder: byName},
		{name: "by name", q: store.MarketQuery{Sort: "name"}, wantSort: store.SortName, wantOrder: byName},
		{name: "by name descending", q: store.MarketQuery{Sort: "-name"}, wantSort: store.SortNameDesc, wantOrder: reverse(byName)},
		{name: "by price", q: store.MarketQuery{Sort: "price"}, wantSort: store.SortPrice, wantOrder: byPrice},
		{name: "by price descending", q: store.MarketQuery{Sort: "-price"}, wantSort: store.SortPriceDesc, wantOrder: reverse(byPrice)},
		{name: "unknown sort falls back to name", q: store.MarketQuery{Sort: "price; DROP TABLE items"}, wantSort: store.SortName, wantOrder: byName},
		{name: "search matches name, any case", q: store.MarketQuery{Q: "LAMP"}, wantSort: store.SortName, wantOrder: byName,
			wantNames: []string{"Desk Lamp"}},
		{name: "search matches description", q: store.MarketQuery{Q: "espresso"}, wantSort: store.SortName, wantOrder: byName,
			wantNames: []string{"Coffee Grinder", "Espresso Machine"}},
		{name: "search is trimmed", q: store.MarketQuery{Q: "  kettle  "}, wantSort: store.SortName, wantOrder: byName,
			wantNames: []string{"Kettle"}},
		{name: "percent is literal", q: store.MarketQuery{Q: "%"}, wantSort: store.SortName, wantOrder: byName, wantNames: []string{}},
		{name: "underscore is literal", q: store.MarketQuery{Q: "_"}, wantSort: store.SortName, wantOrder: byName, wantNames: []string{}},
		{name: "quote is harmless", q: store.MarketQuery{Q: `' OR 1=1 --`}, wantSort: store.SortName, wantOrder: byName, wantNames: []string{}},
		{name: "search and sort by price", q: store.MarketQuery{Q: "battery", Sort: "-price"}, wantSort: store.SortPriceDesc, wantOrder: reverse(byPrice),
			wantNames: []string{"Phone", "Smartwatch", "E-Reader", "Mouse"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := st.Market(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if p.Query.Sort != tt.wantSort || p.Page != 1 || p.Pages != 1 {
				t.Errorf("sort %q page %d of %d, want %q page 1 of 1", p.Query.Sort, p.Page, p.Pages, tt.wantSort)
			}
			if !slices.IsSortedFunc(p.Items, tt.wantOrder) {
				t.Errorf("not in %s order: %q", tt.wantSort, names(p.Items))
			}
			if p.Total != len(p.Items) {
				t.Errorf("total %d, %d items", p.Total, len(p.Items))
			}
			if tt.wantNames == nil {
				if len(p.Items) != len(all.Items) || len(p.Items) < 20 {
					t.Errorf("%d items, want all %d", len(p.Items), len(all.Items))
				}
				return
			}
			got := names(p.Items)
			if !slices.Equal(got, tt.wantNames) && !(len(got) == 0 && len(tt.wantNames) == 0) {
				t.Errorf("items %q, want %q", got, tt.wantNames)
			}
		})
	}
}

func TestMarketPaging(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := newStore(t)
		if _, err := st.Seed(ctx); err != nil {
			t.Fatal(err)
		}
		if err := st.SeedScale(ctx, 2*store.PerPage+10, 0, "unused password"); err != nil {
			t.Fatal(err)
		}
		total := 26 + 2*store.PerPage + 10
		tests := []struct {
			name              string
			page              int
			wantPage, wantLen int
		}{
			{"first page", 1, 1, store.PerPage},
			{"zero is the first page", 0, 1, store.PerPage},
			{"negative is the first page", -4, 1, store.PerPage},
			{"second page", 2, 2, store.PerPage},
			{"last page", 3, 3, total - 2*store.PerPage},
			{"past the end is the last page", 99, 3, total - 2*store.PerPage},
		}
		seen := map[int64]bool{}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p, err := st.Market(ctx, store.MarketQuery{Page: tt.page})
				if err != nil {
					t.Fatal(err)
				}
				if p.Total != total || p.Pages != 3 || p.Page != tt.wantPage || len(p.Items) != tt.wantLen {
					t.Fatalf("total %d pages %d page %d len %d, want %d 3 %d %d",
						p.Total, p.Pages, p.Page, len(p.Items), total, tt.wantPage, tt.wantLen)
				}
				for _, it := range p.Items {
					seen[it.ID] = true
				}
			})
		}
		if len(seen) != total {
			t.Errorf("the pages hold %d distinct items, want %d", len(seen), total)
		}
		checkOrderedPages(t, st, total)
		// A search counts and pages too: "item 0001" matches Item 000100 … Item 000110.
		p, err := st.Market(ctx, store.MarketQuery{Q: "item 0001"})
		if err != nil || p.Total != 11 || p.Pages != 1 {
			t.Errorf("search: total %d pages %d (%v), want 11 on one page", p.Total, p.Pages, err)
		}
	})
}

// The count is exact on either side of a full page: a first page that is not full gives it
// without counting, a full one counts, and asking past the end gives the last page.
func TestMarketCountAroundAPage(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		for _, n := range []int{0, 1, store.PerPage - 1, store.PerPage, store.PerPage + 1} {
			st := newStore(t)
			if err := st.SeedScale(ctx, n, 0, "unused password"); err != nil {
				t.Fatal(err)
			}
			pages := max(1, (n+store.PerPage-1)/store.PerPage)
			for _, q := range []store.MarketQuery{{}, {Q: "item"}, {Page: 2}, {Q: "item", Page: 9}} {
				p, err := st.Market(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				page := min(max(q.Page, 1), pages)
				want := min(store.PerPage, n-(page-1)*store.PerPage)
				if p.Total != n || p.Pages != pages || p.Page != page || len(p.Items) != want {
					t.Errorf("%d items, %+v: total %d pages %d page %d len %d, want %d %d %d %d",
						n, q, p.Total, p.Pages, p.Page, len(p.Items), n, pages, page, want)
				}
			}
		}
	})
}

// The market shows what is on sale now: an item bought leaves it and an item sold returns,
// whatever was read (and cached) before.
func TestMarketFollowsTrades(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		st := newStore(t)
		if _, err := st.Seed(ctx); err != nil {
			t.Fatal(err)
		}
		alice := storetest.CreateUser(t, st, "alice")
		onSale := func() map[string]bool {
			p, err := st.Market(ctx, store.MarketQuery{Sort: "price"})
			if err != nil {
				t.Fatal(err)
			}
			m := map[string]bool{}
			for _, n := range names(p.Items) {
				m[n] = true
			}
			return m
		}
		before := onSale()
		p, _ := st.Market(ctx, store.MarketQuery{Q: "Kettle"})
		kettle := p.Items[0]
		if _, err := st.Buy(ctx, alice.ID, kettle.ID); err != nil {
			t.Fatal(err)
		}
		if after := onSale(); after["Kettle"] || len(after) != len(before)-1 {
			t.Errorf("after buying: kettle on sale %v, %d items (was %d)", after["Kettle"], len(after), len(before))
		}
		owned, err := st.OwnedItems(ctx, alice.ID)
		if err != nil || len(owned) != 1 || owned[0].Name != "Kettle" || owned[0].OwnerID != alice.ID {
			t.Errorf("alice owns %+v (%v)", owned, err)
		}
		if _, err := st.Sell(ctx, alice.ID, kettle.ID); err != nil {
			t.Fatal(err)
		}
		if after := onSale(); !after["Kettle"] || len(after) != len(before) {
			t.Errorf("after selling: kettle on sale %v", after["Kettle"])
		}
		if owned, _ := st.OwnedItems(ctx, alice.ID); len(owned) != 0 {
			t.Errorf("alice still owns %q", names(owned))
		}
	})
}

// checkOrderedPages: every order, page after page, lists all total items once and in order,
// though pages in the second half are read from the order's other end.
func checkOrderedPages(t *testing.T, st *store.Store, total int) {
	t.Helper()
	ctx := context.Background()
	for _, sort := range []string{store.SortName, store.SortNameDesc, store.SortPrice, store.SortPriceDesc} {
		var all []store.Item
		for page := 1; page <= 3; page++ {
			p, err := st.Market(ctx, store.MarketQuery{Sort: sort, Page: page})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, p.Items...)
		}
		want := slices.Clone(all)
		order := itemsByName
		if sort == store.SortPrice || sort == store.SortPriceDesc {
			order = itemsByPrice
		}
		if strings.HasPrefix(sort, "-") {
			order = reverseOrder(order)
		}
		slices.SortStableFunc(want, order)
		ids := map[int64]bool{}
		for _, it := range all {
			ids[it.ID] = true
		}
		if len(ids) != total || len(all) != total || !slices.EqualFunc(all, want, func(a, b store.Item) bool { return a.ID == b.ID }) {
			t.Errorf("sort %s: the pages hold %d items, out of order or repeated", sort, len(all))
		}
	}
}

func itemsByName(a, b store.Item) int {
	return cmp.Or(cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.ID, b.ID))
}

func itemsByPrice(a, b store.Item) int {
	return cmp.Or(cmp.Compare(a.Price, b.Price), itemsByName(a, b))
}

func reverseOrder(f func(a, b store.Item) int) func(a, b store.Item) int {
	return func(a, b store.Item) int { return f(b, a) }
}
