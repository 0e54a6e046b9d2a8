package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"market/store"
)

// A database path is a file name, whatever characters it holds.
func TestOpenOddPaths(t *testing.T) {
	for _, name := range []string{"h#sh.db", "what?.db", "pc%41.db", "with space.db"} {
		path := filepath.Join(t.TempDir(), name)
		st, err := store.Open(context.Background(), path, store.Options{BcryptCost: bcrypt.MinCost})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		st.Close()
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s: the database is not at its path: %v", name, err)
		}
	}
}

func TestPathFromURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"instance/market.db", "instance/market.db"},
		{"sqlite:///relative.db", "relative.db"},
		{"sqlite:////absolute/path.db", "/absolute/path.db"},
	}
	for _, tt := range tests {
		if got, err := store.PathFromURL(tt.in); err != nil || got != tt.want {
			t.Errorf("PathFromURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, u := range []string{"postgres://x/y", "postgresql://u@h:5432/market?sslmode=disable"} {
		if got, err := store.PathFromURL(u); err != nil || got != u {
			t.Errorf("PathFromURL(%q) = %q, %v; want the URL as it is (PostgreSQL)", u, got, err)
		}
	}
	if _, err := store.PathFromURL("mysql://x/y"); err == nil {
		t.Error("a mysql URL was taken for a SQLite path")
	}
}
