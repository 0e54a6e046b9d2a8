//go:build load

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"market/store/storetest"
)

// pgbenchClients is how many clients pgbench runs; each trades its own item, as the HTTP load
// benchmark's users do, so that no two wait on one row and only the commits are shared.
const pgbenchClients = 32

// feedSQL is one way of writing a trade, as a pgbench script of a purchase and its sale.
type feedSQL struct {
	name   string
	schema []string // migrations applied, in order
	setup  string   // run after the schema and the fixtures
	script string
}

var feedSQLs = []feedSQL{
	{
		// Before the ledger was the feed: nine statements in a transaction, the events stamped and the version
		// row bumped at commit by a deferred trigger, with a NOTIFY inside the transaction.
		name:   "version row + NOTIFY (before)",
		schema: []string{"0001_init.sql", "0002_events.sql"},
		script: oldTrade("buy", "budget - 1", "owner_id = :u WHERE id = :u AND owner_id IS NULL", -1) +
			oldTrade("sell", "budget + 1", "owner_id = NULL WHERE id = :u AND owner_id = :u", 1),
	},
	{
		name:   "change feed (market_trade)",
		schema: feedSchema,
		script: newTrade,
	},
	{
		// The ceiling: the same statement with every feed trigger off, and the ledger's rows
		// without their transaction ids (and the index of them).
		name:   "same SQL, no feed at all",
		schema: feedSchema,
		setup: `ALTER TABLE items DISABLE TRIGGER items_feed; ALTER TABLE items DISABLE TRIGGER items_added;
			ALTER TABLE users DISABLE TRIGGER users_budget_feed; ALTER TABLE trades DROP COLUMN xid CASCADE`,
		script: newTrade,
	},
}

// feedSchema is the migrations of the change feed as the store runs it.
var feedSchema = []string{"0001_init.sql", "0002_events.sql", "0003_admin.sql", "0004_feed.sql", "0005_trade_feed.sql"}

const newTrade = `\set u :client_id + 1
SELECT outcome FROM market_trade(:u, :u, true);
SELECT outcome FROM market_trade(:u, :u, false);
`

// oldTrade is the store's trade of before: the reads, the two updates, the event, the ledger
// row and the budget again, in one transaction.
func oldTrade(kind, budget, move string, amount int) string {
	return fmt.Sprintf(`\set u :client_id + 1
BEGIN;
SELECT budget FROM users WHERE id = :u;
SELECT id, name, price, barcode, description, owner_id FROM items WHERE id = :u;
UPDATE users SET budget = %[2]s WHERE id = :u AND budget >= 1;
UPDATE items SET %[3]s;
INSERT INTO market_events (version, item_id, kind, user_id) VALUES (NULL, :u, '%[1]s', :u);
INSERT INTO trades (user_id, item_id, kind, amount) VALUES (:u, :u, '%[1]s', %[4]d);
SELECT budget FROM users WHERE id = :u;
COMMIT;
`, kind, budget, move, amount)
}

// TestLoadFeedSQL is the trade's SQL at the database alone (pgbench, 32 clients, each with its
// own item): as it was, with the change feed, and with no feed at all (the ceiling), with the
// server's flushes as they are and 1 ms longer (commit_delay = 1000, what a networked disk
// costs). Part of `task bench-pg`.
func TestLoadFeedSQL(t *testing.T) {
	storetest.RequirePostgres(t)
	pgbench, err := exec.LookPath("pgbench")
	if err != nil {
		pgbench = "/usr/lib/postgresql/15/bin/pgbench"
	}
	dbs, scripts := make([]string, len(feedSQLs)), make([]string, len(feedSQLs))
	for i, s := range feedSQLs {
		dbs[i], scripts[i] = feedSQLDatabase(t, s), filepath.Join(t.TempDir(), "trade.sql")
		if err := os.WriteFile(scripts[i], []byte(s.script), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Rounds of every way and flush in turn, each figure the median of its rounds: on a shared
	// machine the load of the moment then weighs on each alike.
	rates := make([][2][]float64, len(feedSQLs))
	profiles := make([]string, len(feedSQLs)) // where each trade's time goes, statement by statement
	for range pgbenchRounds {
		for d, delay := range []int{0, 1000} {
			setCommitDelay(t, delay)
			for i := range feedSQLs {
				tps, profile := runPgbench(t, pgbench, dbs[i], scripts[i])
				rates[i][d] = append(rates[i][d], tps*2) // a script is a purchase and a sale
				if d == 0 {
					profiles[i] = profile
				}
			}
		}
	}
	setCommitDelay(t, 0)
	var b strings.Builder
	w := bufio.NewWriter(&b)
	fmt.Fprintf(w, "\npgbench: %d clients, %s each, buy and sell back one's own item; median of %d rounds\n",
		pgbenchClients, loadDuration, pgbenchRounds)
	fmt.Fprintf(w, "%-32s %14s %14s %8s\n", "trade SQL", "trades/s", "1 ms flush", "ratio")
	for i, s := range feedSQLs {
		now, slow := median(rates[i][0]), median(rates[i][1])
		fmt.Fprintf(w, "%-32s %14.0f %14.0f %8.2f\n", s.name, now, slow, slow/now)
	}
	for i, s := range feedSQLs {
		fmt.Fprintf(w, "\n%s: ms per statement, last round\n%s", s.name, profiles[i])
	}
	w.Flush()
	t.Log(b.String())
}

// pgbenchRounds is how many times each way of trading runs.
const pgbenchRounds = 3

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}

// feedSQLDatabase is a new database with s's schema, one user and one item per client.
func feedSQLDatabase(t *testing.T, s feedSQL) string {
	t.Helper()
	db := storetest.NewPostgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, name := range s.schema {
		body, err := os.ReadFile(filepath.Join("store", "migrations", "postgres", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(body)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	fixtures := fmt.Sprintf(`INSERT INTO users (username, email, password_hash, budget)
			SELECT 'user' || i, 'user' || i || '@example.com', 'x', 1000000 FROM generate_series(1, %[1]d) i;
		INSERT INTO items (name, price, barcode, description)
			SELECT 'Item ' || i, 1, lpad(i::text, 12, '0'), '' FROM generate_series(1, %[1]d) i;
		%[2]s`, pgbenchClients, s.setup)
	for _, q := range []string{fixtures, `VACUUM ANALYZE`} { // VACUUM runs outside a transaction
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// setCommitDelay sets the cluster's commit_delay (microseconds) and reloads its settings.
func setCommitDelay(t *testing.T, us int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Getenv("MARKET_TEST_POSTGRES"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf(`ALTER SYSTEM SET commit_delay = %d`, us)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
		t.Fatal(err)
	}
}

var (
	pgbenchTPS     = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	pgbenchLatency = regexp.MustCompile(`(?m)^\s+([0-9.]+)\s+[0-9]+\s+(.*)$`)
)

// runPgbench runs script for loadDuration and returns its scripts per second, and the mean
// latency of each statement (pgbench -r), one line each.
func runPgbench(t *testing.T, pgbench, db, script string) (tps float64, profile string) {
	t.Helper()
	out, err := exec.Command(pgbench, "-n", "-r", "-M", "prepared", "-c", strconv.Itoa(pgbenchClients), "-j", "2",
		"-T", strconv.Itoa(int(loadDuration.Seconds())), "-f", script, db).CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench: %v\n%s", err, out)
	}
	m := pgbenchTPS.FindSubmatch(out)
	if m == nil {
		t.Fatalf("pgbench said no tps:\n%s", out)
	}
	tps, _ = strconv.ParseFloat(string(m[1]), 64)
	var p strings.Builder
	for _, l := range pgbenchLatency.FindAllStringSubmatch(string(out), -1) {
		fmt.Fprintf(&p, "  %8s  %s\n", l[1], l[2])
	}
	return tps, p.String()
}
