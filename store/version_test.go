package store_test

import (
	"context"
	"strings"
	"testing"

	"market/store"
	"market/store/storetest"
)

// The market version moves with every change of an item or a budget, and never repeats, even
// across Reset: caches keyed by it can never serve an old answer as new.
func TestVersionMovesAndNeverRepeats(t *testing.T) {
	storetest.Each(t, func(t *testing.T) {
		st := newStore(t)
		ctx := context.Background()
		version := func() int64 {
			t.Helper()
			return exactVersion(t, st)
		}
		u := storetest.CreateUser(t, st, "versioned")
		it := storetest.AddItem(t, st, "Vase", 10)
		v0 := version()
		if _, err := st.Buy(ctx, u.ID, it.ID); err != nil {
			t.Fatal(err)
		}
		v1 := version()
		if v1 <= v0 {
			t.Errorf("a purchase left the version at %d", v1)
		}
		storetest.Exec(t, rawDB(t, st), `UPDATE users SET budget = budget + 1 WHERE id = ?`, u.ID)
		v2 := version()
		if v2 <= v1 {
			t.Errorf("a budget change by another program left the version at %d", v2)
		}
		if _, err := st.Market(ctx, store.MarketQuery{}); err != nil {
			t.Fatal(err)
		}
		if version() != v2 {
			t.Error("a read moved the version")
		}
		if err := st.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if v3 := version(); v3 <= v2 {
			t.Errorf("after reset the version is %d, not past %d", v3, v2)
		}
	})
}

func TestMarketQueryNormalize(t *testing.T) {
	long := strings.Repeat("ж", store.MaxQueryRunes+7)
	tests := []struct {
		in, want store.MarketQuery
	}{
		{store.MarketQuery{}, store.MarketQuery{Sort: store.SortName, Page: 1}},
		{store.MarketQuery{Q: "  lamp ", Sort: "junk", Page: -4}, store.MarketQuery{Q: "lamp", Sort: store.SortName, Page: 1}},
		{store.MarketQuery{Q: long, Sort: store.SortPriceDesc, Page: 3}, store.MarketQuery{Q: strings.Repeat("ж", store.MaxQueryRunes), Sort: store.SortPriceDesc, Page: 3}},
	}
	for _, tt := range tests {
		if got := tt.in.Normalize(); got != tt.want {
			t.Errorf("%+v.Normalize() = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}
