package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Roles a user can have.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// Errors of the operator's use cases.
var (
	ErrDuplicateName    = errors.New("store: item name taken")
	ErrDuplicateBarcode = errors.New("store: barcode taken")
	ErrOwned            = errors.New("store: item is owned")
	ErrBadRole          = errors.New("store: unknown role")
)

// ItemInput is what an admin types about an item.
type ItemInput struct {
	Name        string
	Price       int64
	Barcode     string
	Description string
}

// AdminItem is an item as the operator sees it: with its owner's name ("" when on sale).
type AdminItem struct {
	Item
	Owner string
}

// lockRow is what a read of a row the transaction is about to change ends with (see dialect):
// a purchase pays the price it read, and an edit or a retirement that comes while it runs sees
// the item owned.
func (s *Store) lockRow() string { return s.d.Dialect().LockRow }

// adminWrite runs fn as one write; once it committed, the live streams are woken.
func (s *Store) adminWrite(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if err := s.d.Run(ctx, fn); err != nil {
		return err
	}
	s.d.Committed()
	return nil
}

// logAdmin records an admin action in the transaction that makes it. adminID 0 is the command
// line.
func logAdmin(ctx context.Context, tx *sql.Tx, adminID int64, action, subject, before, after string) error {
	var who sql.NullInt64
	if adminID != 0 {
		who = sql.NullInt64{Int64: adminID, Valid: true}
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO admin_log (admin_id, action, subject, old_value, new_value) VALUES (?, ?, ?, ?, ?)`,
		who, action, subject, before, after); err != nil {
		return fmt.Errorf("log %s: %w", action, err)
	}
	return nil
}

// clashes names the other items that already have the name or the barcode: both errors when
// both are taken (errors.Is holds for each). The unique constraints stay the judge: a race
// between two admins ends in the constraint's error, mapped the same way.
func clashes(ctx context.Context, tx *sql.Tx, id int64, in ItemInput) error {
	var name, code bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM items WHERE name = ? AND id <> ?),
		EXISTS (SELECT 1 FROM items WHERE barcode = ? AND id <> ?)`, in.Name, id, in.Barcode, id).Scan(&name, &code); err != nil {
		return fmt.Errorf("find clashes: %w", err)
	}
	var errs []error
	if name {
		errs = append(errs, ErrDuplicateName)
	}
	if code {
		errs = append(errs, ErrDuplicateBarcode)
	}
	return errors.Join(errs...)
}

// uniqueItemError maps a unique constraint failure on items to its typed error.
func (s *Store) uniqueItemError(err error) error {
	switch {
	case s.d.IsUnique(err, "items.name"):
		return ErrDuplicateName
	case s.d.IsUnique(err, "items.barcode"):
		return ErrDuplicateBarcode
	}
	return err
}

// AddItem puts a new item on sale, logged and announced to the live streams in the same
// transaction. Refusals: ErrDuplicateName, ErrDuplicateBarcode (both when both).
func (s *Store) AddItem(ctx context.Context, adminID int64, in ItemInput) (Item, error) {
	var it Item
	err := s.adminWrite(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := clashes(ctx, tx, 0, in); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx,
			`INSERT INTO items (name, price, barcode, description) VALUES (?, ?, ?, ?) RETURNING id`,
			in.Name, in.Price, in.Barcode, in.Description).Scan(&it.ID)
		if err != nil {
			return fmt.Errorf("add item: %w", s.uniqueItemError(err))
		}
		it = Item{ID: it.ID, Name: in.Name, Price: in.Price, Barcode: in.Barcode, Description: in.Description}
		if err := s.recordEvent(ctx, tx, it.ID, "add", 0); err != nil {
			return err
		}
		return logAdmin(ctx, tx, adminID, "add item", itemSubject(it), "", describeItem(it))
	})
	return it, err
}

// adminItem reads an item that is not retired, with its owner's name, locking it on PostgreSQL.
func (s *Store) adminItem(ctx context.Context, q querier, id int64, lock bool) (AdminItem, error) {
	var (
		it    AdminItem
		owner sql.NullInt64
		name  sql.NullString
	)
	query := `SELECT i.id, i.name, i.price, i.barcode, i.description, i.owner_id, u.username
		FROM items i LEFT JOIN users u ON u.id = i.owner_id WHERE i.id = ? AND i.retired_at IS NULL`
	if lock && s.lockRow() != "" {
		query += s.lockRow() + ` OF i`
	}
	err := q.QueryRowContext(ctx, query, id).Scan(&it.ID, &it.Name, &it.Price, &it.Barcode, &it.Description, &owner, &name)
	if errors.Is(err, sql.ErrNoRows) {
		return AdminItem{}, ErrNotFound
	}
	if err != nil {
		return AdminItem{}, fmt.Errorf("find item %d: %w", id, err)
	}
	it.OwnerID, it.Owner = owner.Int64, name.String
	return it, nil
}

// AdminItem returns an item that is not retired, with its owner, or ErrNotFound.
func (s *Store) AdminItem(ctx context.Context, id int64) (AdminItem, error) {
	return s.adminItem(ctx, s.d.Read(), id, false)
}

// EditItem changes an item. Its price applies to later trades only: a purchase in flight pays
// what it read. The price of an owned item cannot change (ErrOwned; its owner paid the old one,
// and would sell it back at the new one, making or losing money): it can once it is sold back.
// Other refusals: ErrNotFound, ErrDuplicateName, ErrDuplicateBarcode. The item is returned as
// it was found on a refusal, with its owner.
func (s *Store) EditItem(ctx context.Context, adminID, id int64, in ItemInput) (AdminItem, error) {
	var it AdminItem
	err := s.adminWrite(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if it, err = s.adminItem(ctx, tx, id, true); err != nil {
			return err
		}
		if it.OwnerID != 0 && in.Price != it.Price {
			return ErrOwned
		}
		if err := clashes(ctx, tx, id, in); err != nil {
			return err
		}
		before := it.Item
		if _, err := tx.ExecContext(ctx, `UPDATE items SET name = ?, price = ?, barcode = ?, description = ? WHERE id = ?`,
			in.Name, in.Price, in.Barcode, in.Description, id); err != nil {
			return fmt.Errorf("edit item: %w", s.uniqueItemError(err))
		}
		it.Name, it.Price, it.Barcode, it.Description = in.Name, in.Price, in.Barcode, in.Description
		if it.Item == before {
			return nil // nothing changed: nothing to log or announce
		}
		// It concerns the owner, if any: their list of items shows the new name.
		if err := s.recordEvent(ctx, tx, id, "edit", it.OwnerID); err != nil {
			return err
		}
		b, a := diffItems(before, it.Item)
		return logAdmin(ctx, tx, adminID, "edit item", itemSubject(it.Item), b, a)
	})
	return it, err
}

// RetireItem takes an item on sale off the market for good. An owned item is refused with
// ErrOwned (it can be retired once it is sold back); a purchase racing it: one of the two wins.
func (s *Store) RetireItem(ctx context.Context, adminID, id int64) (AdminItem, error) {
	var it AdminItem
	err := s.adminWrite(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if it, err = s.adminItem(ctx, tx, id, true); err != nil {
			return err
		}
		if it.OwnerID != 0 {
			return ErrOwned
		}
		res, err := tx.ExecContext(ctx, `UPDATE items SET retired_at = ? WHERE id = ? AND owner_id IS NULL AND retired_at IS NULL`,
			nowText(), id)
		if err != nil {
			return fmt.Errorf("retire item: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrOwned
		}
		if err := s.recordEvent(ctx, tx, id, "retire", 0); err != nil {
			return err
		}
		return logAdmin(ctx, tx, adminID, "retire item", itemSubject(it.Item), "on sale", "retired")
	})
	return it, err
}

func itemSubject(it Item) string { return fmt.Sprintf("item %d (%s)", it.ID, it.Name) }

// describeItem is an item's fields as the log shows them.
func describeItem(it Item) string {
	return fmt.Sprintf("name %q, price %d, barcode %s, description %q", it.Name, it.Price, it.Barcode, it.Description)
}

// diffItems says what changed between two versions of an item, field by field.
func diffItems(a, b Item) (before, after string) {
	var x, y []string
	add := func(field string, old, new any, quoted bool) {
		if old == new {
			return
		}
		f := "%s %v"
		if quoted {
			f = "%s %q"
		}
		x, y = append(x, fmt.Sprintf(f, field, old)), append(y, fmt.Sprintf(f, field, new))
	}
	add("name", a.Name, b.Name, true)
	add("price", a.Price, b.Price, false)
	add("barcode", a.Barcode, b.Barcode, false)
	add("description", a.Description, b.Description, true)
	return strings.Join(x, ", "), strings.Join(y, ", ")
}
