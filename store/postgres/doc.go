// Package postgres is the market in a PostgreSQL database that several instances share. The
// store's SQL is written once, with ? placeholders (rebound to $n, writer.go) and SQLite's
// COLLATE NOCASE (an ICU collation of that name here, see migrations/). Writes are one
// transaction each, retried when PostgreSQL reports a serialization failure or a deadlock
// (writer.go), and a trade is one statement, market_trade, the money rules in PL/pgSQL
// (trade.go, migrations/0005_trade_feed.sql); the schema version is in schema_version, under an
// advisory lock (postgres.go); the market version is a position in an insert-only change feed,
// read below the snapshot's horizon, with an epoch (feed.go); a listener hears every
// instance's changes, and a poll covers a lost notification (listen.go); limits and sessions
// are in tables, for every instance (limits.go); sweeping, copy loading and version exactness
// are in ops.go, error classification in trouble.go.
package postgres

import "market/store/driver"

var _ driver.Driver = (*Engine)(nil)
