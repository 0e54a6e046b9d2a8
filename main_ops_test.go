package main

import (
	"strings"
	"testing"

	"market/store/storetest"
)

// role makes an admin on either engine, users shows it, and backup copies a SQLite market (on
// PostgreSQL it points to pg_dump).
func TestAdminRoleAndBackup(t *testing.T) {
	db := storetest.URL(t)
	if _, err := adminRun(t, db, "seed", "-users", "1", "-password", "secret123"); err != nil {
		t.Fatal(err)
	}
	if out, err := adminRun(t, db, "role", "USER00001", "admin"); err != nil || out != "user00001 is now an admin\n" {
		t.Errorf("role: %q %v", out, err)
	}
	if out, err := adminRun(t, db, "users"); err != nil || !strings.Contains(out, "ROLE") || !strings.Contains(out, "admin") {
		t.Errorf("users does not show the role: %q %v", out, err)
	}
	if _, err := adminRun(t, db, "role", "nobody", "admin"); err == nil || !strings.Contains(err.Error(), "no user") {
		t.Errorf("role of nobody: %v", err)
	}
	if _, err := adminRun(t, db, "role", "user00001", "root"); err == nil || !strings.Contains(err.Error(), "not a role") {
		t.Errorf("unknown role: %v", err)
	}
	out := t.TempDir() + "/copy.db"
	res, err := adminRun(t, db, "backup", out)
	if storetest.Postgres() {
		if err == nil || !strings.Contains(err.Error(), "pg_dump") {
			t.Errorf("backup on PostgreSQL: %q %v, want a pointer to pg_dump", res, err)
		}
		return
	}
	if err != nil || !strings.Contains(res, "checked: ok") {
		t.Fatalf("backup: %q %v", res, err)
	}
	if res, err := adminRun(t, out, "users"); err != nil || !strings.Contains(res, "user00001") {
		t.Errorf("the copy: %q %v", res, err)
	}
}
