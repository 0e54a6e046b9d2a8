package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"market/store/driver"
)

// The money rules, in Go and SQL: PostgreSQL has the same ones in PL/pgSQL (market_trade, in
// store/postgres), and the store's conformance suite runs the same trades against both.

// Trade runs one purchase (buy) or sale in the writer's next group commit (one savepoint of
// it), where it reads the trader's budget and the item inside the transaction, applies the
// trade with conditional updates, and reads the budget again. On a refusal Trade.Budget is the
// budget that stands (the trade's changes are undone), so the answer never shows a budget older
// than the refusal. The read after it (AfterTrade) is left to the caller: SQLite's reads are
// local.
func (e *Engine) Trade(ctx context.Context, userID, itemID int64, buy bool, _ *driver.AfterTrade) (driver.Trade, error) {
	apply := e.sell
	if buy {
		apply = e.buy
	}
	var t driver.Trade
	err := e.writer.run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		t = driver.Trade{}
		readBudget := func() error {
			err := tx.QueryRowContext(ctx, `SELECT budget FROM users WHERE id = ?`, userID).Scan(&t.Budget)
			if errors.Is(err, sql.ErrNoRows) {
				return driver.ErrNotFound
			}
			if err != nil {
				return fmt.Errorf("read budget: %w", err)
			}
			return nil
		}
		if err := readBudget(); err != nil {
			return err
		}
		var owner sql.NullInt64
		err := tx.QueryRowContext(ctx,
			`SELECT id, name, price, barcode, description, owner_id, `+driver.PictureColumn+`
			 FROM items WHERE id = ? AND retired_at IS NULL`, itemID,
		).Scan(&t.Item.ID, &t.Item.Name, &t.Item.Price, &t.Item.Barcode, &t.Item.Description, &owner, &t.Item.Picture)
		if errors.Is(err, sql.ErrNoRows) {
			return driver.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("find item: %w", err)
		}
		t.Item.OwnerID = owner.Int64
		if err := apply(ctx, tx, userID, &t.Item); err != nil {
			return err
		}
		return readBudget()
	})
	return t, err
}

// buy moves an item on the market to the buyer and its price out of the buyer's budget: an
// item is sold once, and a budget never goes below zero.
func (e *Engine) buy(ctx context.Context, tx *sql.Tx, buyerID int64, it *driver.Item) error {
	if it.OwnerID != 0 {
		return driver.ErrUnavailable
	}
	res, err := tx.ExecContext(ctx,
		`UPDATE users SET budget = budget - ? WHERE id = ? AND budget >= ?`, it.Price, buyerID, it.Price)
	if err != nil {
		return fmt.Errorf("debit buyer: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return driver.ErrInsufficientFunds
	}
	res, err = tx.ExecContext(ctx, `UPDATE items SET owner_id = ? WHERE id = ? AND owner_id IS NULL AND retired_at IS NULL`, buyerID, it.ID)
	if err != nil {
		return fmt.Errorf("move item: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return driver.ErrUnavailable
	}
	it.OwnerID = buyerID
	return e.record(ctx, tx, buyerID, it.ID, "buy", -it.Price)
}

// sell gives an item back to the market and its price back to its owner.
func (e *Engine) sell(ctx context.Context, tx *sql.Tx, sellerID int64, it *driver.Item) error {
	res, err := tx.ExecContext(ctx, `UPDATE items SET owner_id = NULL WHERE id = ? AND owner_id = ?`, it.ID, sellerID)
	if err != nil {
		return fmt.Errorf("move item: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return driver.ErrNotOwner
	}
	if _, err := tx.ExecContext(ctx, `UPDATE users SET budget = budget + ? WHERE id = ?`, it.Price, sellerID); err != nil {
		return fmt.Errorf("credit seller: %w", err)
	}
	it.OwnerID = 0
	return e.record(ctx, tx, sellerID, it.ID, "sell", it.Price)
}

// record writes the trade's market event and its ledger row.
func (e *Engine) record(ctx context.Context, tx *sql.Tx, userID, itemID int64, kind string, amount int64) error {
	if err := e.RecordEvent(ctx, tx, itemID, kind, userID); err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO trades (user_id, item_id, kind, amount) VALUES (?, ?, ?, ?)`, userID, itemID, kind, amount); err != nil {
		return fmt.Errorf("record %s: %w", kind, err)
	}
	return nil
}
