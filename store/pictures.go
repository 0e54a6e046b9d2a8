package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"market/store/driver"
)

// Picture is an item's picture as the server keeps it: its resized copies (already decoded,
// checked and re-encoded by the caller) and the hash that names them.
type Picture struct {
	Hash       string
	List, Page []byte
}

// pictureColumn reads the hash of an item's picture ("" for none) beside the item's columns, in
// a query over items.
const pictureColumn = driver.PictureColumn

// SetPicture gives an item (not retired) its picture, replacing the one it had. It is an edit of
// the item: the market version moves, open pages hear of it, and the admin log records it.
// Refusals: ErrNotFound.
func (s *Store) SetPicture(ctx context.Context, adminID, id int64, p Picture) (AdminItem, error) {
	var it AdminItem
	err := s.adminWrite(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if it, err = s.adminItem(ctx, tx, id, true); err != nil {
			return err
		}
		var before string
		if err := tx.QueryRowContext(ctx, `SELECT hash FROM pictures WHERE item_id = ?`, id).Scan(&before); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read picture: %w", err)
		}
		if before == p.Hash {
			return nil // the same picture: nothing to change or announce
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pictures WHERE item_id = ?`, id); err != nil {
			return fmt.Errorf("drop picture: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO pictures (item_id, hash, list, page) VALUES (?, ?, ?, ?)`,
			id, p.Hash, p.List, p.Page); err != nil {
			return fmt.Errorf("save picture: %w", err)
		}
		// The item's row changes with its picture: on SQLite this moves the market version.
		if _, err := tx.ExecContext(ctx, `UPDATE items SET name = name WHERE id = ?`, id); err != nil {
			return fmt.Errorf("touch item: %w", err)
		}
		it.Picture = p.Hash
		if err := s.recordEvent(ctx, tx, id, "edit", it.OwnerID); err != nil {
			return err
		}
		return logAdmin(ctx, tx, adminID, "set picture", itemSubject(it.Item), "picture "+orNone(before), "picture "+p.Hash)
	})
	return it, err
}

func orNone(hash string) string {
	if hash == "" {
		return "none"
	}
	return hash
}

// PictureFile returns one copy of the picture named hash: the page's (large) or the list's; or
// ErrNotFound.
func (s *Store) PictureFile(ctx context.Context, hash string, large bool) ([]byte, error) {
	column := "list"
	if large {
		column = "page"
	}
	var b []byte
	err := s.d.Read().QueryRowContext(ctx, `SELECT `+column+` FROM pictures WHERE hash = ? LIMIT 1`, hash).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read picture %s: %w", hash, err)
	}
	return b, nil
}
