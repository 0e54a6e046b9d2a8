package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"market/store"
	"market/store/storetest"
)

// A picture is an edit of its item: the market version moves, the market and the owner's items
// show its hash, a market event tells open pages, the admin log records it; its copies are read
// back by hash; a picture for no item is refused.
func TestSetPicture(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	admin := createUser(t, st, "boss")
	lamp, err := st.AddItem(ctx, admin.ID, store.ItemInput{Name: "Lamp", Price: 40, Barcode: "123456789012"})
	if err != nil {
		t.Fatal(err)
	}
	before, err := st.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pic := store.Picture{Hash: "abcdefabcdefabcdef01", List: []byte("small"), Page: []byte("large")}
	if _, err := st.SetPicture(ctx, admin.ID, lamp.ID, pic); err != nil {
		t.Fatal(err)
	}
	if after, _ := st.Version(ctx); after == before {
		t.Error("a new picture did not move the market version")
	}
	if p, _ := st.Market(ctx, store.MarketQuery{Q: "Lamp"}); len(p.Items) != 1 || p.Items[0].Picture != pic.Hash {
		t.Errorf("the market's lamp: %+v", p.Items)
	}
	// (A trade's answer carries the picture on SQLite; PostgreSQL's one-statement trade does not
	// read it: the trader's live stream brings it.)
	if _, err := st.Buy(ctx, admin.ID, lamp.ID); err != nil {
		t.Fatal(err)
	}
	if owned, _ := st.OwnedItems(ctx, admin.ID); len(owned) != 1 || owned[0].Picture != pic.Hash {
		t.Errorf("the owner's lamp: %+v", owned)
	}
	for large, want := range map[bool]string{false: "small", true: "large"} {
		if b, err := st.PictureFile(ctx, pic.Hash, large); err != nil || string(b) != want {
			t.Errorf("picture file (large %v): %q %v", large, b, err)
		}
	}
	if _, err := st.PictureFile(ctx, "ffffffffffffffffffff", false); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an unknown picture: %v", err)
	}
	if l, err := st.AdminLog(ctx, 1); err != nil || l.Entries[0].Action != "set picture" || l.Entries[0].After != "picture "+pic.Hash {
		t.Errorf("admin log: %+v %v", l.Entries, err)
	}
	if _, err := st.SetPicture(ctx, admin.ID, 999999, pic); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a picture for no item: %v", err)
	}
	if _, err := st.Check(ctx); err != nil {
		t.Error(err)
	}
	// A backup (SQLite) carries the picture.
	out := filepath.Join(t.TempDir(), "backup.db")
	if _, err := st.Backup(ctx, out); errors.Is(err, store.ErrBackupPostgres) {
		return
	} else if err != nil {
		t.Fatal(err)
	}
	if b, err := storetest.OpenAt(t, out).PictureFile(ctx, pic.Hash, true); err != nil || string(b) != "large" {
		t.Errorf("the picture in the backup: %q %v", b, err)
	}
}
