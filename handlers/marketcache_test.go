package handlers

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"market/components"
	"market/store"
)

// The cached rows with a buyer's cues spliced in are exactly the rows rendered for that buyer,
// whatever the budget: none, nothing, between the prices, at a price, above them all.
func TestCachedRowsAreTheBuyersRows(t *testing.T) {
	ctx := context.Background()
	page, err := seededMarket(t, store.MarketQuery{Sort: store.SortPriceDesc})
	if err != nil {
		t.Fatal(err)
	}
	m, err := renderMarket(ctx, page)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range m.cues {
		if c.Text == 0 {
			t.Errorf("%s: no place found for a buyer's cue: its row is rendered for each buyer", page.Items[i].Name)
		}
	}
	// Items whose text looks like the places of the cue.
	page.Items = append(page.Items,
		store.Item{ID: 900, Name: `id="short-900"></span>`, Price: 5000, Description: `aria-describedby="price-900 short-900">` + "\nsecond line"},
		store.Item{ID: 901, Name: "Ünïcode & <b>", Price: 1_234_567, Description: "  spaced\r\n"})
	if m, err = renderMarket(ctx, page); err != nil {
		t.Fatal(err)
	}
	budgets := []int64{components.NoBudget, 0, 45, 1000, 1449, 1450, 4999, 1_234_566, 1_000_000_000}
	for _, budget := range budgets {
		var want, got strings.Builder
		if err := components.ItemRows(page.Items, budget).Render(ctx, &want); err != nil {
			t.Fatal(err)
		}
		if err := m.rowsFor(budget).Render(ctx, &got); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("budget %d: the cached rows differ from the rendered ones:\n%s\nwant\n%s", budget, got.String(), want.String())
		}
		if budget == components.NoBudget && m.rows != want.String() {
			t.Errorf("the cached rows differ from the rows rendered for no budget")
		}
	}
	if n := strings.Count(m.rows, `data-testid="item-row"`); n != len(page.Items) || n < 20 {
		t.Errorf("%d rows cached for %d items", n, len(page.Items))
	}
}

// TestFramedPageIsTheMarketPage: a market page written from its frame is the page rendered
// whole, byte for byte, whoever views it and whatever it shows, and the frame is made once.
func TestFramedPageIsTheMarketPage(t *testing.T) {
	ctx := context.Background()
	odd := `<"~&'> ~token~`
	page, err := seededMarket(t, store.MarketQuery{Q: "a", Sort: store.SortPrice})
	if err != nil {
		t.Fatal(err)
	}
	page.Query.Q = odd // the search box shows it
	m, err := renderMarket(ctx, page)
	if err != nil {
		t.Fatal(err)
	}
	owned := []store.Item{{ID: 900, Name: odd, Price: 1_234_567, Description: odd + "\nsecond"}, page.Items[0]}
	base := components.Chrome{Title: "Market", Nav: "market", CSRFToken: "AbC+/9==", Username: "ann", Budget: 1450,
		Shortcuts: true, Assets: components.Assets{CSS: "/assets/a.css", JS: "/assets/a.js", HTMX: "/assets/h.js", SSE: "/assets/s.js"}}
	cases := []struct {
		name   string
		change func(c *components.Chrome, v *components.MarketView)
	}{ // the plain page first: it makes the frame
		{"plain", func(*components.Chrome, *components.MarketView) {}},
		{"shortcuts off", func(c *components.Chrome, _ *components.MarketView) { c.Shortcuts = false }},
		{"admin", func(c *components.Chrome, _ *components.MarketView) { c.Admin, c.Username = true, odd }},
		{"admin, shortcuts off", func(c *components.Chrome, _ *components.MarketView) { c.Admin, c.Shortcuts = true, false }},
		{"anonymous", func(c *components.Chrome, _ *components.MarketView) { c.Username = "" }},
		{"unconfirmed", func(c *components.Chrome, _ *components.MarketView) { c.Unconfirmed = odd }},
		{"unconfirmed admin", func(c *components.Chrome, _ *components.MarketView) { c.Unconfirmed, c.Admin = "a@example.com", true }},
		{"unconfirmed, shortcuts off", func(c *components.Chrome, _ *components.MarketView) {
			c.Unconfirmed, c.Shortcuts = "a@example.com", false
		}},
		{"unconfirmed admin, shortcuts off", func(c *components.Chrome, _ *components.MarketView) {
			c.Unconfirmed, c.Admin, c.Shortcuts = "a@example.com", true, false
		}},
		{"flash", func(c *components.Chrome, _ *components.MarketView) { c.Flash = []string{odd} }},
		{"alert", func(c *components.Chrome, _ *components.MarketView) { c.Alerts = []string{odd} }},
		{"owner", func(_ *components.Chrome, v *components.MarketView) { v.Owned = owned }},
		{"no stream", func(_ *components.Chrome, v *components.MarketView) { v.Live = "" }},
		{"odd token", func(c *components.Chrome, _ *components.MarketView) { c.CSRFToken = odd }},
		{"no token", func(c *components.Chrome, _ *components.MarketView) { c.CSRFToken = "" }},
		{"other assets", func(c *components.Chrome, _ *components.MarketView) { c.Assets.CSS = "/assets/b.css" }},
	}
	for _, tc := range cases {
		c, v := base, components.MarketView{Page: page, Live: "/market/events?since=3&q=%3C%22&sort=x", Rows: m.rowsFor(5000)}
		tc.change(&c, &v)
		var want, got strings.Builder
		if err := components.MarketPage(c, v).Render(ctx, &want); err != nil {
			t.Fatal(err)
		}
		if err := m.pageFor(ctx, c, v).Render(ctx, &got); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%s: the page from the frame differs from the page rendered whole:\n%s\nwant\n%s", tc.name, got.String(), want.String())
		}
	}
	for i := range m.frames {
		if m.frames[i].Load() == nil {
			t.Errorf("no frame kept for shortcuts %v, admin %v, unconfirmed %v", i&1 == 1, i&2 == 2, i&4 == 4)
		}
	}
	if f := m.frames[frameSlot(base)].Load(); f != nil && !f.Fits(base, components.MarketView{Live: "/market/events"}) {
		t.Error("the plain page does not fit its frame")
	}
}

// seededMarket is the page q of the demo catalogue, in a fresh SQLite file.
func seededMarket(t *testing.T, q store.MarketQuery) (store.MarketPage, error) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "market.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	return st.Market(ctx, q)
}
