package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
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

// BenchmarkCommitCeiling is the fsync ceiling: a bare SQLite commit loop, one small insert per
// transaction, WAL and synchronous=FULL, on the same file system as the store's benchmarks.
func BenchmarkCommitCeiling(b *testing.B) {
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(b.TempDir(), "ceiling.db")+
		"?_journal_mode=WAL&_synchronous=FULL&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)`); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO t (v) VALUES (?)`, i); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}
