package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"market/store"
	"market/store/storetest"
)

// benchTraders makes n users and n items cheap enough for each to buy, so that parallel
// benchmark goroutines trade without refusing each other.
func benchTraders(b *testing.B, st *store.Store, n int) (users, items []int64) {
	b.Helper()
	for i := range n {
		u := storetest.CreateUser(b, st, fmt.Sprintf("trader%d", i))
		it := storetest.AddItem(b, st, fmt.Sprintf("Widget %d", i), 10)
		users, items = append(users, u.ID), append(items, it.ID)
	}
	return users, items
}

// BenchmarkBuySell is one purchase and its sale, committed with synchronous=FULL, one at a time.
func BenchmarkBuySell(b *testing.B) {
	st := newStore(b)
	users, items := benchTraders(b, st, 1)
	ctx := context.Background()
	for b.Loop() {
		if _, err := st.Buy(ctx, users[0], items[0]); err != nil {
			b.Fatal(err)
		}
		if _, err := st.Sell(ctx, users[0], items[0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2*float64(b.N)/b.Elapsed().Seconds(), "trades/s")
}

// BenchmarkBuySellParallel is 32 traders at once, as under the HTTP load test.
func BenchmarkBuySellParallel(b *testing.B) {
	st := newStore(b)
	users, items := benchTraders(b, st, 32)
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(16) // 16 × GOMAXPROCS(2) = 32 goroutines
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)-1) % len(users)
		for pb.Next() {
			if _, err := st.Buy(ctx, users[i], items[i]); err != nil {
				b.Error(err)
				return
			}
			if _, err := st.Sell(ctx, users[i], items[i]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(2*float64(b.N)/b.Elapsed().Seconds(), "trades/s")
}
