package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// trade on PostgreSQL is one statement, market_trade (migrations/postgres/0005_trade_feed.sql),
// in a transaction of its own: one round trip where the shared trade takes nine (begin, two
// reads, two updates, the event, the ledger row, the budget again, commit). It runs again, as
// the writer's transactions do, when PostgreSQL reports a serialization failure or a deadlock,
// or when the refusal it found no longer holds.
func (e *postgresEngine) trade(ctx context.Context, userID, itemID int64, buy bool) (Trade, bool, error) {
	if e.writer.closed.Load() {
		return Trade{}, true, ErrClosed
	}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return Trade{}, true, err
		}
		// Once sent, the statement does not hear of the caller giving up: a commit cut short
		// would leave the caller not knowing whether it traded.
		t, outcome, err := e.tradeOnce(context.WithoutCancel(ctx), userID, itemID, buy)
		if (retryable(err) || outcome == "retry") && attempt < pgAttempts {
			time.Sleep(time.Duration(rand.IntN(attempt*2)+1) * time.Millisecond)
			continue
		}
		if errors.Is(err, ErrCommitUnknown) {
			// The answer names the item: read its name, if the database answers now.
			t.Item.ID = itemID
			e.db.QueryRowContext(ctx, `SELECT name, price FROM items WHERE id = ?`, itemID).Scan(&t.Item.Name, &t.Item.Price)
		}
		if err != nil {
			return t, true, fmt.Errorf("trade: %w", err)
		}
		return t, true, tradeRefusals[outcome]
	}
}

// tradeRefusals are market_trade's outcomes as the store's errors; "ok" is none.
var tradeRefusals = map[string]error{
	"ok": nil, "not_found": ErrNotFound, "unavailable": ErrUnavailable,
	"funds": ErrInsufficientFunds, "not_owner": ErrNotOwner, "retry": ErrUnavailable,
}

// tradeOnce calls market_trade once.
func (e *postgresEngine) tradeOnce(ctx context.Context, userID, itemID int64, buy bool) (Trade, string, error) {
	var (
		t                          Trade
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
	e.stats.committed(time.Since(start))
	if name.Valid {
		t.Item = Item{ID: itemID, Name: name.String, Price: price.Int64, Barcode: barcode.String,
			Description: description.String, OwnerID: owner.Int64}
	}
	t.Budget = budget.Int64
	return t, outcome, nil
}
