package store

import (
	"context"
	"fmt"
	"time"
)

// AdminPerPage is how many rows one page of the operator's lists shows.
const AdminPerPage = 50

// AdminItemsPage is one page of every item that is not retired, on sale or owned.
type AdminItemsPage struct {
	Items []AdminItem
	Total int
	Page  int
	Pages int
	Query MarketQuery
}

// pages clamps page (from 1) into the pages total rows make, and gives its offset.
func pages(total, page int) (clamped, count, offset int) {
	count = max(1, (total+AdminPerPage-1)/AdminPerPage)
	clamped = min(max(page, 1), count)
	return clamped, count, (clamped - 1) * AdminPerPage
}

// AdminItems returns a page of the items that are not retired, on sale or owned, with their
// owners: searched and sorted as the market is, read in one snapshot.
func (s *Store) AdminItems(ctx context.Context, q MarketQuery) (AdminItemsPage, error) {
	q = q.Normalize()
	tx, err := s.snapshot(ctx)
	if err != nil {
		return AdminItemsPage{}, err
	}
	defer tx.Rollback()
	where, args := `retired_at IS NULL`, []any{}
	if q.Q != "" {
		pattern := "%" + escapeLike(q.Q) + "%"
		like := s.d.Dialect().Like
		where += ` AND (name ` + like + ` ? ESCAPE '\' OR description ` + like + ` ? ESCAPE '\')`
		args = append(args, pattern, pattern)
	}
	p := AdminItemsPage{Query: q}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM items WHERE `+where, args...).Scan(&p.Total); err != nil {
		return AdminItemsPage{}, fmt.Errorf("count items: %w", err)
	}
	var offset int
	p.Page, p.Pages, offset = pages(p.Total, q.Page)
	p.Query.Page = p.Page
	rows, err := tx.QueryContext(ctx, `SELECT id, name, price, barcode, description, coalesce(owner_id, 0),
		coalesce((SELECT username FROM users WHERE users.id = items.owner_id), '')
		FROM items WHERE `+where+` ORDER BY `+orderBy[q.Sort]+` LIMIT ? OFFSET ?`, append(args, AdminPerPage, offset)...)
	if err != nil {
		return AdminItemsPage{}, fmt.Errorf("list items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var it AdminItem
		if err := rows.Scan(&it.ID, &it.Name, &it.Price, &it.Barcode, &it.Description, &it.OwnerID, &it.Owner); err != nil {
			return AdminItemsPage{}, err
		}
		p.Items = append(p.Items, it)
	}
	return p, rows.Err()
}

// UsersPage is one page of the accounts, by id.
type UsersPage struct {
	Users []User
	Total int
	Page  int
	Pages int
}

// UsersPaged returns a page (from 1, clamped) of the accounts by id, with their budgets.
func (s *Store) UsersPaged(ctx context.Context, page int) (UsersPage, error) {
	tx, err := s.snapshot(ctx)
	if err != nil {
		return UsersPage{}, err
	}
	defer tx.Rollback()
	var p UsersPage
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&p.Total); err != nil {
		return UsersPage{}, fmt.Errorf("count users: %w", err)
	}
	var offset int
	p.Page, p.Pages, offset = pages(p.Total, page)
	rows, err := tx.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY id LIMIT ? OFFSET ?`, AdminPerPage, offset)
	if err != nil {
		return UsersPage{}, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u User
		if err := rows.Scan(userDest(&u)...); err != nil {
			return UsersPage{}, err
		}
		p.Users = append(p.Users, u)
	}
	return p, rows.Err()
}

// LogEntry is one admin action: who ("" for the command line), when, what, to what, before
// and after.
type LogEntry struct {
	ID              int64
	Admin           string
	At              time.Time
	Action, Subject string
	Before, After   string
}

// LogPage is one page of the admin log, newest first.
type LogPage struct {
	Entries []LogEntry
	Total   int
	Page    int
	Pages   int
}

// AdminLog returns a page (from 1, clamped) of the admin log, newest first.
func (s *Store) AdminLog(ctx context.Context, page int) (LogPage, error) {
	tx, err := s.snapshot(ctx)
	if err != nil {
		return LogPage{}, err
	}
	defer tx.Rollback()
	var p LogPage
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM admin_log`).Scan(&p.Total); err != nil {
		return LogPage{}, fmt.Errorf("count log: %w", err)
	}
	var offset int
	p.Page, p.Pages, offset = pages(p.Total, page)
	rows, err := tx.QueryContext(ctx, `SELECT l.id, coalesce(u.username, ''), l.created_at, l.action, l.subject, l.old_value, l.new_value
		FROM admin_log l LEFT JOIN users u ON u.id = l.admin_id ORDER BY l.id DESC LIMIT ? OFFSET ?`, AdminPerPage, offset)
	if err != nil {
		return LogPage{}, fmt.Errorf("list log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e  LogEntry
			at string
		)
		if err := rows.Scan(&e.ID, &e.Admin, &at, &e.Action, &e.Subject, &e.Before, &e.After); err != nil {
			return LogPage{}, err
		}
		e.At, _ = time.Parse("2006-01-02T15:04:05.999Z", at)
		p.Entries = append(p.Entries, e)
	}
	return p, rows.Err()
}

// Glance is the market at a glance: trades in each of the last 24 hours (the last is the
// current hour), and where the money is.
type Glance struct {
	Start  time.Time // the first hour
	Hourly [24]int
	// Budgets, OnSale and Owned are the budgets of all users, the prices of the items on sale
	// and the prices of the owned items.
	Budgets, OnSale, Owned int64
}

// MarketGlance reads the trades per hour of the last day, up to now, and the money totals,
// in one snapshot.
func (s *Store) MarketGlance(ctx context.Context, now time.Time) (Glance, error) {
	tx, err := s.snapshot(ctx)
	if err != nil {
		return Glance{}, err
	}
	defer tx.Rollback()
	g := Glance{Start: now.UTC().Truncate(time.Hour).Add(-23 * time.Hour)}
	rows, err := tx.QueryContext(ctx, `SELECT substr(created_at, 1, 13), count(*) FROM trades
		WHERE kind IN ('buy', 'sell') AND created_at >= ? GROUP BY substr(created_at, 1, 13)`,
		g.Start.Format("2006-01-02T15"))
	if err != nil {
		return Glance{}, fmt.Errorf("trades per hour: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			hour string
			n    int
		)
		if err := rows.Scan(&hour, &n); err != nil {
			return Glance{}, err
		}
		t, err := time.Parse("2006-01-02T15", hour)
		if i := int(t.Sub(g.Start) / time.Hour); err == nil && i >= 0 && i < len(g.Hourly) {
			g.Hourly[i] = n
		}
	}
	if err := rows.Err(); err != nil {
		return Glance{}, err
	}
	err = tx.QueryRowContext(ctx, `SELECT (SELECT coalesce(sum(budget), 0) FROM users),
		(SELECT coalesce(sum(price), 0) FROM items WHERE owner_id IS NULL AND retired_at IS NULL),
		(SELECT coalesce(sum(price), 0) FROM items WHERE owner_id IS NOT NULL)`).Scan(&g.Budgets, &g.OnSale, &g.Owned)
	if err != nil {
		return Glance{}, fmt.Errorf("money totals: %w", err)
	}
	return g, nil
}
