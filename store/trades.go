package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"market/store/driver"
)

// Trade is the outcome of a purchase or a sale (see driver.Trade).
type Trade = driver.Trade

// Buy moves an item on the market to the buyer and its price out of the buyer's budget,
// atomically, with every rule about money in the engine's trade: an item is sold once, and a
// budget never goes below zero. Refusals are ErrNotFound, ErrUnavailable and
// ErrInsufficientFunds; on a refusal Trade.Budget is the budget that stands.
func (s *Store) Buy(ctx context.Context, buyerID, itemID int64) (Trade, error) {
	return s.trade(ctx, buyerID, itemID, true, nil)
}

// Sell gives an item back to the market and its price back to its owner, atomically.
// Refusals are ErrNotFound and ErrNotOwner.
func (s *Store) Sell(ctx context.Context, sellerID, itemID int64) (Trade, error) {
	return s.trade(ctx, sellerID, itemID, false, nil)
}

// PageAfter is a market page as a trade left it, for the trade's answer: its count and pager
// (Page, Pages, Total, Query), not its items; or Err, when they could not be read.
type PageAfter struct {
	Page MarketPage
	Err  error
}

// TradeOnPage is Buy (buy) or Sell, and then the market page q as the trade, done or refused,
// left it (PageAfter): on PostgreSQL both in one round trip, the count in a transaction of its
// own after the trade's. The page is not read after a trade that failed otherwise.
func (s *Store) TradeOnPage(ctx context.Context, userID, itemID int64, buy bool, q MarketQuery) (Trade, PageAfter, error) {
	q = q.Normalize()
	where, args := s.marketWhere(q)
	after := &driver.AfterTrade{Query: `SELECT count(*) FROM items WHERE ` + where, Args: args}
	t, err := s.trade(ctx, userID, itemID, buy, after)
	if err != nil && !refused(err) {
		return t, PageAfter{Err: err}, err
	}
	if !after.Done {
		after.Err = s.d.Read().QueryRowContext(ctx, after.Query, after.Args...).Scan(&after.Count)
	}
	if after.Err != nil {
		return t, PageAfter{Err: fmt.Errorf("count market: %w", after.Err)}, err
	}
	total := int(after.Count)
	p := MarketPage{Query: q, Total: total, Pages: max(1, (total+PerPage-1)/PerPage)}
	p.Page = min(q.Page, p.Pages) // past the end: the last page, as Market says
	p.Query.Page = p.Page
	return t, PageAfter{Page: p}, err
}

// refused reports whether err is a trade's refusal: nothing changed, and the market stands.
func refused(err error) bool {
	for _, r := range []error{ErrNotFound, ErrUnavailable, ErrInsufficientFunds, ErrNotOwner} {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}

// trade runs one purchase (buy) or sale in the engine (with the read after it, if any), counts
// its outcome and, once it committed, wakes the live streams.
func (s *Store) trade(ctx context.Context, userID, itemID int64, buy bool, after *driver.AfterTrade) (Trade, error) {
	s.nameBeforeTrade(ctx, itemID)
	t, err := s.d.Trade(ctx, userID, itemID, buy, after)
	s.stats.traded(err)
	switch {
	case err == nil:
		s.d.Committed()
	case errors.Is(err, ErrCommitUnknown):
		// The answer names the item, from memory: the database has just failed.
		t.Item.ID = itemID
		t.Item.Name, _ = s.names.of(itemID)
	}
	return t, err
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
