package store_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"market/store"
)

// scaleStore is one database with 100,000 items and 10,000 users, shared by the scale tests
// and benchmarks of a run (seeding it is the slow part).
var scaleStore = sync.OnceValues(func() (*store.Store, error) {
	dir, err := os.MkdirTemp("", "market-scale-")
	if err != nil {
		return nil, err
	}
	st, err := store.Open(context.Background(), filepath.Join(dir, "scale.db"), store.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		return nil, err
	}
	if _, err := st.Seed(context.Background()); err != nil {
		return nil, err
	}
	return st, st.SeedScale(context.Background(), 100_000, 10_000, "password")
})

func TestSeedScaleIsQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 100,000 items")
	}
	start := time.Now()
	st, err := scaleStore()
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("seeded 100,000 items and 10,000 users in %s", took.Round(time.Millisecond))
	// A bound on time holds only on a quiet machine: it is checked with the load tests.
	if os.Getenv("MARKET_LOAD") == "1" && took > 10*time.Second {
		t.Errorf("seeding took %s, want under 10 s", took)
	}
	users, err := st.Users(context.Background())
	if err != nil || len(users) != 10_000 {
		t.Fatalf("%d users, %v", len(users), err)
	}
	if problems, err := st.Check(context.Background()); err != nil || len(problems) > 0 {
		t.Errorf("check after seeding: %v %v", problems, err)
	}
}

// TestMarketAtScale reads the first page, a search and the last page of a 100,000-item market
// straight from the database (no cache: the worst case, right after a trade), and reports p99.
func TestMarketAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 100,000 items")
	}
	st, err := scaleStore()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, q := range []store.MarketQuery{
		{Sort: store.SortName},
		{Q: "vintage clock", Sort: store.SortName},
		{Sort: store.SortPrice, Page: 1 << 30},
	} {
		var took []time.Duration
		for range 50 {
			start := time.Now()
			p, err := st.Market(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			took = append(took, time.Since(start))
			if len(p.Items) == 0 {
				t.Fatalf("%+v: no items", q)
			}
		}
		slices.Sort(took)
		p99 := took[len(took)*99/100]
		t.Logf("%+v: p50 %s, p99 %s", q, took[len(took)/2], p99)
	}
}
