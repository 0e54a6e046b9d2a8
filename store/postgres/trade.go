package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"time"

	"market/store/driver"
)

// Trade on PostgreSQL is one statement, market_trade (migrations/0005_trade_feed.sql) with the
// item's picture read beside it, in a transaction of its own: one round trip where SQLite's
// takes nine (begin, two reads, two updates, the event, the ledger row, the budget again,
// commit). It runs again, as the writer's transactions do, when PostgreSQL reports a
// serialization failure or a deadlock, or when the refusal it found no longer holds. A read
// after it (after) goes with it, in the same round trip (tradeThenRead).
func (e *Engine) Trade(ctx context.Context, userID, itemID int64, buy bool, after *driver.AfterTrade) (driver.Trade, error) {
	if e.writer.closed.Load() {
		return driver.Trade{}, driver.ErrClosed
	}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return driver.Trade{}, err
		}
		t, outcome, err := e.tradeOnce(ctx, userID, itemID, buy, after)
		if (retryable(err) || outcome == "retry") && attempt < pgAttempts {
			time.Sleep(time.Duration(rand.IntN(attempt*2)+1) * time.Millisecond)
			continue
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

// pgTrade is the trade's statement. The item's picture comes in it, read beside the trade's
// row (in the statement's snapshot: a picture set since comes to the page as an edit, live).
const pgTrade = `SELECT outcome, name, price, barcode, description, owner_id, budget,
	coalesce((SELECT hash FROM pictures WHERE item_id = $2), '') FROM market_trade($1, $2, $3)`

// tradeOnce calls market_trade once, and reads after with it when asked.
func (e *Engine) tradeOnce(ctx context.Context, userID, itemID int64, buy bool, after *driver.AfterTrade) (driver.Trade, string, error) {
	var (
		t                          driver.Trade
		outcome                    string
		name, barcode, description sql.NullString
		price, owner, budget       sql.NullInt64
		picture                    string
	)
	// Once sent, the statement does not hear of the caller giving up (a commit cut short would
	// leave the caller not knowing whether it traded), but it keeps the caller's deadline: a
	// database that hangs leaves the outcome unknown at the request's budget, not later.
	ctx, cancel := uncancelled(ctx)
	defer cancel()
	start := time.Now()
	dest := []any{&outcome, &name, &price, &barcode, &description, &owner, &budget, &picture}
	var err error
	if after != nil {
		err = e.tradeThenRead(ctx, []any{userID, itemID, buy}, dest, after)
	} else {
		err = e.tradeAlone(ctx, []any{userID, itemID, buy}, dest)
	}
	if err != nil {
		return t, "", err
	}
	e.commits.Committed(time.Since(start))
	if name.Valid {
		t.Item = driver.Item{ID: itemID, Name: name.String, Price: price.Int64, Barcode: barcode.String,
			Description: description.String, Picture: picture, OwnerID: owner.Int64}
	}
	t.Budget = budget.Int64
	return t, outcome, nil
}

// tradeAlone runs the trade's statement on a connection taken first: a failure to get one (the
// pool's wait ran out, a connection refused) sent nothing, and is a definite "not done", not
// an unknown outcome.
func (e *Engine) tradeAlone(ctx context.Context, args, dest []any) error {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return err // nothing sent
	}
	defer conn.Close()
	if err := conn.QueryRowContext(ctx, pgTrade, args...).Scan(dest...); err != nil {
		return statementError(err)
	}
	return nil
}

// statementBound is how long a trade's statement may take when its caller set no deadline.
const statementBound = 30 * time.Second

// uncancelled is ctx without its cancellation, with its deadline (or statementBound from now).
func uncancelled(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(statementBound)
	}
	return context.WithDeadline(context.WithoutCancel(ctx), deadline)
}
