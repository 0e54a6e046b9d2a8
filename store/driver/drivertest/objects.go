package drivertest

import (
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"market/store/driver"
)

// CheckObjects checks that an engine's migrations create each of tables and funcs, and list
// each once: what Reset drops (new migrations may add more).
func CheckObjects(t *testing.T, d driver.Driver, tables, funcs []string) {
	t.Helper()
	o, err := driver.MigrationObjects(d.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range [][2][]string{{o.Tables, tables}, {o.Functions, funcs}} {
		got := slices.Sorted(slices.Values(want[0]))
		if len(slices.Compact(got)) != len(want[0]) {
			t.Errorf("%q lists a name twice", want[0])
		}
		for _, name := range want[1] {
			if !slices.Contains(got, name) {
				t.Errorf("%q lacks %s", want[0], name)
			}
		}
	}
}

// Tables are the tables both engines' migrations create.
var Tables = []string{"users", "items", "sessions", "trades", "catalogue", "market_events", "market_events_horizon", "pictures"}

// LatestVersion is the number of an engine's newest migration: the schema version a fresh
// database reaches (the numbers may leave gaps).
func LatestVersion(t testing.TB, d driver.Driver) int {
	t.Helper()
	names, err := fs.Glob(d.Migrations(), "*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("no migrations: %v", err)
	}
	latest := 0
	for _, n := range names {
		v, err := strconv.Atoi(strings.SplitN(path.Base(n), "_", 2)[0])
		if err != nil {
			t.Fatalf("migration %s: bad name", n)
		}
		latest = max(latest, v)
	}
	return latest
}
