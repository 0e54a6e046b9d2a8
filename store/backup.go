package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrBackupPostgres is Backup's answer on PostgreSQL, whose own tools do it better.
var ErrBackupPostgres = errors.New("backup: on PostgreSQL use pg_dump (pg_dump -Fc market > market.dump) and pg_restore")

// Backup writes a consistent copy of the database to out, a file that must not exist yet,
// while the market keeps trading: VACUUM INTO reads one snapshot (every trade committed before
// it began, none after), and writers carry on beside it in WAL mode. It then opens the copy
// and checks it, returning the check's problems (none: the copy is good).
func (s *Store) Backup(ctx context.Context, out string) ([]string, error) {
	if _, ok := s.eng.(*sqliteEngine); !ok {
		return nil, ErrBackupPostgres
	}
	if _, err := os.Stat(out); err == nil {
		return nil, fmt.Errorf("backup: %s already exists", out)
	}
	// A connection of its own: VACUUM INTO only reads this database, but the readers are
	// query-only (which refuses it), and on the writer it would hold up every trade.
	db, err := sql.Open("sqlite3", "file:"+strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(s.path)+
		"?_busy_timeout=10000")
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, out); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	cp, err := Open(ctx, out, Options{BcryptCost: 4})
	if err != nil {
		return nil, fmt.Errorf("backup: open the copy: %w", err)
	}
	defer cp.Close()
	return cp.Check(ctx)
}
