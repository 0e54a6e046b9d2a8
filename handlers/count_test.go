package handlers_test

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
)

// The count of items on sale follows every trade: the page a browser is sent back to, and
// the count htmx swaps in beside the rows it moved, for the search on screen.
func TestItemCountFollowsTrades(t *testing.T) {
	app := newTestApp(t)
	c := app.signUp("counter")
	rowsAndCount := func() (int, string) {
		doc := c.get("/market").doc(t)
		return doc.Find("#item-rows tr").Length(), text(doc.Find("#result-count"))
	}
	rows, count := rowsAndCount()
	if count != strconv.Itoa(rows)+" items on sale." {
		t.Fatalf("before any trade: %d rows, count %q", rows, count)
	}
	phone, mouse := app.item("Phone"), app.item("Mouse")

	// Without htmx: the page after the redirect.
	if res := c.post("/market", url.Values{"purchase_item": {id(phone)}}); res.StatusCode != http.StatusFound {
		t.Fatalf("plain purchase: %d", res.StatusCode)
	}
	if r, got := rowsAndCount(); r != rows-1 || got != strconv.Itoa(rows-1)+" items on sale." {
		t.Errorf("after a plain purchase: %d rows, count %q; want %d", r, got, rows-1)
	}

	// With htmx: the answer carries the count of the page it came from.
	trade := func(field string, it string, from string) string {
		t.Helper()
		res := c.do(http.MethodPost, "/market", url.Values{field: {it}},
			map[string]string{"HX-Request": "true", "X-CSRF-Token": c.token(), "HX-Current-URL": app.server.URL + from})
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d", field, it, res.StatusCode)
		}
		return text(res.doc(t).Find(`template #result-count[hx-swap-oob="true"]`))
	}
	if got, want := trade("purchase_item", id(mouse), "/market"), strconv.Itoa(rows-2)+" items on sale."; got != want {
		t.Errorf("htmx purchase: count %q, want %q", got, want)
	}
	if got, want := trade("sold_item", id(mouse), "/market?sort=price"), strconv.Itoa(rows-1)+" items on sale."; got != want {
		t.Errorf("htmx sale: count %q, want %q", got, want)
	}
	if got, want := trade("sold_item", id(phone), "/market?q=phone"), text(c.get("/market?q=phone").doc(t).Find("#result-count")); got != want || got == "" {
		t.Errorf("htmx sale under a search: count %q, want %q", got, want)
	}
	if got := trade("purchase_item", id(phone), "/items/"+id(phone)); got != "" {
		t.Errorf("a trade from an item's page got a market count %q", got)
	}
	if r, got := rowsAndCount(); got != strconv.Itoa(r)+" items on sale." || r != rows-1 {
		t.Errorf("after the htmx trades: %d rows, count %q", r, got)
	}
}
