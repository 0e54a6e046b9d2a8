package store

import (
	"context"
	"errors"
	"fmt"

	"market/store/driver"
)

// ErrBackupUnsupported is Backup's answer on a database whose own tools do it better.
var ErrBackupUnsupported = errors.New("backup: on PostgreSQL use pg_dump (pg_dump -Fc market > market.dump) and pg_restore")

// Backup writes a consistent copy of the database to out, a file that must not exist yet,
// while the market keeps trading (the engine reads one snapshot: every trade committed before
// it began, none after). It then opens the copy and checks it, returning the check's problems
// (none: the copy is good).
func (s *Store) Backup(ctx context.Context, out string) ([]string, error) {
	err := s.d.Backup(ctx, out)
	if errors.Is(err, driver.ErrNotSupported) {
		return nil, ErrBackupUnsupported
	}
	if err != nil {
		return nil, err
	}
	cp, err := Open(ctx, out, Options{BcryptCost: 4})
	if err != nil {
		return nil, fmt.Errorf("backup: open the copy: %w", err)
	}
	defer cp.Close()
	return cp.Check(ctx)
}
