package handlers_test

import (
	"database/sql"
	"net/url"
	"strings"
	"testing"

	"market/store/storetest"
)

// The market's caches answer exactly as fresh as the database, even when another program (an
// admin command, a second server) changes it behind this one's back.
func TestCachedPagesFollowTheDatabase(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	phone := app.item("Phone")
	c.get("/market")
	c.get("/market?q=phone", map[string]string{"HX-Request": "true"})

	other := otherDB(t, app)
	if _, err := other.Exec(`UPDATE items SET price = 777 WHERE id = ?`, phone.ID); err != nil {
		t.Fatal(err)
	}
	if got := text(c.get("/market").doc(t).Find("#item-" + id(phone) + " .amount")); got != "$777" {
		t.Errorf("market page shows %q after another program changed the price, want $777", got)
	}
	if res := c.get("/market?q=phone", map[string]string{"HX-Request": "true"}); !strings.Contains(res.body, "$777") {
		t.Error("search shows a stale price")
	}

	var aliceID int64
	other.QueryRow(`SELECT id FROM users WHERE username = 'alice'`).Scan(&aliceID)
	if _, err := other.Exec(`UPDATE items SET owner_id = ? WHERE id = ?`, aliceID, phone.ID); err != nil {
		t.Fatal(err)
	}
	doc := c.get("/market").doc(t)
	if doc.Find("#owned-rows #item-"+id(phone)).Length() != 1 || doc.Find("#item-rows #item-"+id(phone)).Length() != 0 {
		t.Error("owned list or market stale after another program moved the item")
	}

	// And after a trade of this server's own.
	c.post("/market", url.Values{"sold_item": {id(phone)}})
	doc = c.get("/market").doc(t)
	if doc.Find("#item-rows #item-"+id(phone)).Length() != 1 || doc.Find("#owned-rows tr").Length() != 0 {
		t.Error("lists stale after a sale")
	}
}

// otherDB is a connection to the app's database behind its back, as another program or another
// instance would have (see storetest.RawDB).
func otherDB(t testing.TB, app *testApp) *sql.DB {
	t.Helper()
	return storetest.RawDB(t, app.store)
}
