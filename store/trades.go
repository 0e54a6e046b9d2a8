package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Trade is the outcome of a purchase or a sale: the item as it is now and the trader's budget
// after it. On a refusal, Item still names the item when it exists, for the message, and Budget
// is the trader's budget as the refusal found it.
type Trade struct {
	Item   Item
	Budget int64
}

// Buy moves an item on the market to the buyer and its price out of the buyer's budget,
// atomically (one savepoint of a group commit, see writer), with conditional updates: an item
// is sold once, and a budget never goes below zero. Refusals are ErrNotFound, ErrUnavailable
// and ErrInsufficientFunds.
func (s *Store) Buy(ctx context.Context, buyerID, itemID int64) (Trade, error) {
	return s.trade(ctx, buyerID, itemID, true, func(ctx context.Context, tx *sql.Tx, it *Item) error {
		if it.OwnerID != 0 {
			return ErrUnavailable
		}
		res, err := tx.ExecContext(ctx,
			`UPDATE users SET budget = budget - ? WHERE id = ? AND budget >= ?`, it.Price, buyerID, it.Price)
		if err != nil {
			return fmt.Errorf("debit buyer: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrInsufficientFunds
		}
		res, err = tx.ExecContext(ctx, `UPDATE items SET owner_id = ? WHERE id = ? AND owner_id IS NULL AND retired_at IS NULL`, buyerID, it.ID)
		if err != nil {
			return fmt.Errorf("move item: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrUnavailable
		}
		it.OwnerID = buyerID
		if err := s.recordEvent(ctx, tx, it.ID, "buy", buyerID); err != nil {
			return err
		}
		return record(ctx, tx, buyerID, it.ID, "buy", -it.Price)
	})
}

// Sell gives an item back to the market and its price back to its owner, atomically.
// Refusals are ErrNotFound and ErrNotOwner.
func (s *Store) Sell(ctx context.Context, sellerID, itemID int64) (Trade, error) {
	return s.trade(ctx, sellerID, itemID, false, func(ctx context.Context, tx *sql.Tx, it *Item) error {
		res, err := tx.ExecContext(ctx, `UPDATE items SET owner_id = NULL WHERE id = ? AND owner_id = ?`, it.ID, sellerID)
		if err != nil {
			return fmt.Errorf("move item: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotOwner
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET budget = budget + ? WHERE id = ?`, it.Price, sellerID); err != nil {
			return fmt.Errorf("credit seller: %w", err)
		}
		it.OwnerID = 0
		if err := s.recordEvent(ctx, tx, it.ID, "sell", sellerID); err != nil {
			return err
		}
		return record(ctx, tx, sellerID, it.ID, "sell", it.Price)
	})
}

// trade runs one purchase (buy) or sale: on PostgreSQL in one statement (market_trade, the
// same rules in SQL), else in the writer's next group commit, where it reads the trader's
// budget and the item inside the transaction, lets apply change them, and reads the budget
// again. On a refusal Trade.Budget is the budget that stands (apply's changes are undone), so
// the answer never shows a budget older than the refusal.
func (s *Store) trade(ctx context.Context, userID, itemID int64, buy bool, apply func(context.Context, *sql.Tx, *Item) error) (Trade, error) {
	t, ok, err := s.eng.trade(ctx, userID, itemID, buy)
	if !ok {
		t, err = s.sharedTrade(ctx, userID, itemID, apply)
	}
	s.stats.traded(err)
	if err == nil {
		s.eng.committed() // wake the live streams
	}
	return t, err
}

// sharedTrade is trade in the writer's transaction, in the SQL both engines share.
func (s *Store) sharedTrade(ctx context.Context, userID, itemID int64, apply func(context.Context, *sql.Tx, *Item) error) (Trade, error) {
	var t Trade
	err := s.writer.run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		t = Trade{}
		readBudget := func() error {
			err := tx.QueryRowContext(ctx, `SELECT budget FROM users WHERE id = ?`, userID).Scan(&t.Budget)
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
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
			`SELECT id, name, price, barcode, description, owner_id, `+pictureColumn+` FROM items WHERE id = ? AND retired_at IS NULL`+s.lockRow(), itemID,
		).Scan(&t.Item.ID, &t.Item.Name, &t.Item.Price, &t.Item.Barcode, &t.Item.Description, &owner, &t.Item.Picture)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("find item: %w", err)
		}
		t.Item.OwnerID = owner.Int64
		if err := apply(ctx, tx, &t.Item); err != nil {
			return err
		}
		return readBudget()
	})
	return t, err
}

func record(ctx context.Context, tx *sql.Tx, userID, itemID int64, kind string, amount int64) error {
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO trades (user_id, item_id, kind, amount) VALUES (?, ?, ?, ?)`, userID, itemID, kind, amount); err != nil {
		return fmt.Errorf("record %s: %w", kind, err)
	}
	return nil
}

// LedgerEntry is one row of a user's ledger: an opening grant, a purchase or a sale.
type LedgerEntry struct {
	ID       int64
	Kind     string // "grant", "buy" or "sell"
	ItemID   int64
	ItemName string
	Amount   int64 // signed: what the budget changed by
	At       time.Time
}

// LedgerPage is one page of a user's ledger, newest first.
type LedgerPage struct {
	Entries []LedgerEntry
	Page    int
	Pages   int
	Total   int
}

// LedgerPerPage is how many ledger rows one page shows.
const LedgerPerPage = 25

// Ledger returns a page (from 1, clamped to the last) of the user's trades, newest first.
func (s *Store) Ledger(ctx context.Context, userID int64, page int) (LedgerPage, error) {
	tx, err := s.snapshot(ctx)
	if err != nil {
		return LedgerPage{}, err
	}
	defer tx.Rollback()
	var p LedgerPage
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM trades WHERE user_id = ?`, userID).Scan(&p.Total); err != nil {
		return LedgerPage{}, fmt.Errorf("count trades: %w", err)
	}
	p.Pages = max(1, (p.Total+LedgerPerPage-1)/LedgerPerPage)
	p.Page = min(max(page, 1), p.Pages)
	rows, err := tx.QueryContext(ctx,
		`SELECT t.id, t.kind, coalesce(t.item_id, 0), coalesce(i.name, ''), t.amount, t.created_at
		 FROM trades t LEFT JOIN items i ON i.id = t.item_id
		 WHERE t.user_id = ? ORDER BY t.id DESC LIMIT ? OFFSET ?`,
		userID, LedgerPerPage, (p.Page-1)*LedgerPerPage)
	if err != nil {
		return LedgerPage{}, fmt.Errorf("list trades: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e  LedgerEntry
			at string
		)
		if err := rows.Scan(&e.ID, &e.Kind, &e.ItemID, &e.ItemName, &e.Amount, &at); err != nil {
			return LedgerPage{}, err
		}
		e.At, _ = time.Parse("2006-01-02T15:04:05.999Z", at)
		p.Entries = append(p.Entries, e)
	}
	return p, rows.Err()
}
