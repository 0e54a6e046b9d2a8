package postgres_test

import (
	"context"
	"testing"

	"market/store/driver/drivertest"
	"market/store/storetest"
)

// The per-request freshness read (Store.Version: one statement) alone on the cluster, and
// beside a transaction that another database holds open after the market's last change: the
// cluster's horizon is then behind the newest change, and the running transactions are looked
// up (pg_stat_activity) to find that none is the market's.
func BenchmarkVersion(b *testing.B) {
	for _, name := range []string{"alone", "beside-another-database"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			st := storetest.OpenAt(b, drivertest.PostgresURL(b))
			if name != "alone" {
				drivertest.HoldTransactionElsewhere(b)
			}
			storetest.AddItem(b, st, "Lamp", 1) // a change after the other database's transaction
			if v, err := st.Version(ctx); err != nil || !st.Exact(v) {
				b.Fatalf("version %d (exact %v): %v", v, st.Exact(v), err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := st.Version(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
