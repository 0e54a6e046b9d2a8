// Package sqlite is the market in one SQLite file: one writer connection whose group commits
// run every write (writer.go), beside a pool of read-only connections; the schema version in
// PRAGMA user_version; the money rules in Go and SQL (trade.go); the market version the
// catalogue row's, moved by triggers, and the events in market_events (events.go); Changed rung
// by this process's trades and by a poll of the version; limit counts in memory (one process),
// sweeping, backup with VACUUM INTO and error classification (ops.go). Migrations are in
// migrations/, embedded.
package sqlite

import "market/store/driver"

var _ driver.Driver = (*Engine)(nil)
