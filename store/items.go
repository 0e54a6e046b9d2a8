package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"market/store/driver"
)

// Item is one thing that can be bought and sold. OwnerID 0 means it is on the market.
type Item = driver.Item

// Sort orders of the market; SortName is the default.
const (
	SortName      = "name"
	SortNameDesc  = "-name"
	SortPrice     = "price"
	SortPriceDesc = "-price"
)

// PerPage is how many items one page of the market shows.
const PerPage = 50

var orderBy = map[string]string{
	SortName:      `name COLLATE NOCASE, id`,
	SortNameDesc:  `name COLLATE NOCASE DESC, id DESC`,
	SortPrice:     `price, name COLLATE NOCASE, id`,
	SortPriceDesc: `price DESC, name COLLATE NOCASE DESC, id DESC`,
}

// reverseSort is each order walked from its other end: the same items, exactly reversed.
var reverseSort = map[string]string{
	SortName: SortNameDesc, SortNameDesc: SortName, SortPrice: SortPriceDesc, SortPriceDesc: SortPrice,
}

// ValidSort reports whether sort names one of the market's orders.
func ValidSort(sort string) bool {
	_, ok := orderBy[sort]
	return ok
}

// MarketQuery selects a page of the items on sale. Q matches name or description, ignoring
// letter case; an unknown Sort means SortName, and Page counts from 1.
type MarketQuery struct {
	Q    string
	Sort string
	Page int
}

// MaxQueryRunes is the longest search, in characters, the market takes; longer ones are cut.
const MaxQueryRunes = 100

// Normalize is the query as the market reads it: Q valid UTF-8 without NUL, trimmed and cut to MaxQueryRunes characters,
// an unknown Sort replaced by SortName, Page at least 1. Queries that normalize alike ask for
// the same page.
func (q MarketQuery) Normalize() MarketQuery {
	// Text no database can hold (PostgreSQL refuses NUL and invalid UTF-8) matches nothing anyway.
	q.Q = strings.TrimSpace(strings.ReplaceAll(strings.ToValidUTF8(q.Q, ""), "\x00", ""))
	if utf8.RuneCountInString(q.Q) > MaxQueryRunes {
		q.Q = strings.TrimSpace(string([]rune(q.Q)[:MaxQueryRunes]))
	}
	if !ValidSort(q.Sort) {
		q.Sort = SortName
	}
	q.Page = max(q.Page, 1)
	return q
}

// MarketPage is one page of the items on sale, with what paging needs. Page is clamped into
// 1..Pages, so asking past the end gives the last page.
type MarketPage struct {
	Items []Item
	Total int
	Page  int
	Pages int
	Query MarketQuery
}

// Version is the market's version: it grows whenever an item or a budget changes, in this
// process or another (triggers keep it), and never repeats, even across Reset. Whatever is
// built from items and budgets can be cached under it, when it is Exact, and stays exactly as
// fresh as the data.
func (s *Store) Version(ctx context.Context) (int64, error) {
	v, _, err := s.d.Position(ctx, s.d.Read())
	return v, err
}

// Exact reports whether a version names one state of the market: what is read while the
// market stays at it may be cached under it. On SQLite every version is exact; on PostgreSQL
// a version read while a transaction of its database older than the newest change still runs
// is not (every event up to it is final, but the data may already hold changes after it).
func (s *Store) Exact(version int64) bool { return s.d.Exact(version) }

// querier is a database or a transaction: what a read needs.
type querier = driver.Querier

// snapshot begins a read-only transaction that sees one state of the database from its first
// read to its end (as SQLite's read transactions always do; PostgreSQL's need REPEATABLE READ,
// where each statement would otherwise see the commits made since the one before).
func (s *Store) snapshot(ctx context.Context) (*sql.Tx, error) {
	tx, err := s.d.Read().BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return tx, nil
}

// Market returns one page of the items on sale, with the count, read in one snapshot. A first
// page that is not full ends the list, and gives the count without a second walk of the
// catalogue; a page in the second half is read from the far end of its order, so that the last
// page of 100,000 items costs no more than the first.
func (s *Store) Market(ctx context.Context, q MarketQuery) (MarketPage, error) {
	tx, err := s.snapshot(ctx)
	if err != nil {
		return MarketPage{}, err
	}
	defer tx.Rollback()
	return s.market(ctx, tx, q)
}

// market is Market inside tx.
func (s *Store) market(ctx context.Context, tx *sql.Tx, q MarketQuery) (MarketPage, error) {
	q = q.Normalize()
	where, args := s.marketWhere(q)
	list := func(sort string, limit, offset int) ([]Item, error) {
		items, err := marketRows(ctx, tx, `SELECT id, name, price, barcode, description, `+pictureColumn+` FROM items WHERE `+where+
			` ORDER BY `+orderBy[sort]+` LIMIT ? OFFSET ?`, append(args, limit, offset)...)
		if err != nil {
			return nil, fmt.Errorf("list market: %w", err)
		}
		return items, nil
	}

	var err error
	p := MarketPage{Query: q, Page: q.Page, Pages: 1}
	defer func() { s.names.remember(p.Items...) }()
	if p.Page == 1 {
		if p.Items, err = list(q.Sort, PerPage, 0); err != nil {
			return MarketPage{}, err
		}
		p.Total = len(p.Items)
		if p.Total < PerPage {
			return p, nil
		}
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM items WHERE `+where, args...).Scan(&p.Total); err != nil {
		return MarketPage{}, fmt.Errorf("count market: %w", err)
	}
	p.Pages = max(1, (p.Total+PerPage-1)/PerPage)
	if p.Page == 1 {
		return p, nil
	}
	p.Page = min(p.Page, p.Pages) // past the end: the last page
	p.Query.Page = p.Page
	offset := (p.Page - 1) * PerPage
	if offset <= p.Total/2 {
		if p.Items, err = list(q.Sort, PerPage, offset); err != nil {
			return MarketPage{}, err
		}
		return p, nil
	}
	n := min(PerPage, p.Total-offset) // the rows of this page, counted from the far end
	if p.Items, err = list(reverseSort[q.Sort], n, p.Total-offset-n); err != nil {
		return MarketPage{}, err
	}
	slices.Reverse(p.Items)
	return p, nil
}

// marketWhere is the condition (and its arguments) of the items on sale that q finds.
func (s *Store) marketWhere(q MarketQuery) (string, []any) {
	where, args := `owner_id IS NULL AND retired_at IS NULL`, []any{}
	if q.Q != "" {
		pattern := "%" + escapeLike(q.Q) + "%"
		like := s.d.Dialect().Like
		where += ` AND (name ` + like + ` ? ESCAPE '\' OR description ` + like + ` ? ESCAPE '\')`
		args = append(args, pattern, pattern)
	}
	return where, args
}

// marketRows reads items on sale: id, name, price, barcode and description.
func marketRows(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]Item, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	items := make([]Item, 0, PerPage)
	for rows.Next() {
		var it Item
		if err := rows.Scan(&it.ID, &it.Name, &it.Price, &it.Barcode, &it.Description, &it.Picture); err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, rows.Err()
}

// escapeLike makes s match literally inside a LIKE pattern with ESCAPE '\'.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// OwnedItems lists the items a user owns, by name.
func (s *Store) OwnedItems(ctx context.Context, userID int64) ([]Item, error) {
	rows, err := s.d.Read().QueryContext(ctx,
		`SELECT id, name, price, barcode, description, owner_id, `+pictureColumn+` FROM items
		 WHERE owner_id = ? ORDER BY name COLLATE NOCASE`, userID)
	if err != nil {
		return nil, fmt.Errorf("list owned items: %w", err)
	}
	defer rows.Close()
	var items []Item
	for rows.Next() {
		var it Item
		if err := rows.Scan(&it.ID, &it.Name, &it.Price, &it.Barcode, &it.Description, &it.OwnerID, &it.Picture); err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	s.names.remember(items...)
	return items, rows.Err()
}

// Item returns one item, or ErrNotFound (a retired item too).
func (s *Store) Item(ctx context.Context, id int64) (Item, error) {
	var (
		it    Item
		owner sql.NullInt64
	)
	err := s.d.Read().QueryRowContext(ctx,
		`SELECT id, name, price, barcode, description, owner_id, `+pictureColumn+` FROM items WHERE id = ? AND retired_at IS NULL`, id,
	).Scan(&it.ID, &it.Name, &it.Price, &it.Barcode, &it.Description, &owner, &it.Picture)
	if errors.Is(err, sql.ErrNoRows) {
		return Item{}, ErrNotFound
	}
	if err != nil {
		return Item{}, fmt.Errorf("find item %d: %w", id, err)
	}
	it.OwnerID = owner.Int64
	s.names.remember(it)
	return it, nil
}
