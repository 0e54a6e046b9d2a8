package handlers_test

import (
	"net/http"
	"strings"
	"testing"
)

// "Your trades" lists the user's ledger, newest first, in pages, linked from the navigation bar.
func TestTradesPage(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("alice")
	if href, ok := c.get("/market").doc(t).Find(`[data-testid="navbar"] a[href="/trades"]`).Attr("href"); !ok || href != "/trades" {
		t.Fatal("no link to /trades in the navigation bar")
	}
	mouse := app.item("Mouse")
	// 15 purchase/sale pairs and the opening grant: 31 rows, two pages of 25.
	for range 15 {
		c.buy(mouse.ID)
		c.sell(mouse.ID)
	}
	res := c.get("/trades")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /trades: %d", res.StatusCode)
	}
	doc := res.doc(t)
	rows := doc.Find(`[data-testid="trade-row"]`)
	if rows.Length() != 25 {
		t.Fatalf("%d rows on the first page, want 25", rows.Length())
	}
	first := text(rows.First())
	if !strings.Contains(first, "Sold") || !strings.Contains(first, "Mouse") || !strings.Contains(first, "$45") {
		t.Errorf("newest row %q, want the last sale of the Mouse for $45", first)
	}
	if second := text(rows.Eq(1)); !strings.Contains(second, "Bought") || !strings.Contains(second, "-$45") {
		t.Errorf("second row %q, want the purchase before it, -$45", second)
	}
	next, ok := doc.Find(`a[rel="next"]`).Attr("href")
	if !ok {
		t.Fatal("no link to older trades")
	}
	doc = c.get(next).doc(t)
	rows = doc.Find(`[data-testid="trade-row"]`)
	if rows.Length() != 6 {
		t.Fatalf("%d rows on page 2, want 6", rows.Length())
	}
	if last := text(rows.Last()); !strings.Contains(last, "Opening budget") || !strings.Contains(last, "$1,000") {
		t.Errorf("oldest row %q, want the opening grant of $1,000", last)
	}
	// Another user's page shows none of it.
	if got := app.signUp("bob").get("/trades").doc(t).Find(`[data-testid="trade-row"]`).Length(); got != 1 {
		t.Errorf("bob sees %d rows, want his opening grant only", got)
	}
}
