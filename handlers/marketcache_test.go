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
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "market.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	page, err := st.Market(ctx, store.MarketQuery{Sort: store.SortPriceDesc})
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
