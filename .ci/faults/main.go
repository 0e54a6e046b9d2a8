// Command faults runs the market binary through database faults and prints what its users saw.
//
//	go run ./.ci/faults [-short] [-latency] [-users N] [-postgres ADMIN_URL]
//
// PostgreSQL (when -postgres or MARKET_TEST_POSTGRES names an admin URL): the server reaches the
// database through toxiproxy, which adds latency, hangs, resets connections and goes down.
// SQLite (as root, which can mount a tmpfs): the database on a small tmpfs that fills up, and a
// kill -9 while it is full. Users sign up, browse and trade throughout; every phase's statuses,
// p50/p99/max and recovery time go into a table. It fails when any answer is a 5xx other than
// 503, any answer takes longer than its budget, `market check` fails, or a user's money or a
// confirmed trade is not what the user was told.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// budget is what a request may take (the server's default, a password hash twice that), and
// slack what a loaded machine adds on top before an answer counts as over it.
const (
	budget = 5 * time.Second
	slack  = 2 * time.Second
)

func main() {
	short := flag.Bool("short", false, "phases of 2 s instead of 6 s (CI)")
	users := flag.Int("users", 12, "users trading at once")
	pg := flag.String("postgres", os.Getenv("MARKET_TEST_POSTGRES"), "PostgreSQL admin URL (empty: SQLite only)")
	flag.BoolVar(&latencyOnly, "latency", false, "PostgreSQL's quiet and latency phases only (round trips in series)")
	flag.Parse()
	phase := 6 * time.Second
	if *short {
		phase = 2 * time.Second
	}
	if err := run(*pg, *users, phase); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
}

// latencyOnly runs PostgreSQL's quiet and latency phases, nothing else (-latency).
var latencyOnly bool

func run(pg string, users int, phase time.Duration) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "market-faults-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "market")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	var tables []*table
	var failures []string
	if pg != "" {
		t, err := postgresFaults(ctx, bin, dir, pg, users, phase)
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		tables = append(tables, t)
	} else {
		fmt.Println("PostgreSQL: skipped (no -postgres or MARKET_TEST_POSTGRES)")
	}
	if os.Geteuid() == 0 && !latencyOnly {
		t, err := sqliteFaults(ctx, bin, dir, users, phase)
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		tables = append(tables, t)
	} else {
		fmt.Println("SQLite on a full disk: skipped (mounting a tmpfs needs root)")
	}
	for _, t := range tables {
		t.print(os.Stdout)
		failures = append(failures, t.failures...)
	}
	if len(failures) > 0 {
		seen, order := map[string]int{}, []string{}
		for _, f := range failures {
			if seen[f]++; seen[f] == 1 {
				order = append(order, f)
			}
		}
		for _, f := range order {
			fmt.Printf("FAIL: %s (%d times)\n", f, seen[f])
		}
		return fmt.Errorf("%d failures", len(failures))
	}
	fmt.Println("ok: no 500, no answer over its budget, nothing lost")
	return nil
}
