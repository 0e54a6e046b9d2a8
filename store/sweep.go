package store

import (
	"context"
	"time"

	"market/store/driver"
)

// Swept is what one Sweep deleted.
type Swept = driver.Swept

// Sweep deletes expired sessions and the limit counts older than limitsBefore (those the
// engine keeps in tables; counts kept in memory forget their idle keys). Tables that grow with
// requests stay bounded by what their windows hold. An instance that finds another sweeping
// skips its turn (Swept.Skipped).
func (s *Store) Sweep(ctx context.Context, limitsBefore time.Time) (Swept, error) {
	return s.d.Sweep(ctx, limitsBefore)
}

// Rows counts the rows of the tables that grow with requests: sessions and the limit counts
// kept in tables, for tests and the abuse checks.
func (s *Store) Rows(ctx context.Context) (sessions, limitEvents int64, err error) {
	return s.d.Rows(ctx)
}
