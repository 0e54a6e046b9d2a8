package store

import (
	"slices"
	"testing"
)

// Reset drops what the migrations create: every table of each engine, and PostgreSQL's
// trigger function, each once (new migrations may add more).
func TestMigrationObjects(t *testing.T) {
	tables := []string{"users", "items", "sessions", "trades", "catalogue", "market_events", "market_events_horizon"}
	for _, tt := range []struct {
		name          string
		eng           engine
		tables, funcs []string
	}{
		{"sqlite", &sqliteEngine{}, tables, nil},
		{"postgres", &postgresEngine{}, append(slices.Clone(tables), "limit_events"), []string{"market_changed"}},
	} {
		o, err := migrationObjects(tt.eng.migrations())
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range [][2][]string{{o.tables, tt.tables}, {o.functions, tt.funcs}} {
			got := slices.Sorted(slices.Values(want[0]))
			if len(slices.Compact(got)) != len(want[0]) {
				t.Errorf("%s: %q lists a name twice", tt.name, want[0])
			}
			for _, name := range want[1] {
				if !slices.Contains(got, name) {
					t.Errorf("%s: %q lacks %s", tt.name, want[0], name)
				}
			}
		}
	}
}
