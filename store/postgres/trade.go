package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"market/store/driver"
)

// Trade on PostgreSQL is one statement, market_trade (migrations/0005_trade_feed.sql),
// in a transaction of its own: one round trip where SQLite's takes nine (begin, two
// reads, two updates, the event, the ledger row, the budget again, commit). It runs again, as
// the writer's transactions do, when PostgreSQL reports a serialization failure or a deadlock,
// or when the refusal it found no longer holds.
func (e *Engine) Trade(ctx context.Context, userID, itemID int64, buy bool) (driver.Trade, error) {
	if e.writer.closed.Load() {
		return driver.Trade{}, driver.ErrClosed
	}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return driver.Trade{}, err
		}
		// Once sent, the statement does not hear of the caller giving up: a commit cut short
		// would leave the caller not knowing whether it traded.
		t, outcome, err := e.tradeOnce(context.WithoutCancel(ctx), userID, itemID, buy)
		if (retryable(err) || outcome == "retry") && attempt < pgAttempts {
			time.Sleep(time.Duration(rand.IntN(attempt*2)+1) * time.Millisecond)
			continue
		}
		if errors.Is(err, driver.ErrCommitUnknown) {
			// The answer names the item: read its name, if the database answers now.
			t.Item.ID = itemID
			e.db.QueryRowContext(ctx, `SELECT name, price FROM items WHERE id = ?`, itemID).Scan(&t.Item.Name, &t.Item.Price)
		}
		if err != nil {
			return t, fmt.Errorf("trade: %w", err)
		}
		return t, tradeRefusals[outcome]
	}
}

// tradeRefusals are market_trade's outcomes as the store's errors; "ok" is none.
var tradeRefusals = map[string]error{
	"ok": nil, "not_found": driver.ErrNotFound, "unavailable": driver.ErrUnavailable,
	"funds": driver.ErrInsufficientFunds, "not_owner": driver.ErrNotOwner, "retry": driver.ErrUnavailable,
}

// tradeOnce calls market_trade once.
func (e *Engine) tradeOnce(ctx context.Context, userID, itemID int64, buy bool) (driver.Trade, string, error) {
	var (
		t                          driver.Trade
		outcome                    string
		name, barcode, description sql.NullString
		price, owner, budget       sql.NullInt64
	)
	start := time.Now()
	err := e.db.QueryRowContext(ctx,
		`SELECT outcome, name, price, barcode, description, owner_id, budget FROM market_trade(?, ?, ?)`,
		userID, itemID, buy).Scan(&outcome, &name, &price, &barcode, &description, &owner, &budget)
	if err != nil {
		return t, "", statementError(err)
	}
	e.commits.Committed(time.Since(start))
	if name.Valid {
		t.Item = driver.Item{ID: itemID, Name: name.String, Price: price.Int64, Barcode: barcode.String,
			Description: description.String, OwnerID: owner.Int64}
	}
	t.Budget = budget.Int64
	return t, outcome, nil
}
