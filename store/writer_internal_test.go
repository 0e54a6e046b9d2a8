package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// An operation that panics fails alone: its caller gets an error, the writer goes on.
func TestWriterSurvivesPanic(t *testing.T) {
	st, err := Open(context.Background(), filepath.Join(t.TempDir(), "m.db"), Options{BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	err = st.writer.run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE catalogue SET version = version + 1000`); err != nil {
			return err
		}
		panic("boom")
	})
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("panicking operation: %v, want an error", err)
	}
	if v, _ := st.Version(ctx); v >= 1000 {
		t.Errorf("the panicking operation's write was kept: version %d", v)
	}
	if _, err := st.CreateUser(ctx, "after", "after@example.com", "long enough"); err != nil {
		t.Errorf("the writer stopped after a panic: %v", err)
	}
}
