package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
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
// page is one statement, which counts the items only when the page is full (else its rows are
// the count); another page is read after its count, from the far end of its order when it is
// in the second half, so that the last page of 100,000 items costs no more than the first.
func (s *Store) Market(ctx context.Context, q MarketQuery) (MarketPage, error) {
	b, err := s.d.Snapshot(ctx)
	if err != nil {
		return MarketPage{}, fmt.Errorf("begin: %w", err)
	}
	defer b.Close()
	return s.market(b, q, true)
}

// market reads the market page q in b's snapshot, sending what b holds queued with its first
// statement; its last send ends the snapshot when end.
func (s *Store) market(b driver.Batch, q MarketQuery, end bool) (MarketPage, error) {
	q = q.Normalize()
	where, args := s.marketWhere(q)
	p := MarketPage{Items: make([]Item, 0, PerPage), Query: q, Page: q.Page, Pages: 1}
	var total int64
	// rows takes the page's rows, each with the columns after the item's into more.
	rows := func(more ...any) func(scan func(dest ...any) error) error {
		return func(scan func(dest ...any) error) error {
			var it Item
			if err := scan(append([]any{&it.ID, &it.Name, &it.Price, &it.Barcode, &it.Description, &it.Picture}, more...)...); err != nil {
				return err
			}
			p.Items = append(p.Items, it)
			return nil
		}
	}
	defer func() { s.names.remember(p.Items...) }()
	if p.Page == 1 {
		b.Query(`WITH page AS MATERIALIZED (SELECT id, name, price, barcode, description, `+pictureColumn+` AS picture
			FROM items WHERE `+where+` ORDER BY `+orderBy[q.Sort]+` LIMIT ?)
			SELECT id, name, price, barcode, description, picture, CASE WHEN (SELECT count(*) FROM page) < ?
				THEN (SELECT count(*) FROM page) ELSE (SELECT count(*) FROM items WHERE `+where+`) END
			FROM page ORDER BY `+orderBy[q.Sort], slices.Concat(args, []any{PerPage, PerPage}, args), rows(&total))
		if err := b.Send(end); err != nil {
			return MarketPage{}, fmt.Errorf("list market: %w", err)
		}
		p.Total = int(total)
		p.Pages = max(1, (p.Total+PerPage-1)/PerPage)
		return p, nil
	}
	b.Query(`SELECT count(*) FROM items WHERE `+where, args, func(scan func(dest ...any) error) error { return scan(&total) })
	if err := b.Send(false); err != nil {
		return MarketPage{}, fmt.Errorf("count market: %w", err)
	}
	p.Total = int(total)
	p.Pages = max(1, (p.Total+PerPage-1)/PerPage)
	p.Page = min(p.Page, p.Pages) // past the end: the last page
	p.Query.Page = p.Page
	offset := (p.Page - 1) * PerPage
	sort, n := q.Sort, PerPage
	if offset > p.Total/2 { // the rows of this page, counted from the far end
		sort, n = reverseSort[q.Sort], min(PerPage, p.Total-offset)
		offset = p.Total - offset - n
	}
	b.Query(`SELECT id, name, price, barcode, description, `+pictureColumn+`
		FROM items WHERE `+where+` ORDER BY `+orderBy[sort]+` LIMIT ? OFFSET ?`, slices.Concat(args, []any{n, offset}), rows())
	if err := b.Send(end); err != nil {
		return MarketPage{}, fmt.Errorf("list market: %w", err)
	}
	if sort != q.Sort {
		slices.Reverse(p.Items)
	}
	return p, nil
}

// PageReads names what ReadPage reads besides the version: a page of the market (when Market
// is not nil) and the items a user owns (when Owner is not 0).
type PageReads struct {
	Market *MarketQuery
	Owner  int64
}

// PageRead is what ReadPage read, all as of Version (cache it when Exact(Version)).
type PageRead struct {
	Version int64
	Market  MarketPage
	Owned   []Item
}

// ReadPage reads, in one snapshot, the market version and what want names: on PostgreSQL in
// one round trip, or two for a market page past the first. A snapshot taken while an older
// transaction of the market's database was still committing (the feed's pruning, a session's
// save) is not Exact, and its page cannot be cached: it is read again, pageRetry later, then
// four times that, and the last read is the answer, exact or not (a long transaction keeps it
// inexact for longer than a page should wait).
func (s *Store) ReadPage(ctx context.Context, want PageReads) (PageRead, error) {
	pause := pageRetry
	for try := 1; ; try++ {
		r, err := s.readPage(ctx, want)
		if err != nil || s.Exact(r.Version) || try == pageReads {
			return r, err
		}
		wait := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			wait.Stop()
			return r, nil // right as of its version, only not for the cache
		case <-wait.C:
		}
		pause *= 4
	}
}

// pageReads is how many times ReadPage reads an inexact page, the first pageRetry apart.
const (
	pageReads = 3
	pageRetry = 2 * time.Millisecond
)

// readPage is one read of ReadPage.
func (s *Store) readPage(ctx context.Context, want PageReads) (PageRead, error) {
	b, err := s.d.Snapshot(ctx)
	if err != nil {
		return PageRead{}, fmt.Errorf("begin: %w", err)
	}
	defer b.Close()
	var r PageRead
	b.Position(&r.Version)
	if want.Owner != 0 {
		b.Query(ownedQuery, []any{want.Owner}, ownedRows(&r.Owned))
	}
	if want.Market != nil {
		r.Market, err = s.market(b, *want.Market, true)
	} else {
		err = b.Send(true)
	}
	if err != nil {
		return PageRead{}, err
	}
	s.names.remember(r.Owned...)
	return r, nil
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

// escapeLike makes s match literally inside a LIKE pattern with ESCAPE '\'.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// ownedQuery lists the items a user owns, by name.
const ownedQuery = `SELECT id, name, price, barcode, description, owner_id, ` + pictureColumn + ` FROM items
	WHERE owner_id = ? ORDER BY name COLLATE NOCASE`

// ownedRows takes ownedQuery's rows into items.
func ownedRows(items *[]Item) func(scan func(dest ...any) error) error {
	return func(scan func(dest ...any) error) error {
		var it Item
		if err := scan(&it.ID, &it.Name, &it.Price, &it.Barcode, &it.Description, &it.OwnerID, &it.Picture); err != nil {
			return err
		}
		*items = append(*items, it)
		return nil
	}
}

// OwnedItems lists the items a user owns, by name.
func (s *Store) OwnedItems(ctx context.Context, userID int64) ([]Item, error) {
	rows, err := s.d.Read().QueryContext(ctx, ownedQuery, userID)
	if err != nil {
		return nil, fmt.Errorf("list owned items: %w", err)
	}
	defer rows.Close()
	var items []Item
	take := ownedRows(&items)
	for rows.Next() {
		if err := take(rows.Scan); err != nil {
			return nil, err
		}
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
