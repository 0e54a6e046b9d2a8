package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"market/store"
	"market/store/storetest"
)

// A picture is an edit of its item: the market version moves, the market, the owner's items and
// a trade's answer show its hash, the admin log records it; its copies are read back by hash; a
// picture for no item is refused.
func TestSetPicture(t *testing.T) { storetest.Each(t, testSetPicture) }

func testSetPicture(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	admin := storetest.CreateUser(t, st, "boss")
	lamp, err := st.AddItem(ctx, admin.ID, store.ItemInput{Name: "Lamp", Price: 40, Barcode: "123456789012"})
	if err != nil {
		t.Fatal(err)
	}
	before := exactVersion(t, st)
	pic := store.Picture{Hash: "abcdefabcdefabcdef01", List: []byte("small"), Page: []byte("large")}
	if _, err := st.SetPicture(ctx, admin.ID, lamp.ID, pic); err != nil {
		t.Fatal(err)
	}
	if after := exactVersion(t, st); after == before {
		t.Error("a new picture did not move the market version")
	}
	if p, _ := st.Market(ctx, store.MarketQuery{Q: "Lamp"}); len(p.Items) != 1 || p.Items[0].Picture != pic.Hash {
		t.Errorf("the market's lamp: %+v", p.Items)
	}
	// A trade's answer carries the picture, for the row that moves (on PostgreSQL read in the
	// trade's one statement).
	if tr, err := st.Buy(ctx, admin.ID, lamp.ID); err != nil || tr.Item.Picture != pic.Hash {
		t.Fatalf("buy: %+v %v, want the item with picture %s", tr, err, pic.Hash)
	}
	if owned, _ := st.OwnedItems(ctx, admin.ID); len(owned) != 1 || owned[0].Picture != pic.Hash {
		t.Errorf("the owner's lamp: %+v", owned)
	}
	if tr, err := st.Sell(ctx, admin.ID, lamp.ID); err != nil || tr.Item.Picture != pic.Hash {
		t.Errorf("sell: %+v %v, want the item with picture %s", tr, err, pic.Hash)
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
	storetest.AssertHealthy(t, st)
	if storetest.OnPostgres(t) {
		return // pg_dump's backups carry the table as they carry any
	}
	// A backup carries the picture.
	out := filepath.Join(t.TempDir(), "backup.db")
	if _, err := st.Backup(ctx, out); err != nil {
		t.Fatal(err)
	}
	if b, err := storetest.OpenAt(t, out).PictureFile(ctx, pic.Hash, true); err != nil || string(b) != "large" {
		t.Errorf("the picture in the backup: %q %v", b, err)
	}
}
