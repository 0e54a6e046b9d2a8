package handlers_test

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// An admin's new item, price change and retirement reach an open market stream within a
// second, each as one event naming the row it changes.
func TestAdminChangesReachStreams(t *testing.T) {
	app := newTestApp(t)
	admin := app.signUpAdmin("boss")
	ann := app.signUp("ann")
	ls := ann.stream("/market/events?since="+strconv.FormatInt(app.version(), 10), nil)

	// Each wait counts from just before its change is posted.
	var start time.Time
	waitFor := func(what string, ok func(data string) bool) string {
		t.Helper()
		for {
			left := time.Second - time.Since(start)
			if left <= 0 {
				t.Fatalf("%s: no event within 1 s", what)
			}
			ev := ls.next(t, left)
			if ok(ev.data) {
				t.Logf("%s: event after %s", what, time.Since(start).Round(time.Millisecond))
				return ev.data
			}
		}
	}
	start = time.Now()
	admin.htmx("/admin/items", itemForm("Abacus", "9", "444444444444", "Counts"))
	abacus := app.item("Abacus")
	row := fmt.Sprintf(`<tr id="item-%d"`, abacus.ID)
	data := waitFor("add", func(d string) bool { return strings.Contains(d, row) })
	if !strings.Contains(data, "27 items on sale.") || strings.Contains(data, "data-change") {
		t.Errorf("add: the count does not follow, or the event announces a trade:\n%s", data)
	}

	path := "/admin/items/" + strconv.FormatInt(abacus.ID, 10)
	start = time.Now()
	admin.htmx(path, itemForm("Abacus", "19", "444444444444", "Counts"))
	waitFor("price change", func(d string) bool {
		return strings.Contains(d, row) && strings.Contains(d, `data-price="19"`)
	})

	start = time.Now()
	admin.htmx(path+"/retire", url.Values{})
	data = waitFor("retire", func(d string) bool {
		return strings.Contains(d, fmt.Sprintf(`<tr id="item-%d" hx-swap-oob="delete">`, abacus.ID))
	})
	if !strings.Contains(data, "26 items on sale.") {
		t.Errorf("retire: the count does not follow:\n%s", data)
	}
}

// A grant reaches the granted user's open pages: their budget, within a second.
func TestGrantReachesStreams(t *testing.T) {
	app := newTestApp(t)
	admin := app.signUpAdmin("boss")
	ann := app.signUp("ann")
	ls := ann.stream("/market/events?since="+strconv.FormatInt(app.version(), 10), nil)
	admin.htmx("/admin/users/"+strconv.FormatInt(userID(t, app, "ann"), 10)+"/grant", url.Values{"amount": {"250"}})
	ev := ls.next(t, time.Second)
	if !strings.Contains(ev.data, `<span id="budget" hx-swap-oob="true">$1,250</span>`) || strings.Contains(ev.data, "data-change") {
		t.Errorf("the grant's event: want the new budget and no trade announced:\n%s", ev.data)
	}
}

// An item renamed while someone owns it: the owner's open pages show the new name in their list
// of items, within a second, and announce no trade.
func TestRenamedItemReachesItsOwner(t *testing.T) {
	app := newTestApp(t)
	admin := app.signUpAdmin("boss")
	ann := app.signUp("ann")
	mouse := app.item("Mouse")
	ann.buy(mouse.ID)
	ls := ann.stream("/market/events?since="+strconv.FormatInt(app.version(), 10), nil)
	res := admin.htmx("/admin/items/"+strconv.FormatInt(mouse.ID, 10),
		itemForm("Travel mouse", strconv.FormatInt(mouse.Price, 10), mouse.Barcode, mouse.Description))
	if !strings.Contains(res.body, "Travel mouse") {
		t.Fatalf("the rename: %s", res.body)
	}
	ev := ls.next(t, time.Second)
	owned := `<tbody hx-swap-oob="innerHTML:#owned-rows">`
	i := strings.Index(ev.data, owned)
	if i < 0 || !strings.Contains(ev.data[i:], ">Travel mouse</a>") || strings.Contains(ev.data, "data-change") {
		t.Errorf("the rename's event for the owner: want their items with the new name and no trade announced:\n%s", ev.data)
	}
}
