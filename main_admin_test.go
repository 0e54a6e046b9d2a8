package main

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"market/store/storetest"
)

// admin runs one command of the binary in-process, as `market -db db args...`.
func adminRun(t *testing.T, db string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"-db", db}, args...), func(string) string { return "" }, &out, io.Discard)
	return out.String(), err
}

// The admin commands, on the engine the environment names (see storetest).
func TestAdminCommands(t *testing.T) {
	db := storetest.URL(t)
	if out, err := adminRun(t, db, "seed"); err != nil || !strings.Contains(out, "26 items added") {
		t.Fatalf("seed: %q %v", out, err)
	}
	if out, err := adminRun(t, db, "seed"); err != nil || !strings.Contains(out, "0 items added") {
		t.Errorf("seed again: %q %v, want it idempotent", out, err)
	}
	if _, err := adminRun(t, db, "seed", "-users", "3"); err == nil || !strings.Contains(err.Error(), "-password") {
		t.Errorf("seed -users without -password: %v, want a refusal", err)
	}
	if out, err := adminRun(t, db, "seed", "-users", "3", "-password", "secret123"); err != nil || !strings.Contains(out, "3 users") {
		t.Fatalf("seed -users: %q %v", out, err)
	}
	out, err := adminRun(t, db, "users")
	if err != nil || !strings.Contains(out, "user00003") || !strings.Contains(out, "1000") {
		t.Errorf("users: %q %v", out, err)
	}
	if out, err := adminRun(t, db, "check"); err != nil || !strings.HasPrefix(out, "ok:") {
		t.Errorf("check on a healthy market: %q %v", out, err)
	}

	// Money made out of nothing, behind the store's back: check must say so and fail.
	driver, dsn := "sqlite3", "file:"+db
	if storetest.Postgres() {
		driver, dsn = "pgx", db
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE users SET budget = budget + 5 WHERE username = 'user00001'`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	out, err = adminRun(t, db, "check")
	if err == nil || !strings.Contains(out, "user user00001: budget 1005 but ledger sums to 1000") {
		t.Errorf("check after corruption: %q %v, want the problem and an error", out, err)
	}

	if _, err := adminRun(t, db, "reset"); err == nil {
		t.Error("reset without --yes went ahead")
	}
	if out, err := adminRun(t, db, "reset", "--yes"); err != nil || !strings.Contains(out, "26 demo items") {
		t.Errorf("reset --yes: %q %v", out, err)
	}
	if out, _ := adminRun(t, db, "users"); strings.Contains(out, "user00001") {
		t.Error("users survived reset")
	}
	if _, err := adminRun(t, db, "frobnicate"); err == nil {
		t.Error("an unknown command succeeded")
	}
}

func TestFlagsAndEnvironment(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantAddr string
		wantDB   string
		secure   bool
	}{
		{"defaults", nil, nil, "127.0.0.1:5000", "instance/market.db", false},
		{"environment", nil, map[string]string{"ADDR": ":8080", "DATABASE_URL": "sqlite:///rel.db", "SECURE": "1",
			"TRUSTED_ORIGINS": "http://127.0.0.1:7331,http://localhost:7331"}, ":8080", "rel.db", true},
		{"absolute URL", nil, map[string]string{"DATABASE_URL": "sqlite:////abs/m.db"}, "127.0.0.1:5000", "/abs/m.db", false},
		{"flags win", []string{"-addr", "127.0.0.1:9", "-db", "f.db", "-secure=false"},
			map[string]string{"ADDR": ":8080", "DATABASE_URL": "e.db", "SECURE": "1"}, "127.0.0.1:9", "f.db", false},
		{"postgres", nil, map[string]string{"DATABASE_URL": "postgres://u@h:5432/market"}, "127.0.0.1:5000", "postgres://u@h:5432/market", false},
		{"postgresql flag", []string{"-db", "postgresql://u@h/m?sslmode=disable"}, nil, "127.0.0.1:5000", "postgresql://u@h/m?sslmode=disable", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := parseFlags(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if tt.env["TRUSTED_ORIGINS"] != "" && len(cfg.trustedOrigins) != 2 {
				t.Errorf("trusted origins %q", cfg.trustedOrigins)
			}
			if cfg.addr != tt.wantAddr || cfg.db != tt.wantDB || cfg.secure != tt.secure {
				t.Errorf("got %+v, want addr %s db %s secure %v", cfg, tt.wantAddr, tt.wantDB, tt.secure)
			}
		})
	}
}
